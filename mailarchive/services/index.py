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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import connection, transaction
from django.db.models import Value

from ..models import TOO_COMPLEX, Attachment, Message, MessageReference
from ..parsing import ParsedMessage
from ..parsing.pool import DEFAULT_TARGET, OverBudget, ParseBudget, describe, parse_many
from ..storage import blob_put, blob_read
from .attachment_text import TextsRead, attachment_texts_read, readables_of
from .stored import (
    BODY_STORED_LIMIT,
    addresses_stored,
    clean_text,
    problems_stored,
    search_text_of,
)
from .threads import thread_choose, thread_record, thread_refresh

logger = logging.getLogger(__name__)

INDEX_BATCH = 200
# Parsed messages whose attachments are read together: at most this many, or
# this many bytes of attachments held in memory.
GROUP_MESSAGES = 50
GROUP_BYTES = 64 * 1024 * 1024
# The parser the children run; tests point it at a parser that misbehaves.
PARSE_TARGET = DEFAULT_TARGET


@dataclass
class IndexSummary:
    """What one run of the index stage did."""

    indexed: int = 0
    unparseable: int = 0
    too_complex: int = 0
    indexed_pks: list[int] = field(default_factory=list)
    # Attachment contents read in this run, and how many of them failed.
    attachments_read: int = 0
    attachments_failed: int = 0

    def add(self, other: IndexSummary) -> None:
        self.indexed += other.indexed
        self.unparseable += other.unparseable
        self.too_complex += other.too_complex
        self.indexed_pks.extend(other.indexed_pks)
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
    return ParsedMessage(
        message_id=None,
        in_reply_to=None,
        references=[],
        subject="",
        from_=None,
        sender=None,
        to=[],
        cc=[],
        reply_to=[],
        date=None,
        date_offset_minutes=None,
        text_body="",
        html_body="",
        attachments=[],
        headers=[],
        problems=[TOO_COMPLEX, describe(result)],
        parseable=False,
    )


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


def _apply(pk: int, space_id: int, parsed: ParsedMessage, read: TextsRead) -> bool:
    """Write one parse to its waiting message; False if it was indexed already.

    A pending message joins a thread; a stale one (indexed before, being
    indexed again) keeps its thread, so thread addresses stay valid, and gets
    its attachments and references anew. ``read`` holds the texts of its
    attachments.
    """
    stored = [
        (position, att, blob_put("att", att.content, att.sha256)[0])
        for position, att in enumerate(parsed.attachments)
    ]
    message_id = clean_text(parsed.message_id or "", 500)
    in_reply_to = clean_text(parsed.in_reply_to or "", 500)
    references = [clean_text(r, 500) for r in parsed.references]
    refs = [
        r for r in dict.fromkeys([*references, in_reply_to]) if r and r != message_id
    ]
    subject = clean_text(parsed.subject, 10_000)
    search_text = search_text_of(parsed, read.texts)
    with transaction.atomic():
        _space_lock(space_id)
        row = (
            Message.objects.select_for_update()
            .filter(pk=pk, index_state__in=WAITING)
            .values_list("received_at", "index_state", "thread_id", "date")
            .first()
        )
        if row is None:
            return False
        received_at, state, old_thread, old_date = row
        current = received_at if state == Message.IndexState.PENDING else old_date
        fields = {
            "message_id": message_id,
            "in_reply_to": in_reply_to,
            "references": references,
            "subject": subject,
            "from_name": clean_text(parsed.from_.name, 300) if parsed.from_ else "",
            "from_address": clean_text(parsed.from_.address, 320)
            if parsed.from_
            else "",
            "to": addresses_stored(parsed.to),
            "cc": addresses_stored(parsed.cc),
            "date": parsed.date or current,
            "date_offset_minutes": parsed.date_offset_minutes,
            "text_body": clean_text(parsed.text_body, BODY_STORED_LIMIT),
            "html_body": clean_text(parsed.html_body, BODY_STORED_LIMIT),
            "has_attachments": any(not a.inline for a in parsed.attachments),
            "problems": problems_stored(parsed),
            "parseable": parsed.parseable,
            "search_text": search_text,
            "index_state": Message.IndexState.INDEXED,
        }
        message = Message(pk=pk, space_id=space_id, **fields)
        if state == Message.IndexState.STALE and old_thread is not None:
            Attachment.objects.filter(message_id=pk).delete()
            MessageReference.objects.filter(message_id=pk).delete()
            thread_pk, merge, conflict = old_thread, [], None
        else:
            thread_pk, merge, conflict = thread_choose(message, refs)
            fields["thread_id"] = thread_pk
            fields["message_id_conflict"] = conflict
        if connection.vendor == "postgresql":
            fields["search_vector"] = SearchVector(
                Value(subject), config="simple", weight="A"
            ) + SearchVector(Value(search_text), config="simple")
        Message.objects.filter(pk=pk).update(**fields)
        if stored:
            Attachment.objects.bulk_create(
                [
                    Attachment(
                        message_id=pk,
                        position=position,
                        filename=clean_text(att.filename, 255),
                        content_type=clean_text(att.content_type, 255),
                        size=len(att.content),
                        sha256=att.sha256,
                        blob_name=name,
                        content_id=clean_text(att.content_id or "", 500),
                        content_location=clean_text(att.content_location or "", 500),
                        content_base=clean_text(att.content_base or "", 500),
                        inline=att.inline,
                        text_read=not att.inline and att.sha256 in read.recorded,
                    )
                    for position, att, name in stored
                ],
                ignore_conflicts=True,
            )
        if refs:
            MessageReference.objects.bulk_create(
                [
                    MessageReference(space_id=space_id, message_id=pk, ref_id=ref)
                    for ref in refs
                ],
                ignore_conflicts=True,
            )
        if conflict:
            Message.objects.filter(space_id=space_id, message_id=message_id).exclude(
                pk=pk
            ).update(message_id_conflict=True)
        if conflict is None:
            thread_refresh(thread_pk)
        else:
            thread_record(message, thread_pk, merge)
    return True


Row = tuple[int, int, str, str]  # pk, space, raw object, index state


def _jobs(
    rows: Sequence[Row],
) -> Iterator[tuple[Row, Callable[[], bytes]]]:
    for row in rows:
        yield row, (lambda name=row[2]: blob_read(name))


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
    summary = IndexSummary()
    workers = workers or index_workers()
    results = parse_many(
        _jobs(rows),
        budget=parse_budget(),
        workers=workers,
        target=PARSE_TARGET,
        heartbeat=heartbeat,
    )
    group: list[tuple[Row, ParsedMessage, bool]] = []
    held = 0
    for row, result in results:
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
        held += sum(len(a.content) for a in parsed.attachments if not a.inline)
        if len(group) >= GROUP_MESSAGES or held >= GROUP_BYTES:
            summary.add(_write_group(group, workers, heartbeat))
            group, held = [], 0
    if group:
        summary.add(_write_group(group, workers, heartbeat))
    return summary


def _write_group(
    group: Sequence[tuple[Row, ParsedMessage, bool]],
    workers: int,
    heartbeat: Callable[[], None] | None,
) -> IndexSummary:
    """Read the attachments of a group of parsed messages, then write each."""
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
    for (pk, space_id, _raw, _state), parsed, over in group:
        if _apply(pk, space_id, parsed, read):
            summary.indexed += 1
            summary.indexed_pks.append(pk)
            summary.unparseable += not parsed.parseable
            summary.too_complex += over
    return summary


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
