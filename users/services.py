"""Writes about the site's users: creating them, their passwords, deactivation.

Users are Django's own ``auth.User``; a site admin is a superuser (with staff
status, so the Django admin lets them in too). Every write is audit-logged.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from spaces.services import audit_record

# Bytes of randomness in a generated password (16 URL-safe characters).
GENERATED_PASSWORD_BYTES = 12


def password_generate() -> str:
    """A random password for a person to change after logging in."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str = "",
    site_admin: bool = False,
    password: str,
    actor: AbstractBaseUser | None,
) -> AbstractBaseUser:
    """Create an active user with ``password``; audit-logged.

    Raises ValidationError for a taken user name. Not safe to re-run: the
    second call fails on the taken name.
    """
    users = get_user_model().objects
    if users.filter(username__iexact=username).exists():
        raise ValidationError(
            _("A user named %(name)s already exists.") % {"name": username}
        )
    user = users.create_user(
        username=username,
        email=email,
        password=password,
        is_superuser=site_admin,
        is_staff=site_admin,
    )
    audit_record(
        actor=actor,
        action="user.create",
        target=username,
        detail={"email": email, "site_admin": site_admin},
    )
    return user


@transaction.atomic
def user_password_set(
    *, user: AbstractBaseUser, password: str, actor: AbstractBaseUser | None
) -> None:
    """Give ``user`` a new password (a reset by a site admin, or their own
    change); audit-logged. Safe to re-run."""
    user.set_password(password)
    user.save(update_fields=["password"])
    own = actor is not None and actor.pk == user.pk
    audit_record(
        actor=actor,
        action="user.password_change" if own else "user.password_reset",
        target=user.get_username(),
    )


@transaction.atomic
def user_set_active(
    *, user: AbstractBaseUser, active: bool, actor: AbstractBaseUser | None
) -> None:
    """Deactivate (no more logins, API tokens or feeds) or reactivate ``user``;
    audit-logged.

    Raises ValidationError when a site admin would deactivate themselves, or
    the last active site admin. Safe to re-run (an unchanged state is not
    logged again).
    """
    if user.is_active == active:
        return
    if not active:
        if actor is not None and actor.pk == user.pk:
            raise ValidationError(_("You cannot deactivate yourself."))
        others = (
            get_user_model()
            .objects.select_for_update()
            .filter(is_superuser=True, is_active=True)
            .exclude(pk=user.pk)
        )
        if user.is_superuser and not others.exists():
            raise ValidationError(
                _("%(name)s is the last active site admin.")
                % {"name": user.get_username()}
            )
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target=user.get_username(),
    )
