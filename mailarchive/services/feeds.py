"""Personal feed tokens: the secret a feed reader uses instead of a login."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from spaces.services import audit_record

from ..models import FeedToken


@transaction.atomic(durable=True)
def feed_token_regenerate(*, user: AbstractBaseUser) -> FeedToken:
    """Give ``user`` a new feed token, revoking the old one and its URLs.

    Every call makes a new token; audit-logged.
    """
    token, _created = FeedToken.objects.update_or_create(
        user=user, defaults={"token": secrets.token_urlsafe(32)}
    )
    audit_record(actor=user, action="feed.token.regenerate", target=str(user.pk))
    return token


@transaction.atomic(durable=True)
def feed_token_revoke(*, user: AbstractBaseUser) -> bool:
    """Remove ``user``'s feed token; False when there was none. Safe to re-run."""
    deleted, _counts = FeedToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(actor=user, action="feed.token.revoke", target=str(user.pk))
    return bool(deleted)
