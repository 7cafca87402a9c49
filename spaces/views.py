"""Space pages: dashboard, space home, permissions; creating, changing and
deleting spaces."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .decorators import site_admin_required, space_required
from .forms import GrantForm, SpaceCreateForm, SpaceKeyConfirmForm, SpaceUpdateForm
from .models import Level, Space
from .selectors import (
    space_contents_count,
    space_get_for,
    space_level_for,
    space_permissions_list,
    spaces_visible_to,
)
from .services import (
    space_create,
    space_delete,
    space_permission_grant,
    space_permission_revoke,
    space_update,
)


def dashboard(request: HttpRequest) -> HttpResponse:
    """The spaces the visitor may see (anonymous visitors see public ones)."""
    spaces = spaces_visible_to(request.user)
    if not request.user.is_authenticated and not spaces.exists():
        return redirect("login")
    return render(request, "spaces/dashboard.html", {"spaces": spaces})


@space_required(Level.VIEW)
def space_home(request: HttpRequest, space: Space) -> HttpResponse:
    level = space_level_for(request.user, space)
    return render(
        request,
        "spaces/space_home.html",
        {
            "space": space,
            "level": level,
            "may_admin": level >= Level.ADMIN,
            "may_delete": request.user.is_superuser,
            "Level": Level,
        },
    )


@space_required(Level.ADMIN)
def space_permissions(request: HttpRequest, space: Space) -> HttpResponse:
    form = GrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        space_permission_grant(
            space=space,
            level=form.cleaned_data["level"],
            user=form.cleaned_data.get("user"),
            group=form.cleaned_data.get("group"),
            actor=request.user,
        )
        messages.success(
            request,
            _("%(who)s now has “%(level)s”.")
            % {
                "who": form.cleaned_data["principal"],
                "level": Level(form.cleaned_data["level"]).label,
            },
        )
        return redirect("spaces:space-permissions", key=space.key)
    return render(
        request,
        "spaces/space_permissions.html",
        {"space": space, "form": form, "grants": space_permissions_list(space)},
    )


@require_POST
@space_required(Level.ADMIN)
def space_permission_revoke_view(
    request: HttpRequest, space: Space, grant_id: int
) -> HttpResponse:
    space_permission_revoke(grant_id=grant_id, space=space, actor=request.user)
    messages.success(request, _("Permission removed."))
    return redirect("spaces:space-permissions", key=space.key)


@site_admin_required
def space_create_view(request: HttpRequest) -> HttpResponse:
    form = SpaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        space = space_create(
            key=form.cleaned_data["key"],
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            allow_anonymous=form.cleaned_data["allow_anonymous"],
            actor=request.user,
        )
        messages.success(request, _("Space %(key)s created.") % {"key": space.key})
        return redirect(space)
    return render(request, "spaces/space_create.html", {"form": form})


@space_required(Level.ADMIN)
def space_update_view(request: HttpRequest, space: Space) -> HttpResponse:
    """Change the space's name, description and anonymous access.

    Space admins and site admins. Renders space_update.html.
    """
    form = SpaceUpdateForm(
        request.POST or None,
        initial={
            "name": space.name,
            "description": space.description,
            "allow_anonymous": space.allow_anonymous,
        },
    )
    if request.method == "POST" and form.is_valid():
        space_update(space=space, actor=request.user, **form.cleaned_data)
        messages.success(request, _("Space %(key)s saved.") % {"key": space.key})
        return redirect(space)
    return render(request, "spaces/space_update.html", {"space": space, "form": form})


@site_admin_required
def space_delete_view(request: HttpRequest, key: str) -> HttpResponse:
    """Delete the space and everything in it, once the key is typed to confirm.

    Site admins only: they create spaces, and this removes every message,
    mail account and grant of the space for good. Renders space_delete.html,
    which says how much will go.
    """
    space = space_get_for(request.user, key, Level.ADMIN)
    form = SpaceKeyConfirmForm(request.POST or None, space_key=space.key)
    if request.method == "POST" and form.is_valid():
        space_delete(space=space, actor=request.user)
        messages.success(
            request,
            _("Space %(name)s (%(key)s) deleted.")
            % {"name": space.name, "key": space.key},
        )
        return redirect("spaces:dashboard")
    return render(
        request,
        "spaces/space_delete.html",
        {"space": space, "form": form, "counts": space_contents_count(space)},
    )
