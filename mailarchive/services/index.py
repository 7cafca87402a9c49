"""The index stage: parse secured messages, store attachments, thread, index.

Runs over messages in the ``pending`` state, on any number of workers at once:
parsing happens in child processes under a budget per message (see
:mod:`mailarchive.parsing.pool`), several at a time, and each parsed message is
written in its own short transaction that first checks the message is still
pending, so two workers on one backlog index every message once. A message
over its budget is marked "too complex" and shown raw; nothing here can lose
a message, since the secure stage already committed it.

Parsed messages are taken a group at a time: the text of the group's
attachments is read (:mod:`.attachment_text`, in extraction processes under a
budget of their own) before the messages are written, so that it goes into
their search text.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction

from ..models import TOO_COMPLEX, Attachment, Message, MessageReference
from ..parsing import ParsedMessage
from ..parsing.message import unparseable_message
from ..parsing.pool import (
    DEFAULT_TARGET,
    HEARTBEAT_SECONDS,
    OverBudget,
    ParseBudget,
    describe,
    parse_many,
)
from ..parsing.spool import SPOOL_BYTES
from ..parsing.worker import Request
from ..storage import blob_local, blob_put, blob_put_file
from .attachment_text import TextsRead, attachment_texts_read, readables_of
from .stored import (
    BODY_STORED_LIMIT,
    addresses_stored,
    clean_text,
    problems_stored,
    search_text_of,
)
from .threads import ThreadJoin, thread_refresh, threads_plan, threads_record

logger = logging.getLogger(__name__)

INDEX_BATCH = 200
# Parsed messages written per transaction (one commit and one lock for many),
# and whose attachments are read together: at most this many, or this many
# bytes of attachments held in memory or in spool files.
APPLY_BATCH = 50
GROUP_BYTES = 64 * 1024 * 1024
# The parser the children run; tests point it at a parser that misbehaves.
PARSE_TARGET = DEFAULT_TARGET


@dataclass
class IndexSummary:
    """What one run of the index stage did."""

    indexed: int = 0
    unparseable: int = 0
    too_complex: int = 0
    # Attachment contents read in this run, and how many of them failed.
    attachments_read: int = 0
    attachments_failed: int = 0

    def add(self, other: IndexSummary) -> None:
        self.indexed += other.indexed
        self.unparseable += other.unparseable
        self.too_complex += other.too_complex
        self.attachments_read += other.attachments_read
        self.attachments_failed += other.attachments_failed


def parse_budget() -> ParseBudget:
    """The budget of one message's parse, from the settings."""
    return ParseBudget(
        seconds=settings.MAILARCHIVE_PARSE_TIME_LIMIT,
        memory_bytes=settings.MAILARCHIVE_PARSE_MEMORY_LIMIT,
    )


def index_workers() -> int:
    return settings.MAILARCHIVE_INDEX_PROCESSES or os.cpu_count() or 1


def too_complex_parse(result: OverBudget) -> ParsedMessage:
    """What is stored for a message whose parse went over its budget: nothing
    but the mark; the raw bytes are the message."""
    return unparseable_message([TOO_COMPLEX, describe(result)])


def _space_lock(space_id: int) -> None:
    """Serialize the threading of one space's messages (PostgreSQL).

    Two workers indexing a message and its reply at the same moment would
    otherwise each start a thread of their own. Held to the end of the short
    per-message transaction; parsing runs outside it.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7411, space_id])


WAITING = (Message.IndexState.PENDING, Message.IndexState.STALE)


@dataclass
class _Prepared:
    """One parse made ready to write: cleaned values, attachments stored."""

    pk: int
    space_id: int
    parsed: ParsedMessage
    message_id: str
    in_reply_to: str
    references: list[str]
    refs: list[str]
    subject: str
    search_text: str
    attachments: list[Attachment]


def _prepare(
    pk: int, space_id: int, parsed: ParsedMessage, read: TextsRead
) -> _Prepared:
    """Clean what will be written and store the attachments (before any row).

    ``read`` holds what was read of the attachments' text."""
    attachments = [
        Attachment(
            message_id=pk,
            position=position,
            filename=clean_text(att.filename, 255),
            content_type=clean_text(att.content_type, 255),
            size=att.size,
            sha256=att.sha256,
            blob_name=(
                blob_put_file("att", att.path, att.sha256)[0]
                if att.path is not None
                else blob_put("att", att.content, att.sha256)[0]
            ),
            content_id=clean_text(att.content_id or "", 500),
            content_location=clean_text(att.content_location or "", 500),
            content_base=clean_text(att.content_base or "", 500),
            inline=att.inline,
            text_read=not att.inline and att.sha256 in read.recorded,
        )
        for position, att in enumerate(parsed.attachments)
    ]
    message_id = clean_text(parsed.message_id or "", 500)
    in_reply_to = clean_text(parsed.in_reply_to or "", 500)
    references = [clean_text(r, 500) for r in parsed.references]
    refs = [
        r for r in dict.fromkeys([*references, in_reply_to]) if r and r != message_id
    ]
    return _Prepared(
        pk=pk,
        space_id=space_id,
        parsed=parsed,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        refs=refs,
        subject=clean_text(parsed.subject, 10_000),
        search_text=search_text_of(parsed, read.texts),
        attachments=attachments,
    )


