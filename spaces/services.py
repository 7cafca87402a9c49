"""Writes about spaces: creating, changing and deleting them, granting and
revoking permissions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .contents import space_contents
from .models import AuditEvent, Level, Space, SpacePermission
from .selectors import space_contents_count


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


@transaction.atomic
def space_update(
    *,
    space: Space,
    name: str,
    description: str,
    allow_anonymous: bool,
    actor: AbstractBaseUser | None,
) -> Space:
    """Change a space's name, description and anonymous access; audit-logged.

    Raises ValidationError for a bad name. Safe to re-run: an unchanged space
    is neither saved nor logged again.
    """
    locked = Space.objects.select_for_update().get(pk=space.pk)
    before = {
        "name": locked.name,
        "description": locked.description,
        "allow_anonymous": locked.allow_anonymous,
    }
    after = {
        "name": name.strip(),
        "description": description,
        "allow_anonymous": allow_anonymous,
    }
    changed = sorted(field for field in after if before[field] != after[field])
    if not changed:
        return locked
    for field in changed:
        setattr(locked, field, after[field])
    locked.full_clean()
    locked.save()
    audit_record(
        actor=actor,
        action="space.update",
        space=locked,
        target=locked.key,
        detail={
            field: {"from": before[field], "to": after[field]} for field in changed
        },
    )
    for field in changed:
        setattr(space, field, after[field])
    return locked


def space_delete(*, space: Space, actor: AbstractBaseUser | None) -> bool:
    """Delete ``space`` with everything in it; audit-logged.

    First, in one transaction, the request is logged with what the space holds.
    Then every registered app removes its rows batch by batch, each batch in
    its own transaction (mail accounts first, so no new mail arrives; then
    messages with their attachments, releasing every stored object through
    the orphaned-object queue; then threads and imports); last, the grants
    and the space itself go, and the end is logged; rows that arrived
    meanwhile send it round again. Safe to re-run: a deletion
    that stopped half-way (a crash, a killed process) is finished by calling
    it again. Returns False when the space no longer exists.
    """
    with transaction.atomic(durable=True):
        locked = Space.objects.select_for_update().filter(pk=space.pk).first()
        if locked is None:
            return False
        counts = space_contents_count(locked)
        audit_record(
            actor=actor,
            action="space.delete",
            space=locked,
            target=locked.key,
            detail={"name": locked.name, **counts},
        )
    while True:
        for contents in space_contents():
            while contents.delete_batch(locked, actor):
                pass
        with transaction.atomic(durable=True):
            # Locked, no new row can refer to the space until it is gone; one
            # that came in while the batches ran (an import still running)
            # sends the deletion round again.
            Space.objects.select_for_update().filter(pk=locked.pk).first()
            if any(space_contents_count(locked).values()):
                continue
            SpacePermission.objects.filter(space_id=locked.pk).delete()
            Space.objects.filter(pk=locked.pk).delete()
            audit_record(
                actor=actor,
                action="space.delete.done",
                space=locked,
                target=locked.key,
                detail={"name": locked.name},
            )
        return True
