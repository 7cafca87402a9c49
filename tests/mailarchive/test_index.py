"""The two stages: secured first, indexed later, on several workers at once."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.urls import reverse

from accounts.models import FetchedMessage
from mailarchive.models import TOO_COMPLEX, Attachment, Message, Thread
from mailarchive.services import (
    index,
    message_ingest,
    messages_index,
    messages_index_pending,
    messages_secure,
)
from mailarchive.storage import blob_read
from tests.conftest import client_for
from tests.factories import SpaceFactory

BASE = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


def raw(n: int, parent: int | None = None, marker: str = "") -> bytes:
    lines = [
        f"From: Person {n % 5} <p{n % 5}@example.com>",
        "To: team@example.com",
        f"Subject: {'Re: ' if parent is not None else ''}Topic {parent or n}",
        f"Date: {format_datetime(BASE + timedelta(minutes=n))}",
        f"Message-ID: <m{n}@example.com>",
    ]
    if parent is not None:
        lines.append(f"In-Reply-To: <m{parent}@example.com>")
        lines.append(f"References: <m{parent}@example.com>")
    if marker:
        lines.append(f"X-Parser-Test: {marker}")
    return ("\r\n".join(lines) + f"\r\n\r\nBody of message {n}.\r\n").encode()


def conversation() -> list[bytes]:
    """Ten threads of five: each reply names its parent; replies come first."""
    raws = []
    for root in range(0, 50, 5):
        raws += [raw(root + k, parent=root + k - 1) for k in range(4, 0, -1)]
        raws.append(raw(root))
    return raws


def thread_shape(space) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for message_id, thread_id in Message.objects.filter(space=space).values_list(
        "message_id", "thread_id"
    ):
        groups.setdefault(thread_id, []).append(message_id)
    return sorted(sorted(ids) for ids in groups.values())


@pytest.mark.django_db
def test_a_secured_message_waits_visibly_and_raw_until_indexed(actors):
    """GIVEN a message secured but not indexed (a crash between the stages)
    THEN it is listed, counted as waiting, and its page shows its raw source;
    WHEN the pending messages are indexed THEN it reads like any other."""
    space = actors.space
    with transaction.atomic():
        (secured,) = messages_secure(
            space_id=space.pk, raws=[raw(1)], source=Message.Source.IMPORT
        )
    message = Message.objects.get(pk=secured.message_pk)
    assert message.pending and message.subject == ""
    client = client_for(actors, "viewer")
    listing = client.get(reverse("mailarchive:mail-list", kwargs={"key": space.key}))
    assert "1 message is archived and waiting to be indexed" in listing.content.decode()
    page = client.get(message.get_absolute_url()).content.decode()
    assert "waiting to be indexed" in page
    assert "Body of message 1." in page

    summary = messages_index_pending(space_id=space.pk)

    assert summary.indexed == 1
    message.refresh_from_db()
    assert not message.pending
    assert message.subject == "Topic 1"
    assert message.thread_id is not None
    listing = client.get(reverse("mailarchive:mail-list", kwargs={"key": space.key}))
    assert "waiting to be indexed" not in listing.content.decode()


@pytest.mark.django_db
def test_securing_twice_adds_nothing_and_indexing_twice_changes_nothing():
    space = SpaceFactory()
    raws = conversation()[:10]
    with transaction.atomic():
        first = messages_secure(space_id=space.pk, raws=raws, source="import")
    with transaction.atomic():
        again = messages_secure(
            space_id=space.pk, raws=[*raws, raws[0]], source="import"
        )
    assert all(r.created for r in first)
    assert not any(r.created for r in again)
    assert [r.message_pk for r in again[:10]] == [r.message_pk for r in first]
    pks = [r.message_pk for r in first]
    assert messages_index(message_pks=pks).indexed == 10
    shape = thread_shape(space)
    assert messages_index(message_pks=pks).indexed == 0
    assert thread_shape(space) == shape
    assert Message.objects.filter(space=space).count() == 10


@pytest.mark.django_db
def test_a_message_over_its_parse_budget_is_kept_raw_and_marked(
    actors, settings, monkeypatch
):
    monkeypatch.setattr(index, "PARSE_TARGET", "tests.misbehaving_parser:parse")
    settings.MAILARCHIVE_PARSE_TIME_LIMIT = 2.0
    bad = raw(7, marker="loop")

    result = message_ingest(space_id=actors.space.pk, raw=bad, source="poll")

    message = Message.objects.get(pk=result.message_pk)
    assert result.created and not result.parseable
    assert TOO_COMPLEX in message.problems and message.too_complex
    assert blob_read(message.raw_name) == bad
    page = client_for(actors, "viewer").get(message.get_absolute_url())
    body = page.content.decode()
    assert "could not be parsed: it is too complex" in body
    assert "Body of message 7." in body
    # Still exactly once: the same bytes again are a duplicate.
    assert not message_ingest(space_id=actors.space.pk, raw=bad, source="poll").created


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_backlog_index_each_message_once_into_the_same_threads():
    """GIVEN 50 messages secured in one batch, replies before their parents
    WHEN two workers index the same backlog at the same time
    THEN each message is indexed once and the threads are those of indexing
    them one by one in another space."""
    raws = conversation()
    parallel, sequential = SpaceFactory(), SpaceFactory()
    with transaction.atomic():
        results = messages_secure(space_id=parallel.pk, raws=raws, source="import")
    pks = [r.message_pk for r in results]
    counts: list[int] = []
    errors: list[BaseException] = []

    def work(order: list[int]) -> None:
        try:
            counts.append(messages_index(message_pks=order, workers=2).indexed)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    workers = [
        threading.Thread(target=work, args=(pks,)),
        threading.Thread(target=work, args=(list(reversed(pks)),)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not errors, errors
    assert sum(counts) == 50
    for one in raws:
        message_ingest(space_id=sequential.pk, raw=one, source="import")
    assert thread_shape(parallel) == thread_shape(sequential)
    assert len(thread_shape(parallel)) == 10
    counted = Thread.objects.filter(space=parallel).values_list(
        "message_count", flat=True
    )
    assert sorted(counted) == [5] * 10
    assert not FetchedMessage.objects.exists()


def _fastest(work, repeat: int = 5) -> float:
    import time

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize(
    "shape",
    [
        lambda n: b"Subject: x\r\n" + b" folded\r\n" * n + b"\r\nbody\r\n",
        lambda n: b"Subject: x\r\n" + b"Received: by x\r\n" * n + b"\r\nbody\r\n",
        lambda n: b"Subject: x\r\n\r\n" + b">From here\r\n" * n,
    ],
    ids=["folded-header", "many-trace-headers", "from-quoted-body"],
)
def test_the_content_identity_of_the_secure_stage_is_linear(shape):
    """The secure stage computes only the content digest before committing:
    eight times the input costs well under eight squared times the work."""
    from mailarchive.parsing import content_digest

    # Inputs of megabytes, so that both sizes are past the caches.
    n = 100_000
    small = _fastest(lambda: content_digest(shape(n)))
    large = _fastest(lambda: content_digest(shape(8 * n)))
    assert large / max(small, 1e-6) < 24


def search_hits(space, words: list[str]) -> dict[str, list[int]]:
    from mailarchive.search import MailSearch, messages_search

    hits = {}
    for word in words:
        found, _terms = messages_search(
            Message.objects.filter(space=space), MailSearch(text=word)
        )
        hits[word] = sorted(found.values_list("pk", flat=True))
    return hits


@pytest.mark.django_db
def test_reindex_gives_the_same_messages_threads_and_search_results():
    from django.core.management import call_command

    space = SpaceFactory(key="REIDX")
    for one in conversation()[:20]:
        message_ingest(space_id=space.pk, raw=one, source="import")
    fields = ("pk", "subject", "from_address", "date", "thread_id", "text_body")
    before = list(Message.objects.filter(space=space).order_by("pk").values(*fields))
    threads = thread_shape(space)
    hits = search_hits(space, ["Topic", "message", "p3@example.com"])
    assert len(hits["Topic"]) == 20 and 0 < len(hits["p3@example.com"]) < 20
    # What an older parser might have left: a wrong subject, no text.
    Message.objects.filter(space=space).update(subject="stale", text_body="")

    out = io.StringIO()
    call_command("reindex", "--space", "REIDX", stdout=out)

    after = list(Message.objects.filter(space=space).order_by("pk").values(*fields))
    assert after == before
    assert thread_shape(space) == threads
    assert search_hits(space, ["Topic", "message", "p3@example.com"]) == hits
    assert not Message.objects.exclude(index_state="indexed").exists()
    assert "indexed 20 messages" in out.getvalue()


@pytest.mark.django_db
def test_a_huge_body_is_kept_whole_in_the_raw_source_and_cut_in_the_database():
    """A compressible mail of megabytes of text must not be stored again in
    full beside its raw object: the database keeps a bounded copy and says so."""
    from mailarchive.services.stored import BODY_STORED_LIMIT, BODY_TRUNCATED

    space = SpaceFactory()
    body = "All work and no play. " * 150_000  # 3.3 MB
    big = (
        "From: a@example.com\r\nSubject: big\r\nMessage-ID: <big@example.com>\r\n\r\n"
        + body.replace("\n", "\r\n")
    ).encode()
    result = message_ingest(space_id=space.pk, raw=big, source="import")
    message = Message.objects.get(pk=result.message_pk)
    assert len(message.text_body) <= BODY_STORED_LIMIT < len(body)
    assert BODY_TRUNCATED in message.problems
    assert len(message.search_text) <= 300_000
    assert blob_read(message.raw_name) == big


def test_beat_dispatches_the_due_poll_as_it_starts():
    """GIVEN beat starting WHEN its init signal fires THEN the due-accounts
    poll is sent at once, with the schedule entry's own options."""
    from types import SimpleNamespace

    from celery import signals

    from mailarchive.celery import app as celery_app

    sent = []

    class Beat:
        """Stands for beat's service: signal senders must be hashable."""

        app = SimpleNamespace(
            conf=celery_app.conf,
            send_task=lambda name, **options: sent.append((name, options)),
        )

    signals.beat_init.send(sender=Beat())
    entry = celery_app.conf.beat_schedule["poll-mail-accounts"]
    assert (entry["task"], entry["options"]) in sent