def _apply(items: Sequence[_Prepared]) -> list[bool]:
    """Write parses to their waiting messages in one transaction.

    Returns, per item, False if that message was indexed already (by another
    worker). Set-based: one lock per space, one row lock query, one threading
    plan per space (:func:`.threads.threads_plan`, a few queries for the whole
    batch), then the rows of every message, attachment and reference in a
    statement each.
    """
    with transaction.atomic():
        for space_id in sorted({item.space_id for item in items}):
            _space_lock(space_id)
        rows = {
            pk: rest
            for pk, *rest in Message.objects.select_for_update()
            .filter(pk__in=[item.pk for item in items], index_state__in=WAITING)
            .order_by("pk")
            .values_list("pk", "received_at", "index_state", "thread_id", "date")
        }
        todo = [(item, rows[item.pk]) for item in items if item.pk in rows]
        if todo:
            _write_all(todo)
        return [item.pk in rows for item in items]


# The columns an indexed message gets, written for a batch in one statement.
_WRITTEN = (
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "from_name",
    "from_address",
    "to",
    "cc",
    "date",
    "date_offset_minutes",
    "text_body",
    "html_body",
    "has_attachments",
    "problems",
    "parseable",
    "search_text",
    "index_state",
    "thread",
    "message_id_conflict",
)
_SEARCH_VECTOR = (
    "setweight(to_tsvector('simple'::regconfig, COALESCE(%s::text, '')), 'A')"
    " || to_tsvector('simple'::regconfig, COALESCE(%s::text, ''))"
)


def _fields_of(item: _Prepared, date: Any) -> dict[str, Any]:
    parsed = item.parsed
    return {
        "message_id": item.message_id,
        "in_reply_to": item.in_reply_to,
        "references": item.references,
        "subject": item.subject,
        "from_name": clean_text(parsed.from_.name, 300) if parsed.from_ else "",
        "from_address": clean_text(parsed.from_.address, 320) if parsed.from_ else "",
        "to": addresses_stored(parsed.to),
        "cc": addresses_stored(parsed.cc),
        "date": parsed.date or date,
        "date_offset_minutes": parsed.date_offset_minutes,
        "text_body": clean_text(parsed.text_body, BODY_STORED_LIMIT),
        "html_body": clean_text(parsed.html_body, BODY_STORED_LIMIT),
        "has_attachments": any(not a.inline for a in parsed.attachments),
        "problems": problems_stored(parsed),
        "parseable": parsed.parseable,
        "search_text": item.search_text,
        "index_state": Message.IndexState.INDEXED,
    }


