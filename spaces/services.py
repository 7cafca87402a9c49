"""Writes about spaces: creating them, granting and revoking permissions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .models import AuditEvent, Level, Space, SpacePermission


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    space: Space | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. Call it inside the transaction of the change."""
    name = ""
    if actor is not None and getattr(actor, "is_authenticated", False):
        name = actor.get_username()
    return AuditEvent.objects.create(
        actor=actor if name else None,
        actor_name=name,
        action=action,
        space=space,
        target=target[:500],
        detail=detail or {},
    )


@transaction.atomic
def space_create(
    *,
    key: str,
    name: str,
    description: str = "",
    personal_owner: AbstractBaseUser | None = None,
    admins: list[AbstractBaseUser] | None = None,
    allow_anonymous: bool = False,
    actor: AbstractBaseUser | None = None,
) -> Space:
    """Create a space and grant ADMIN to ``admins``.

    Raises ValidationError for a bad or taken key. Not safe to re-run: the second
    call fails on the taken key.
    """
    key = key.strip()
    space = Space(
        key=key,
        name=name.strip(),
        description=description,
        kind=Space.Kind.PERSONAL if personal_owner else Space.Kind.GLOBAL,
        owner=personal_owner,
        allow_anonymous=allow_anonymous,
    )
    space.full_clean()
    space.save()
    for admin in admins or []:
        SpacePermission.objects.create(space=space, user=admin, level=Level.ADMIN)
    audit_record(
        actor=actor,
        action="space.create",
        space=space,
        target=space.key,
        detail={"admins": [a.get_username() for a in admins or []]},
    )
    return space


@transaction.atomic
def space_permission_grant(
    *,
    space: Space,
    level: int,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
    actor: AbstractBaseUser | None,
) -> SpacePermission:
    """Set the level of one user or group in ``space`` (replacing any earlier one).

    Safe to re-run: granting the same level twice leaves one grant.
    """
    if (user is None) == (group is None):
        raise ValidationError(_("Choose either a user or a group."))
    if level not in Level.values:
        raise ValidationError(_("Unknown permission level."))
    lookup = (
        {"space": space, "user": user} if user else {"space": space, "group": group}
    )
    grant, _created = SpacePermission.objects.update_or_create(
        **lookup, defaults={"level": level}
    )
    principal = f"user:{user.get_username()}" if user else f"group:{group.name}"
    audit_record(
        actor=actor,
        action="space.permission.grant",
        space=space,
        target=principal,
        detail={"level": Level(level).name.lower()},
    )
    return grant


@transaction.atomic
def space_permission_revoke(
    *, grant_id: int, space: Space, actor: AbstractBaseUser | None
) -> None:
    """Remove one grant of ``space``. Safe to re-run: a missing grant is no error."""
    grant = (
        SpacePermission.objects.select_related("user", "group")
        .filter(pk=grant_id, space=space)
        .first()
    )
    if grant is None:
        return
    principal = (
        f"user:{grant.user.get_username()}"
        if grant.user
        else f"group:{grant.group.name}"
    )
    grant.delete()
    audit_record(
        actor=actor, action="space.permission.revoke", space=space, target=principal
    )
