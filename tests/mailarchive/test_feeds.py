"""Atom feeds: entries, the session door, per-user tokens and revoking them."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailarchive import feeds
from mailarchive.models import FeedToken, Message
from mailarchive.services import (
    feed_token_regenerate,
    feed_token_revoke,
    message_trash,
)
from spaces.models import Level
from tests.conftest import ROLES, client_for, expected_status, login_client
from tests.factories import SpaceFactory, SpacePermissionFactory
from tests.mailarchive.test_views import BASE, ingest, raw_message

ATOM = "{http://www.w3.org/2005/Atom}"


def entries(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(response.content)
    return [
        {
            "title": entry.findtext(f"{ATOM}title"),
            "summary": entry.findtext(f"{ATOM}summary"),
            "link": entry.find(f"{ATOM}link").get("href"),
        }
        for entry in root.findall(f"{ATOM}entry")
    ]


@pytest.fixture
def feed_mail(actors):
    first = ingest(
        actors.space,
        raw_message(
            subject="Launch date",
            sender="Dana Lee <dana@example.com>",
            msgid="launch@x",
            body="> old quote\nWe launch on Monday.\n-- \nDana\n",
        ),
    )
    second = ingest(
        actors.space,
        raw_message(
            subject="Re: Launch date",
            sender="erin@example.com",
            msgid="re-launch@x",
            refs=("launch@x",),
            date=BASE + timedelta(hours=2),
        ),
    )
    return first, second


def session_feed(key: str = "SALES") -> str:
    return reverse("mailarchive:feed", kwargs={"key": key})


def token_feed(token: str, key: str = "SALES") -> str:
    return reverse("mailarchive:feed-token-url", kwargs={"key": key, "token": token})


@pytest.mark.django_db
def test_feed_entries_have_title_summary_and_permalink(actors, feed_mail):
    first, second = feed_mail
    response = client_for(actors, "viewer").get(session_feed())
    got = entries(response)
    assert [e["title"] for e in got] == [
        "Re: Launch date — erin@example.com",
        "Launch date — Dana Lee",
    ]
    assert got[1]["summary"] == "We launch on Monday."
    assert got[1]["link"] == "http://testserver" + reverse(
        "mailarchive:message-detail", kwargs={"key": "SALES", "message_pk": first.pk}
    )
    message_trash(space=actors.space, message_pk=second.pk, actor=actors.deleter)
    after = entries(client_for(actors, "viewer").get(session_feed()))
    assert [e["title"] for e in after] == ["Launch date — Dana Lee"]


@pytest.mark.django_db
def test_public_space_feed_needs_no_login(feed_mail, actors):
    public = SpaceFactory(key="OPEN", allow_anonymous=True)
    ingest(public, raw_message(subject="Hello world", msgid="hello@x"))
    response = login_client(None).get(session_feed("OPEN"))
    assert response.status_code == 200
    assert [e["title"] for e in entries(response)] == ["Hello world — Alice Example"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
def test_token_feed_answers_for_the_user_behind_the_token(actors, feed_mail, role):
    user = getattr(actors, role)
    token = feed_token_regenerate(user=user).token
    response = login_client(None).get(token_feed(token))
    allowed = expected_status(role, Level.VIEW) == 200
    assert response.status_code == (200 if allowed else 404)


@pytest.mark.django_db
def test_revoked_replaced_or_unknown_tokens_are_404(actors, feed_mail):
    anonymous = login_client(None)
    old = feed_token_regenerate(user=actors.viewer).token
    new = feed_token_regenerate(user=actors.viewer).token
    assert old != new
    assert anonymous.get(token_feed(old)).status_code == 404
    assert anonymous.get(token_feed(new)).status_code == 200
    assert anonymous.get(token_feed(new, key="NOSUCH")).status_code == 404
    actors.viewer.is_active = False
    actors.viewer.save()
    assert anonymous.get(token_feed(new)).status_code == 404
    actors.viewer.is_active = True
    actors.viewer.save()
    assert feed_token_revoke(user=actors.viewer)
    assert not feed_token_revoke(user=actors.viewer)
    assert anonymous.get(token_feed(new)).status_code == 404
    assert anonymous.get(token_feed("nonsense")).status_code == 404


@pytest.mark.django_db
def test_feed_token_page_shows_regenerates_and_revokes(actors, feed_mail):
    page = reverse("mailarchive:feed-token")
    assert login_client(None).get(page).status_code == 302
    client = client_for(actors, "viewer")
    assert "You have no feed token." in client.get(page).content.decode()
    made = client.post(page, {"action": "regenerate"})
    shown = made.content.decode()
    token = re.search(r"/feed/([A-Za-z0-9_-]+)/", shown).group(1)
    assert "http://testserver" + token_feed(token) in shown
    assert made["Cache-Control"] == "no-store"
    first = FeedToken.objects.get(user=actors.viewer).token_hash
    assert first == hashlib.sha256(token.encode()).hexdigest()
    assert token not in client.get(page).content.decode()
    client.post(page, {"action": "regenerate"})
    assert FeedToken.objects.get(user=actors.viewer).token_hash != first
    client.post(page, {"action": "revoke"})
    assert not FeedToken.objects.filter(user=actors.viewer).exists()


@pytest.mark.django_db
def test_feed_tokens_are_stored_only_as_digests(actors, feed_mail):
    """GIVEN a new feed token WHEN the database and the admin are searched
    for it THEN neither holds nor reveals it, and the admin refuses filters on
    its digest (which would reveal it a character at a time)."""
    made = feed_token_regenerate(user=actors.viewer)
    row = FeedToken.objects.values().get(user=actors.viewer)
    assert made.token not in str(row)
    admin = client_for(actors, "site_admin")
    listing = reverse("admin:mailarchive_feedtoken_changelist")
    page = admin.get(listing).content.decode()
    assert made.token not in page and row["token_hash"] not in page
    admin.raise_request_exception = False
    for lookup in (
        "token_hash__startswith",
        "token_hash",
        "token_hash__regex",
        "token__startswith",
    ):
        answer = admin.get(listing, {lookup: row["token_hash"][:1]})
        assert answer.status_code in (302, 400), lookup
        assert answer.status_code != 200
    users = reverse("admin:auth_user_changelist")
    through_user = admin.get(
        users, {"feed_token__token_hash__startswith": row["token_hash"][:1]}
    )
    assert through_user.status_code in (302, 400)
    change = admin.get(
        reverse("admin:mailarchive_feedtoken_change", args=[made.record.pk])
    ).content.decode()
    assert row["token_hash"] not in change and made.token not in change
    assert admin.get(listing, {"q": row["token_hash"][:8]}).status_code == 200
    assert (
        "0 feed tokens"
        in admin.get(listing, {"q": row["token_hash"][:8]}).content.decode()
    )


@pytest.mark.django_db(transaction=True)
def test_migration_hashes_tokens_so_feed_urls_handed_out_keep_working():
    """GIVEN a feed token stored in plain text before migration 0008 WHEN the
    migration runs THEN only its digest is stored and the feed URL carrying
    the old token still answers."""
    executor = MigrationExecutor(connection)
    before = [("mailarchive", "0007_message_index_state")]
    after = [("mailarchive", "0008_feedtoken_hash")]
    try:
        executor.migrate(before)
        old_apps = executor.loader.project_state(before).apps
        user = old_apps.get_model("auth", "User").objects.create(username="reader")
        old_apps.get_model("mailarchive", "FeedToken").objects.create(
            user_id=user.pk, token="handed-out-before"
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        # Later migrations (and the tests that run after this one) need the
        # schema back at its newest, whatever happened above.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    stored = FeedToken.objects.get(user_id=user.pk)
    assert stored.token_hash == hashlib.sha256(b"handed-out-before").hexdigest()
    space = SpaceFactory(key="OLD")
    SpacePermissionFactory(space=space, user_id=user.pk, level=Level.VIEW)
    response = login_client(None).get(token_feed("handed-out-before", key="OLD"))
    assert response.status_code == 200


# A body column selected as it is, rather than inside a function such as
# LEFT(…) or ts_rank(…) that the database evaluates.
WHOLE_BODY = re.compile(
    r'(?:SELECT |, )"mailarchive_message"\.'
    r'"(?:text_body|html_body|search_text|search_vector)"(?=,|$)'
)


def assert_bodies_not_selected(sql: str) -> None:
    """The select list of ``sql`` hands no body column whole to Python."""
    selected = sql.split(" FROM ", 1)[0]
    assert not WHOLE_BODY.search(selected), sql[:2000]


@pytest.mark.django_db
def test_feed_reads_only_the_start_of_each_body(actors, monkeypatch):
    """GIVEN messages with bodies of several megabytes WHEN the feed is drawn
    THEN its query selects no body column whole, and no more than
    SUMMARY_SOURCE_CHARS of any body reaches Python."""
    huge = "We launch on Monday. " + "word " * 1_000_000
    for n in range(3):
        message = ingest(actors.space, raw_message(subject=f"Big {n}", msgid=f"b{n}@x"))
        Message.objects.filter(pk=message.pk).update(text_body=huge, html_body=huge)
    seen: list[int] = []
    real_excerpt = feeds.excerpt

    def measured(text: str, length: int = 200) -> str:
        seen.append(len(text))
        return real_excerpt(text, length)

    monkeypatch.setattr(feeds, "excerpt", measured)
    client = client_for(actors, "viewer")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(session_feed())
    assert response.status_code == 200
    assert [e["summary"] for e in entries(response)][0].startswith("We launch")
    assert seen and max(seen) <= feeds.SUMMARY_SOURCE_CHARS
    message_queries = [q["sql"] for q in queries if "mailarchive_message" in q["sql"]]
    assert message_queries
    for sql in message_queries:
        assert_bodies_not_selected(sql)
