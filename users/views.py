"""The users pages: site admins manage users; everyone changes their password."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from spaces.decorators import site_admin_required

from .forms import PasswordResetForm, UserCreateForm
from .selectors import user_get, users_all
from .services import (
    password_generate,
    user_create,
    user_password_set,
    user_set_active,
)


def _password_shown(
    request: HttpRequest, user: AbstractBaseUser, password: str
) -> HttpResponse:
    """Renders users/password_shown.html: a generated password, this once.

    The answer to the POST that made it, which no cache keeps.
    """
    response = render(
        request,
        "users/password_shown.html",
        {"shown_user": user, "password": password},
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@site_admin_required
def user_list(request: HttpRequest) -> HttpResponse:
    """Renders users/user_list.html: every user with what can be done to them."""
    return render(request, "users/user_list.html", {"users": users_all()})


@site_admin_required
def user_create_view(request: HttpRequest) -> HttpResponse:
    """Renders users/user_form.html; a generated password is shown once."""
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = data["password"] or password_generate()
        try:
            user = user_create(
                username=data["username"],
                email=data["email"],
                site_admin=data["site_admin"],
                password=password,
                actor=request.user,
            )
        except ValidationError as error:
            form.add_error("username", error)
        else:
            if not data["password"]:
                return _password_shown(request, user, password)
            messages.success(
                request,
                _("User %(name)s was created.") % {"name": user.get_username()},
            )
            return redirect("users:user-list")
    return render(request, "users/user_form.html", {"form": form})


@site_admin_required
def user_password_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """Renders users/user_password.html; a generated password is shown once."""
    user = user_get(user_id)
    form = PasswordResetForm(
        request.POST if request.method == "POST" else None, user=user
    )
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password"] or password_generate()
        user_password_set(user=user, password=password, actor=request.user)
        if not form.cleaned_data["password"]:
            return _password_shown(request, user, password)
        messages.success(
            request,
            _("The password of %(name)s was changed.") % {"name": user.get_username()},
        )
        return redirect("users:user-list")
    return render(
        request, "users/user_password.html", {"form": form, "shown_user": user}
    )


@require_POST
@site_admin_required
def user_active(request: HttpRequest, user_id: int) -> HttpResponse:
    """Deactivate or reactivate a user (``active`` is "0" or "1"), then go back."""
    user = user_get(user_id)
    active = request.POST.get("active") == "1"
    try:
        user_set_active(user=user, active=active, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        name = {"name": user.get_username()}
        if active:
            messages.success(request, _("%(name)s can log in again.") % name)
        else:
            messages.success(
                request,
                _(
                    "%(name)s was deactivated: no more logins, API tokens or "
                    "feeds. Their mail and history stay."
                )
                % name,
            )
    return redirect("users:user-list")


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    """Renders users/password_change.html: the user's own password.

    Django's PasswordChangeForm (the old password, then the new one twice,
    checked by the site's password validators); this session stays logged in.
    """
    form = PasswordChangeForm(
        request.user, request.POST if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        user_password_set(
            user=request.user,
            password=form.cleaned_data["new_password1"],
            actor=request.user,
        )
        update_session_auth_hash(request, request.user)
        messages.success(request, _("Your password was changed."))
        return redirect("users:password-change")
    return render(request, "users/password_change.html", {"form": form})
