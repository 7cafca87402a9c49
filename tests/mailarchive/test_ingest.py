"""Ingest: exactly once per space, nothing dropped, threads that join up."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from mailarchive.models import Attachment, Message, Thread
from mailarchive.services import message_ingest
from mailarchive.storage import blob_read
from tests.factories import SpaceFactory

BASE_DATE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def make_raw(
    msgid: str | None,
    subject: str = "Hello",
    body: str = "Body text.\n",
    refs: list[str] | None = None,
    date: datetime | None = None,
    extra: str = "",
) -> bytes:
    lines = [
        "From: Alice Example <alice@example.com>",
        "To: team@example.com",
        f"Subject: {subject}",
        f"Date: {format_datetime(date or BASE_DATE)}",
    ]
    if msgid:
        lines.append(f"Message-ID: <{msgid}>")
    if refs:
        lines.append("References: " + " ".join(f"<{r}>" for r in refs))
        lines.append(f"In-Reply-To: <{refs[-1]}>")
    lines.append(extra.rstrip("\n")) if extra else None
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


@pytest.mark.django_db
def test_same_message_twice_is_one_message():
    space = SpaceFactory()
    raw = make_raw("a@x")
    first = message_ingest(space_id=space.pk, raw=raw, source="poll")
    second = message_ingest(space_id=space.pk, raw=raw, source="poll")
    assert first.created and not second.created
    assert first.message_pk == second.message_pk
    assert Message.objects.filter(space=space).count() == 1


@pytest.mark.django_db
def test_trace_headers_do_not_make_a_new_message():
    space = SpaceFactory()
    raw = make_raw("a@x")
    relayed = b"Received: from mx.example.com by mail.example.com\r\n" + raw
    message_ingest(space_id=space.pk, raw=raw, source="poll")
    again = message_ingest(space_id=space.pk, raw=relayed, source="poll")
    assert not again.created


@pytest.mark.django_db
def test_same_message_in_two_spaces_is_archived_in_each():
    raw = make_raw("a@x")
    one, two = SpaceFactory(), SpaceFactory()
    assert message_ingest(space_id=one.pk, raw=raw, source="poll").created
    assert message_ingest(space_id=two.pk, raw=raw, source="poll").created


@pytest.mark.django_db
def test_same_message_id_other_content_is_kept_and_flagged():
    space = SpaceFactory()
    message_ingest(
        space_id=space.pk, raw=make_raw("dup@x", body="one\n"), source="poll"
    )
    result = message_ingest(
        space_id=space.pk, raw=make_raw("dup@x", body="two\n"), source="poll"
    )
    assert result.created
    rows = Message.objects.filter(space=space, message_id="dup@x")
    assert rows.count() == 2
    assert all(m.message_id_conflict for m in rows)


@pytest.mark.django_db
def test_missing_message_id_uses_content_identity():
    space = SpaceFactory()
    a = message_ingest(space_id=space.pk, raw=make_raw(None, body="x\n"), source="poll")
    b = message_ingest(space_id=space.pk, raw=make_raw(None, body="x\n"), source="poll")
    c = message_ingest(space_id=space.pk, raw=make_raw(None, body="y\n"), source="poll")
    assert a.created and not b.created and c.created
    assert "missing-message-id" in Message.objects.get(pk=a.message_pk).problems


@pytest.mark.django_db
def test_raw_bytes_are_kept_exactly():
    space = SpaceFactory()
    raw = make_raw("bytes@x", body="caf\xe9\n").replace(b"caf", b"\xff\xfe caf")
    result = message_ingest(space_id=space.pk, raw=raw, source="poll")
    message = Message.objects.get(pk=result.message_pk)
    assert blob_read(message.raw_name) == raw
    assert message.raw_size == len(raw)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\x01\x02 not a message \xff", b"Subject: \x00nul\r\n\r\nbody\x00\r\n"],
    ids=["empty", "binary-garbage", "nul-bytes"],
)
def test_garbage_is_archived_not_dropped(raw):
    space = SpaceFactory()
    result = message_ingest(space_id=space.pk, raw=raw, source="import")
    message = Message.objects.get(pk=result.message_pk)
    assert blob_read(message.raw_name) == raw
    assert "\x00" not in message.subject + message.text_body


@pytest.mark.django_db
def test_attachments_stored_once_across_messages():
    space = SpaceFactory()
    attachment = (
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=report.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    for n in range(2):
        raw = (
            make_raw(f"att{n}@x").split(b"\r\n\r\n")[0] + b"\r\n" + attachment.encode()
        )
        message_ingest(space_id=space.pk, raw=raw, source="poll")
    rows = Attachment.objects.filter(message__space=space, filename="report.pdf")
    assert rows.count() == 2
    assert len({r.blob_name for r in rows}) == 1
    assert blob_read(rows[0].blob_name) == b"%PDF-1.4\n"
    assert Message.objects.filter(space=space, has_attachments=True).count() == 2


CHAIN = [
    ("root@x", []),
    ("r1@x", ["root@x"]),
    ("r2@x", ["root@x", "r1@x"]),
    ("r3@x", ["root@x"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize("order", list(itertools.permutations(range(len(CHAIN)))))
def test_thread_joins_up_in_any_delivery_order(order):
    """GIVEN a root and three replies WHEN they arrive in any order
    THEN they end in one thread holding each exactly once."""
    space = SpaceFactory()
    for i in order:
        msgid, refs = CHAIN[i]
        subject = "Plan" if not refs else "Re: Plan"
        raw = make_raw(
            msgid, subject=subject, refs=refs, date=BASE_DATE + timedelta(hours=i)
        )
        message_ingest(space_id=space.pk, raw=raw, source="poll")
    threads = Thread.objects.filter(space=space)
    assert threads.count() == 1
    thread = threads.get()
    assert thread.message_count == 4
    assert sorted(thread.messages.values_list("message_id", flat=True)) == sorted(
        m for m, _ in CHAIN
    )
    assert thread.first_date == BASE_DATE


@pytest.mark.django_db
def test_missing_parent_links_siblings_through_shared_reference():
    space = SpaceFactory()
    for n in range(3):
        raw = make_raw(f"child{n}@x", subject="Re: gone", refs=["never-arrived@x"])
        message_ingest(space_id=space.pk, raw=raw, source="poll")
    assert Thread.objects.filter(space=space).count() == 1


@pytest.mark.django_db
def test_reply_subject_without_references_joins_recent_thread():
    space = SpaceFactory()
    message_ingest(
        space_id=space.pk, raw=make_raw("p@x", subject="Budget"), source="poll"
    )
    message_ingest(
        space_id=space.pk, raw=make_raw("q@x", subject="RE: Budget"), source="poll"
    )
    message_ingest(
        space_id=space.pk, raw=make_raw("s@x", subject="Budget"), source="poll"
    )
    counts = sorted(
        Thread.objects.filter(space=space).values_list("message_count", flat=True)
    )
    assert counts == [1, 2]


@pytest.mark.django_db
def test_reference_cycle_does_not_break_threading():
    space = SpaceFactory()
    message_ingest(space_id=space.pk, raw=make_raw("a@x", refs=["b@x"]), source="poll")
    message_ingest(space_id=space.pk, raw=make_raw("b@x", refs=["a@x"]), source="poll")
    message_ingest(space_id=space.pk, raw=make_raw("c@x", refs=["c@x"]), source="poll")
    assert Message.objects.filter(space=space, thread__isnull=True).count() == 0
    assert Thread.objects.filter(space=space).count() == 2
