"""Personal feed tokens: the secret a feed reader uses instead of a login."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from spaces.services import audit_record

from ..models import FeedToken
from ..selectors import feed_token_digest


@dataclass(frozen=True)
class NewFeedToken:
    """A feed token just made: the only time its plain text is known."""

    token: str
    record: FeedToken


@transaction.atomic(durable=True)
def feed_token_regenerate(*, user: AbstractBaseUser) -> NewFeedToken:
    """Give ``user`` a new feed token, revoking the old one and its URLs.

    Stores only the token's digest; the plain token is returned, to be shown
    once. Every call makes a new token; audit-logged.
    """
    token = secrets.token_urlsafe(32)
    record, _created = FeedToken.objects.update_or_create(
        user=user, defaults={"token_hash": feed_token_digest(token)}
    )
    audit_record(actor=user, action="feed.token.regenerate", target=str(user.pk))
    return NewFeedToken(token=token, record=record)


# Not durable: the Django admin deletes inside its own transaction.
@transaction.atomic
def feed_token_revoke(
    *, user: AbstractBaseUser, actor: AbstractBaseUser | None = None
) -> bool:
    """Remove ``user``'s feed token; False when there was none. Safe to re-run.

    Audit-logged as done by ``actor`` (a site admin), or by the user.
    """
    deleted, _counts = FeedToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(
            actor=actor or user, action="feed.token.revoke", target=str(user.pk)
        )
    return bool(deleted)
