"""Space pages: dashboard, space home, permissions, creating spaces."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .decorators import site_admin_required, space_required
from .forms import GrantForm, SpaceCreateForm
from .models import Level, Space
from .selectors import space_level_for, space_permissions_list, spaces_visible_to
from .services import space_create, space_permission_grant, space_permission_revoke


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
