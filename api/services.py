"""Writes about API tokens: creating, revoking, noting their use."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from spaces.services import audit_record

from .models import TOKEN_PREFIX, ApiToken, api_token_digest

HINT_LENGTH = len(TOKEN_PREFIX) + 4
MAX_EXPIRY_DAYS = 3650
# Last-used times are written at most this often per token, so that a busy
# script does not turn every read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiToken:
    """A token just made, and its secret: shown this once, stored nowhere."""

    token: ApiToken
    secret: str


@transaction.atomic(durable=True)
def api_token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    expires_in_days: int | None = None,
    actor: AbstractBaseUser | None = None,
) -> NewApiToken:
    """Make a personal API token for ``user``; only its digest is stored.

    ``expires_in_days`` None: the token lasts until revoked. Audit-logged.
    Raises ValidationError for a blank name or an expiry out of range. Not
    idempotent: every call makes another token.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name.")})
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise ValidationError(
            {
                "expires_in_days": _(
                    "A token expires after 1 to %(max)d days, or never."
                )
                % {"max": MAX_EXPIRY_DAYS}
            }
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = None
    if expires_in_days is not None:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    token = ApiToken(
        user=user,
        name=name,
        hint=secret[:HINT_LENGTH],
        digest=api_token_digest(secret),
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_record(
        actor=actor or user,
        action="api.token.create",
        target=f"user:{user.get_username()}",
        detail={
            "token": token.pk,
            "name": token.name,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return NewApiToken(token=token, secret=secret)


@transaction.atomic(durable=True)
def api_token_revoke(
    *, user: AbstractBaseUser, token_id: int, actor: AbstractBaseUser | None = None
) -> bool:
    """Revoke one of ``user``'s tokens: requests carrying it are refused from now.

    Returns False (and changes nothing) when ``user`` has no such token or it
    is revoked already, so it is safe to re-run. Audit-logged.
    """
    token = (
        ApiToken.objects.select_for_update()
        .filter(user=user, pk=token_id, revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor or user,
        action="api.token.revoke",
        target=f"user:{user.get_username()}",
        detail={"token": token.pk, "name": token.name},
    )
    return True


def api_token_touch(token: ApiToken) -> None:
    """Note that ``token`` was used now, unless that was noted under a minute ago.

    One UPDATE at most, outside any transaction of the request's own. Safe to
    re-run.
    """
    now = timezone.now()
    if (
        token.last_used_at is not None
        and now - token.last_used_at < LAST_USED_PRECISION
    ):
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