def _write_all(todo: Sequence[tuple[_Prepared, Sequence[Any]]]) -> None:
    """The rows of a batch of messages. A pending message joins a thread; a
    stale one (indexed before, being indexed again) keeps its thread, so
    thread addresses stay valid, and gets its attachments and references
    anew."""
    written: list[dict[str, Any]] = []
    joins: dict[int, list[ThreadJoin]] = {}
    kept: dict[int, int] = {}
    for item, (received_at, state, old_thread, old_date) in todo:
        current = received_at if state == Message.IndexState.PENDING else old_date
        fields = _fields_of(item, current)
        written.append(fields)
        if state == Message.IndexState.STALE and old_thread is not None:
            kept[item.pk] = old_thread
        else:
            joins.setdefault(item.space_id, []).append(
                ThreadJoin(
                    pk=item.pk,
                    message_id=item.message_id,
                    refs=item.refs,
                    subject=item.subject,
                    date=fields["date"],
                )
            )
    if kept:
        Attachment.objects.filter(message_id__in=list(kept)).delete()
        MessageReference.objects.filter(message_id__in=list(kept)).delete()
    plans = [
        threads_plan(space_id=space_id, joins=space_joins)
        for space_id, space_joins in sorted(joins.items())
    ]
    joined: dict[int, tuple[int, bool]] = {}
    for plan in plans:
        plan.create()
        joined.update(
            (pk, (plan.thread_of(pk), plan.conflicts[pk])) for pk in plan.joined
        )
    for (item, (_r, _s, old_thread, _d)), fields in zip(todo, written, strict=True):
        thread, conflict = joined.get(item.pk, (old_thread, None))
        fields["thread"] = thread
        fields["message_id_conflict"] = conflict
    _rows_update([item for item, _row in todo], written)
    Attachment.objects.bulk_create(
        [att for item, _row in todo for att in item.attachments],
        ignore_conflicts=True,
    )
    MessageReference.objects.bulk_create(
        [
            MessageReference(space_id=item.space_id, message_id=item.pk, ref_id=ref)
            for item, _row in todo
            for ref in item.refs
        ],
        ignore_conflicts=True,
    )
    conflicting: dict[int, set[str]] = {}
    for item, _row in todo:
        if joined.get(item.pk, (0, False))[1]:
            conflicting.setdefault(item.space_id, set()).add(item.message_id)
    for space_id, message_ids in sorted(conflicting.items()):
        Message.objects.filter(
            space_id=space_id, message_id__in=sorted(message_ids)
        ).update(message_id_conflict=True)
    for plan in plans:
        threads_record(plan)
    for thread in sorted(set(kept.values())):
        thread_refresh(thread)


def _rows_update(items: Sequence[_Prepared], written: Sequence[dict[str, Any]]) -> None:
    """One UPDATE per message, sent as one batch (psycopg pipelines them).

    A message whose thread is left as it is (``message_id_conflict`` None: a
    stale message) keeps its conflict flag too.
    """
    fields = [Message._meta.get_field(name) for name in _WRITTEN]
    postgres = connection.vendor == "postgresql"
    for keep_flag in (False, True):
        names = [
            f for f in fields if not (keep_flag and f.name == "message_id_conflict")
        ]
        assignments = [f"{connection.ops.quote_name(f.column)} = %s" for f in names]
        if postgres:
            assignments.append(f"search_vector = {_SEARCH_VECTOR}")
        sql = (
            f"UPDATE {Message._meta.db_table} SET {', '.join(assignments)} "
            "WHERE id = %s"
        )
        params = []
        for item, values in zip(items, written, strict=True):
            if (values["message_id_conflict"] is None) != keep_flag:
                continue
            row = [f.get_db_prep_save(values[f.name], connection) for f in names]
            if postgres:
                row += [item.subject, item.search_text]
            params.append([*row, item.pk])
        if params:
            with connection.cursor() as cursor:
                cursor.executemany(sql, params)


Row = tuple[int, int, str, str]  # pk, space, raw object, index state


