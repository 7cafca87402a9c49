"""mbox export: a space, a thread or a search result, byte-exact, permission-checked."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from mailarchive.exports import mbox_export_chunks, messages_for_export
from mailarchive.mbox import iter_mbox
from mailarchive.models import Message
from mailarchive.services import message_ingest
from mailarchive.storage import blob_read
from tests.conftest import ROLES, client_for, expected_status
from tests.factories import SpaceFactory

BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def raw_message(
    n: int,
    subject: str,
    body: str = "Hello.\n",
    refs: str = "",
    days: int = 0,
) -> bytes:
    headers = [
        "From: Bob Example <bob@example.com>",
        "To: team@example.com",
        f"Subject: {subject}",
        f"Date: {format_datetime(BASE + timedelta(days=days))}",
        f"Message-ID: <m{n}@example.com>",
    ]
    if refs:
        headers.append(f"References: <{refs}>")
        headers.append(f"In-Reply-To: <{refs}>")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


@pytest.fixture
def archive(actors) -> dict[str, Message]:
    """Messages stored in an order unlike their dates, one of them trashed."""
    space = actors.space
    raws = {
        "reply": raw_message(
            2, "Re: Plans", "Agreed.\n", refs="m1@example.com", days=2
        ),
        "first": raw_message(1, "Plans", "From here on we plan.\n>From there too.\n"),
        "other": raw_message(3, "Invoice quarterly", "Numbers.\n", days=1),
        "trashed": raw_message(4, "Invoice spam", "Buy.\n", days=3),
        "no-newline": raw_message(5, "Last words", "no newline at the end", days=4),
    }
    stored = {}
    for name, raw in raws.items():
        result = message_ingest(space_id=space.pk, raw=raw, source="import")
        stored[name] = Message.objects.get(pk=result.message_pk)
    Message.objects.filter(pk=stored["trashed"].pk).update(deleted_at=timezone.now())
    return stored


def entries_of(content: bytes) -> list[bytes]:
    return [entry.raw for entry in iter_mbox(io.BytesIO(content))]


def export_url(name: str, actors, archive, **query: str) -> str:
    kwargs = {"key": actors.space.key}
    if name == "export-thread":
        kwargs["thread_id"] = archive["first"].thread_id
    path = reverse(f"mbox:{name}", kwargs=kwargs)
    return path + (
        "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    )


EXPORTS = [
    ("export-space", {}),
    ("export-thread", {}),
    ("export-search", {"q": "invoice"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "query"), EXPORTS, ids=[e[0] for e in EXPORTS])
def test_exports_need_view_permission(actors, archive, role, name, query):
    response = client_for(actors, role).get(export_url(name, actors, archive, **query))
    assert response.status_code == expected_status(role, 10)


def test_space_export_is_every_live_message_oldest_first_byte_identical(
    actors, archive
):
    response = client_for(actors, "viewer").get(
        export_url("export-space", actors, archive)
    )
    assert response.streaming
    assert response["Content-Type"] == "application/mbox"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="SALES-')
    assert disposition.endswith('.mbox"')
    assert response["X-Content-Type-Options"] == "nosniff"
    content = b"".join(response.streaming_content)
    expected = [
        blob_read(archive[name].raw_name)
        for name in ("first", "other", "reply", "no-newline")
    ]
    got = entries_of(content)
    # Only the message without a final newline gains one (documented in mbox.py).
    assert got == [*expected[:3], expected[3] + b"\n"]
    assert b"\n>>From there too." in content and b"\n>From here on" in content


def test_gzip_export_decompresses_to_the_plain_one(actors, archive):
    client = client_for(actors, "viewer")
    plain = b"".join(
        client.get(export_url("export-space", actors, archive)).streaming_content
    )
    response = client.get(export_url("export-space", actors, archive, gzip="1"))
    assert response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"].endswith('.mbox.gz"')
    assert gzip.decompress(b"".join(response.streaming_content)) == plain


def test_thread_export_holds_the_thread_only(actors, archive):
    assert archive["first"].thread_id == archive["reply"].thread_id
    response = client_for(actors, "viewer").get(
        export_url("export-thread", actors, archive)
    )
    assert "-thread-" in response["Content-Disposition"]
    assert entries_of(b"".join(response.streaming_content)) == [
        blob_read(archive["first"].raw_name),
        blob_read(archive["reply"].raw_name),
    ]


def test_thread_of_another_space_is_not_found(actors, archive):
    other = SpaceFactory(key="ELSE")
    result = message_ingest(space_id=other.pk, raw=raw_message(9, "x"), source="import")
    thread_id = Message.objects.get(pk=result.message_pk).thread_id
    response = client_for(actors, "site_admin").get(
        reverse("mbox:export-thread", kwargs={"key": "SALES", "thread_id": thread_id})
    )
    assert response.status_code == 404


def test_search_export_holds_the_matches_without_trashed_ones(actors, archive):
    response = client_for(actors, "viewer").get(
        export_url("export-search", actors, archive, q="invoice")
    )
    assert response.status_code == 200
    assert entries_of(b"".join(response.streaming_content)) == [
        blob_read(archive["other"].raw_name)
    ]


def test_search_export_without_a_search_is_refused(actors, archive):
    response = client_for(actors, "viewer").get(
        export_url("export-search", actors, archive)
    )
    assert response.status_code == 400


def test_export_of_an_empty_space_is_an_empty_file(actors):
    response = client_for(actors, "viewer").get(
        reverse("mbox:export-space", kwargs={"key": "SALES"})
    )
    assert b"".join(response.streaming_content) == b""


def test_reimporting_an_export_adds_nothing(actors, archive):
    content = b"".join(mbox_export_chunks(messages_for_export(actors.space)))
    before = Message.objects.count()
    results = [
        message_ingest(space_id=actors.space.pk, raw=raw, source="import")
        for raw in entries_of(content)
    ]
    assert not any(r.created for r in results)
    assert Message.objects.count() == before


def test_export_reads_in_batches_and_keeps_order_across_equal_dates(actors):
    """Messages with one and the same date still come out once each, in id order,
    however the batches fall."""
    space = actors.space
    pks = []
    for n in range(7):
        raw = raw_message(100 + n, f"Same time {n}")
        pks.append(
            message_ingest(space_id=space.pk, raw=raw, source="import").message_pk
        )
    chunks = list(mbox_export_chunks(messages_for_export(space), batch_size=3))
    assert len(chunks) == 7
    expected = [blob_read(Message.objects.get(pk=pk).raw_name) for pk in sorted(pks)]
    assert entries_of(b"".join(chunks)) == expected
