"""Fixtures of the API tests: clients holding tokens, a small space of mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke
from mailarchive.models import Message
from mailarchive.services import message_ingest, messages_secure
from spaces.models import Level
from tests.conftest import ROLE_LEVEL, ROLES, Actors
from tests.mailarchive.test_views import PNG, raw_message

# The roles of the pages' permission matrix, and two more: a token that was
# revoked and one that expired (both of the site admin, who may do anything).
API_ROLES = [*ROLES, "revoked", "expired"]

BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Every test starts with no request counted against any rate limit."""
    cache.clear()


def token_for(user: Any, name: str = "test") -> str:
    return api_token_create(user=user, name=name).secret


def bearer(secret: str | None) -> Client:
    """A client that sends ``secret`` as its bearer token (None: no header)."""
    if secret is None:
        return Client()
    return Client(headers={"authorization": f"Bearer {secret}"})


def api_client(actors: Actors, role: str) -> Client:
    """A client for ``role``, signed in with a token of its own."""
    if role == "anonymous":
        return bearer(None)
    if role == "revoked":
        created = api_token_create(user=actors.site_admin, name="old")
        api_token_revoke(user=actors.site_admin, token_id=created.token.pk)
        return bearer(created.secret)
    if role == "expired":
        created = api_token_create(
            user=actors.site_admin, name="short", expires_in_days=1
        )
        ApiToken.objects.filter(pk=created.token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        return bearer(created.secret)
    return bearer(token_for(getattr(actors, role)))


def api_expected(role: str, needed: int, ok: int = 200) -> int:
    """What an endpoint of the space answers ``role`` when it needs ``needed``.

    The pages' decisions, said in HTTP: a space the caller may not see is 404,
    or 401 without credentials (where the pages send people to log in); a
    missing level is 403; a revoked or expired token is 401 everywhere.
    """
    if role in ("revoked", "expired", "anonymous"):
        return 401
    held = ROLE_LEVEL[role]
    if held is None:
        return 404
    return ok if held >= needed else 403


@dataclass
class ApiMail:
    """A small space of mail: a thread of two, one with files, one pending."""

    root: Message
    reply: Message
    files: Message
    pending: Message


def ingest(space, raw: bytes) -> Message:
    result = message_ingest(space_id=space.pk, raw=raw, source="import")
    return Message.objects.get(pk=result.message_pk)


@pytest.fixture
def mail(actors: Actors) -> ApiMail:
    return make_mail(actors.space)


def make_mail(space) -> ApiMail:
    """Four messages in ``space``; each call writes other Message-IDs' rows."""
    root = ingest(space, raw_message(subject="Plans", msgid="root@x", date=BASE))
    reply = ingest(
        space,
        raw_message(
            subject="Re: Plans",
            msgid="reply@x",
            refs=("root@x",),
            date=BASE + timedelta(hours=1),
            sender="Bob <bob@example.com>",
            body="Agreed, the invoice follows.\n",
        ),
    )
    files = ingest(
        space,
        raw_message(
            subject="Files",
            msgid="files@x",
            date=BASE + timedelta(days=40),
            attachments=(
                ("report.pdf", "application/pdf", b"%PDF-1.4 fake"),
                ("pixel.png", "image/png", PNG),
            ),
        ),
    )
    # Secured and not indexed yet, as a poll leaves a message for a moment.
    (secured,) = messages_secure(
        space_id=space.pk,
        raws=[raw_message(subject="Waiting", msgid="pending@x", date=BASE)],
        source="import",
    )
    pending = Message.objects.get(pk=secured.message_pk)
    return ApiMail(root=root, reply=reply, files=files, pending=pending)


__all__ = ["API_ROLES", "Level"]