class _Spool:
    """A private directory for one run over rows: copies of raw messages
    fetched from an object store, and the large attachments the parse
    processes decode into files (see :mod:`mailarchive.parsing.spool`).
    Everything in it is removed as soon as it has been used, and the
    directory with whatever a killed process left when the run ends."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(
            dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="index-"
        )
        self._copies: dict[int, str] = {}
        self._lock = threading.Lock()

    def request(self, row: Row) -> Request:
        """What the parse process of ``row`` is handed: small messages as
        bytes, larger ones by the name of a local file it reads itself."""
        found = blob_local(row[2], directory=self.directory, inline_limit=SPOOL_BYTES)
        if isinstance(found, bytes):
            return Request(data=found, spool=self.directory)
        if Path(found).parent == Path(self.directory):
            with self._lock:
                self._copies[row[0]] = found
        return Request(path=found, spool=self.directory)

    def parsed(self, row: Row) -> None:
        """The parse of ``row`` is back: its copy of the raw message goes."""
        with self._lock:
            copy = self._copies.pop(row[0], None)
        if copy is not None:
            Path(copy).unlink(missing_ok=True)

    @staticmethod
    def written(parsed: ParsedMessage) -> None:
        """The attachments of ``parsed`` are stored: their files go."""
        for attachment in parsed.attachments:
            if attachment.path is not None:
                Path(attachment.path).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _jobs(
    rows: Sequence[Row], spool: _Spool
) -> Iterator[tuple[Row, Callable[[], Request]]]:
    for row in rows:
        yield row, (lambda row=row: spool.request(row))


def messages_index(
    *,
    message_pks: Sequence[int],
    workers: int | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> IndexSummary:
    """Index those of ``message_pks`` that are still pending.

    Parses them ``workers`` at a time (default: one per core) under the parse
    budget and writes each in its own transaction; a message over budget is
    stored as "too complex". ``heartbeat`` is called while parses are running,
    for callers that hold a lease. Safe to re-run and to run on several
    workers at once: a message already indexed is left alone.
    """
    summary = IndexSummary()
    pks = list(message_pks)
    for start in range(0, len(pks), INDEX_BATCH):
        rows = list(
            Message.objects.filter(
                pk__in=pks[start : start + INDEX_BATCH],
                index_state__in=WAITING,
            )
            .order_by("pk")
            .values_list("pk", "space_id", "raw_name", "index_state")
        )
        if rows:
            summary.add(_index_rows(rows, workers, heartbeat))
    return summary


def _index_rows(
    rows: Sequence[Row],
    workers: int | None,
    heartbeat: Callable[[], None] | None,
) -> IndexSummary:
    spool = _Spool()
    try:
        return _index_spooled(rows, workers or index_workers(), heartbeat, spool)
    finally:
        spool.close()


def _index_spooled(
    rows: Sequence[Row],
    workers: int,
    heartbeat: Callable[[], None] | None,
    spool: _Spool,
) -> IndexSummary:
    summary = IndexSummary()
    group: list[tuple[Row, ParsedMessage, bool]] = []
    held = 0
    for row, result in _parsed_ahead(rows, workers, heartbeat, spool):
        spool.parsed(row)
        if isinstance(result, OverBudget):
            logger.warning(
                "message %s is too complex to parse (%s); it is kept raw",
                row[0],
                result.reason,
            )
            parsed = too_complex_parse(result)
        else:
            parsed = result
        group.append((row, parsed, isinstance(result, OverBudget)))
        held += sum(a.size for a in parsed.attachments if not a.inline)
        if len(group) >= APPLY_BATCH or held >= GROUP_BYTES:
            summary.add(_write_group(group, workers, heartbeat))
            for _row, written, _over in group:
                spool.written(written)
            group, held = [], 0
    if group:
        summary.add(_write_group(group, workers, heartbeat))
    return summary


def _write_group(
    group: Sequence[tuple[Row, ParsedMessage, bool]],
    workers: int,
    heartbeat: Callable[[], None] | None,
) -> IndexSummary:
    """Read the attachments of a group of parsed messages, then write them all
    in one transaction."""
    summary = IndexSummary()
    read = TextsRead()
    if settings.MAILARCHIVE_ATTACHMENT_TEXT:
        readables, skipped, retry = [], [], set()
        for (_pk, _space, _raw, state), parsed, _over in group:
            mine, extra = readables_of(parsed.attachments)
            readables += mine
            skipped += extra
            if state == Message.IndexState.STALE:
                # reindex: what could not be read before is tried again.
                retry |= {r.sha256 for r in mine}
        read = attachment_texts_read(
            readables=readables,
            skipped=skipped,
            retry_failed=retry,
            workers=workers,
            heartbeat=heartbeat,
        )
        summary.attachments_read += read.read_now
        summary.attachments_failed += read.failed_now
    # In the order they were secured, not the order their parses finished:
    # which thread a message joins does not depend on the parse processes.
    ready = [
        (_prepare(pk, space_id, parsed, read), over)
        for (pk, space_id, _raw, _state), parsed, over in sorted(
            group, key=lambda done: done[0][0]
        )
    ]
    _apply_counted(ready, summary)
    return summary


_DONE = object()


def _parsed_ahead(
    rows: Sequence[Row],
    workers: int | None,
    heartbeat: Callable[[], None] | None,
    spool: _Spool,
) -> Iterator[tuple[Row, ParsedMessage | OverBudget]]:
    """Parse results of ``rows``, parsed in a thread of their own.

    The children keep parsing while this thread writes to the database (the
    thread only reads stored objects and talks to the children; the database
    stays with the caller, whose transaction it may be). ``heartbeat`` is
    called from the caller's thread while it waits.
    """
    results: queue.Queue[Any] = queue.Queue(maxsize=2 * APPLY_BATCH)

    def parse() -> None:
        try:
            for result in parse_many(
                _jobs(rows, spool),
                budget=parse_budget(),
                workers=workers or index_workers(),
                target=PARSE_TARGET,
            ):
                results.put(result)
        except BaseException as error:  # handed to the caller, who raises it
            results.put(error)
        finally:
            results.put(_DONE)

    thread = threading.Thread(target=parse, name="parse-ahead", daemon=True)
    thread.start()
    while True:
        try:
            item = results.get(timeout=HEARTBEAT_SECONDS)
        except queue.Empty:
            if heartbeat is not None:
                heartbeat()
            continue
        if item is _DONE:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def _apply_counted(ready: list[tuple[_Prepared, bool]], summary: IndexSummary) -> None:
    written = _apply([item for item, _over in ready])
    for (item, over), done in zip(ready, written, strict=True):
        if done:
            summary.indexed += 1
            summary.unparseable += not item.parsed.parseable
            summary.too_complex += over


def messages_index_pending(
    *,
    space_id: int | None = None,
    workers: int | None = None,
    heartbeat: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    secured_before: datetime | None = None,
) -> IndexSummary:
    """Index every waiting message (of ``space_id``, or of all spaces).

    Finishes what a crash between the two stages left behind; with
    ``secured_before``, only messages secured before then. ``progress`` is
    called with the number indexed so far after each batch. Safe to re-run.
    """
    summary = IndexSummary()
    after = 0
    while True:
        pending = Message.objects.filter(index_state__in=WAITING, pk__gt=after)
        if space_id is not None:
            pending = pending.filter(space_id=space_id)
        if secured_before is not None:
            pending = pending.filter(received_at__lt=secured_before)
        pks = list(pending.order_by("pk").values_list("pk", flat=True)[:INDEX_BATCH])
        if not pks:
            return summary
        after = pks[-1]
        summary.add(
            messages_index(message_pks=pks, workers=workers, heartbeat=heartbeat)
        )
        if progress is not None:
            progress(summary.indexed)


def messages_reindex_start(*, space_id: int | None = None) -> int:
    """Mark the indexed messages (of ``space_id``, or all) to be indexed again.

    They stay readable as they are until :func:`messages_index_pending` gets
    to them. Returns how many were marked; messages already waiting are left
    as they are, so a reindex that was cut short is continued, not restarted.
    """
    marked = Message.objects.filter(index_state=Message.IndexState.INDEXED)
    if space_id is not None:
        marked = marked.filter(space_id=space_id)
    return marked.update(index_state=Message.IndexState.STALE)


def messages_waiting_count(*, space_id: int | None = None) -> int:
    waiting = Message.objects.filter(index_state__in=WAITING)
    if space_id is not None:
        waiting = waiting.filter(space_id=space_id)
    return waiting.count()


class Indexer:
    """Indexes what a poll or an import secures, while it goes on securing.

    Outside a transaction, batches are indexed by a thread with a database
    connection of its own, so that the mail server is emptied at the speed
    of the secure stage while the parse children use the other cores. Inside
    a transaction (whose rows another connection cannot see yet) each batch is
    indexed at once instead. :meth:`finish` waits for everything submitted.
    A failure leaves messages pending, never lost; it is logged and kept in
    :attr:`failure` (the last one), for the caller to report.
    With ``dispatch``, each batch becomes a task for the Celery workers
    instead, and :meth:`finish` does not wait for them.
    """

    def __init__(
        self, *, heartbeat: Callable[[], None] | None = None, dispatch: bool = False
    ) -> None:
        self.summary = IndexSummary()
        self.failure: Exception | None = None
        self._heartbeat = heartbeat
        self._dispatch = dispatch
        self._background = not connection.in_atomic_block
        self._queue: queue.Queue[list[int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, message_pks: Sequence[int]) -> None:
        if not message_pks:
            return
        if self._dispatch:
            pks = list(message_pks)
            transaction.on_commit(
                lambda: current_app.signature(
                    "mailarchive.tasks.messages_index_task", args=(pks,)
                ).delay()
            )
            return
        if not self._background:
            self._index(list(message_pks), self._heartbeat)
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="indexer", daemon=True
            )
            self._thread.start()
        self._queue.put(list(message_pks))

    def finish(self) -> IndexSummary:
        """Wait until everything submitted is indexed; returns what was done."""
        if self._thread is not None:
            self._queue.put(None)
            while self._thread.is_alive():
                self._thread.join(timeout=HEARTBEAT_SECONDS)
                if self._heartbeat is not None and self._thread.is_alive():
                    self._heartbeat()
            self._thread = None
        return self.summary

    def _run(self) -> None:
        try:
            while (pks := self._queue.get()) is not None:
                self._index(pks, None)
        finally:
            connection.close()

    def _index(self, pks: list[int], heartbeat: Callable[[], None] | None) -> None:
        try:
            self.summary.add(messages_index(message_pks=pks, heartbeat=heartbeat))
        except Exception as error:
            logger.exception(
                "indexing %s messages stopped; they wait to be indexed", len(pks)
            )
            self.failure = error