def _index_queries(raws: list[bytes]) -> tuple[int, list[list[str]]]:
    from django.test.utils import CaptureQueriesContext

    space = SpaceFactory()
    with transaction.atomic():
        secured = messages_secure(space_id=space.pk, raws=raws, source="import")
    with CaptureQueriesContext(connection) as queries:
        summary = messages_index(message_pks=[s.message_pk for s in secured])
    assert summary.indexed == len(raws)
    return len(queries), thread_shape(space)


@pytest.mark.django_db
def test_a_batch_is_indexed_with_as_many_queries_whatever_its_size():
    """GIVEN conversations whose replies come before their parents
    WHEN ten, then forty of their messages are indexed as one batch
    THEN both take the same number of queries (threading, rows, references and
    thread counts are written per batch, not per message), and every reply
    joins its conversation."""
    small, small_shape = _index_queries(conversation()[:10])
    large, large_shape = _index_queries(conversation()[:40])
    assert large == small
    assert len(small_shape) == 2 and len(large_shape) == 8
    assert all(len(ids) == 5 for ids in large_shape)


@pytest.mark.django_db
def test_a_message_linking_two_threads_merges_them_within_one_batch():
    """GIVEN two replies to a parent that is not there yet, in one batch with
    the parent's reply to an older thread
    THEN all of them end in one thread, the oldest, with its count right."""
    space = SpaceFactory()
    first = [raw(100), raw(101, parent=100)]
    with transaction.atomic():
        secured = messages_secure(space_id=space.pk, raws=first, source="import")
    messages_index(message_pks=[s.message_pk for s in secured])
    older = Thread.objects.get(space=space)
    # 201 and 202 both reply to 200 (not archived yet): they share a thread.
    # 200 then replies to 101, which links that thread to the older one.
    batch = [raw(201, parent=200), raw(202, parent=200), raw(200, parent=101)]
    with transaction.atomic():
        secured = messages_secure(space_id=space.pk, raws=batch, source="import")
    messages_index(message_pks=[s.message_pk for s in secured])
    assert list(Thread.objects.filter(space=space).values_list("pk", flat=True)) == [
        older.pk
    ]
    older.refresh_from_db()
    assert older.message_count == 5
    assert set(
        Message.objects.filter(space=space).values_list("thread_id", flat=True)
    ) == {older.pk}


def large_attachment_message(marker: str = "") -> tuple[bytes, bytes]:
    """A message with a 3 MB text attachment, and that attachment."""
    content = b"".join(
        b"line %d of the quarterly figures\r\n" % i for i in range(90_000)
    )
    encoded = base64.encodebytes(content).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@example.com\r\nSubject: figures\r\nMessage-ID: <big@example.com>\r\n"
        + (f"X-Parser-Test: {marker}\r\n".encode() if marker else b"")
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the figures.\r\n"
        b'--b\r\nContent-Type: text/plain; name="figures.txt"\r\n'
        b"Content-Disposition: attachment\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    return raw, content


def spool_left(settings) -> list[str]:
    return sorted(str(p) for p in Path(settings.FILE_UPLOAD_TEMP_DIR).glob("index-*"))


@pytest.mark.django_db
def test_a_large_attachment_goes_by_file_and_its_spool_is_removed(actors, settings):
    """GIVEN a message with a 3 MB attachment
    WHEN it is archived
    THEN the attachment is stored with its bytes and digest, its text is
    read and searchable, and no spool file is left behind."""
    raw, content = large_attachment_message()

    result = message_ingest(space_id=actors.space.pk, raw=raw, source="poll")

    message = Message.objects.get(pk=result.message_pk)
    assert result.parseable and message.text_body == "See the figures."
    [attachment] = Attachment.objects.filter(message=message)
    assert attachment.size == len(content)
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert blob_read(attachment.blob_name) == content
    assert attachment.text_read
    assert "line 2000 of the quarterly figures" in message.search_text
    assert blob_read(message.raw_name) == raw
    assert spool_left(settings) == []


@pytest.mark.django_db
def test_a_parse_killed_after_spooling_leaves_no_spool_files(
    actors, settings, monkeypatch
):
    """GIVEN a parse that spools a large attachment, then never ends
    WHEN it is killed over its budget
    THEN the message is kept raw and the files it spooled are gone."""
    monkeypatch.setattr(index, "PARSE_TARGET", "tests.misbehaving_parser:parse")
    settings.MAILARCHIVE_PARSE_TIME_LIMIT = 3.0
    raw, _content = large_attachment_message("spool-then-loop")

    result = message_ingest(space_id=actors.space.pk, raw=raw, source="poll")

    message = Message.objects.get(pk=result.message_pk)
    assert message.too_complex and not Attachment.objects.filter(message=message)
    assert blob_read(message.raw_name) == raw
    assert spool_left(settings) == []
