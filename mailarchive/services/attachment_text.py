"""Reading attachments' text in the index stage, once per identical content.

The index stage hands the attachments of the messages it has just parsed to
:func:`attachment_texts_read`, which reads those whose content has no text yet
in extraction processes (:mod:`mailarchive.extract`, through the parse pool)
under their own budget, and records one :class:`AttachmentText` per content:
its text, or that it had none, could not be read (and why) or is not a kind
of file that is read. Nothing here can fail a message: a file that makes its
reader loop, eat memory or crash costs one killed process and is recorded as
failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Left
from django.utils import timezone

from ..extract import (
    EXTRACT_TARGET,
    EXTRACTOR_VERSION,
    FAILED,
    UNSUPPORTED,
    ExtractRequest,
    ExtractResult,
    encode_request,
    kind_of,
)
from ..models import Attachment, AttachmentText, Message
from ..parsing import ParsedAttachment
from ..parsing.pool import OverBudget, ParseBudget, parse_many
from .stored import clean_text

logger = logging.getLogger(__name__)

# The extraction target; tests point it at one that misbehaves.
EXTRACT_TARGET_IN_USE = EXTRACT_TARGET
# Distinct contents read per message at most; the rest are recorded as not
# read, so that a message of thousands of attachments costs a bounded time.
MAX_READ_PER_MESSAGE = 100
TOO_MANY = "too-many"
# Characters of a text that go into its full-text vector (PostgreSQL limits a
# vector's size); all of it is matched by substring.
VECTOR_CHARS = 200_000
_OVER_BUDGET = {
    "time": "reading it took longer than the time allowed",
    "memory": "reading it needed more memory than allowed",
    "crash": "the reader stopped",
}


@dataclass(frozen=True)
class Readable:
    """One attachment to read: its content (or the file that holds it, which
    the extraction process reads itself) and what it says it is."""

    sha256: str
    filename: str
    content_type: str
    content: bytes
    charset: str | None = None
    path: str | None = None

    @classmethod
    def of(cls, attachment: ParsedAttachment) -> Readable:
        return cls(
            sha256=attachment.sha256,
            filename=attachment.filename,
            content_type=attachment.content_type,
            content=attachment.content,
            charset=attachment.charset,
            path=attachment.path,
        )

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes of the content."""
        if self.path is None:
            return self.content[:size]
        with Path(self.path).open("rb") as stored:
            return stored.read(size)


@dataclass
class TextsRead:
    """The outcome for a set of contents: which have a record, and the texts."""

    recorded: set[str] = field(default_factory=set)
    texts: dict[str, str] = field(default_factory=dict)
    read_now: int = 0
    failed_now: int = 0


def extract_budget() -> ParseBudget:
    """The budget of reading one attachment, from the settings."""
    return ParseBudget(
        seconds=settings.MAILARCHIVE_EXTRACT_TIME_LIMIT,
        memory_bytes=settings.MAILARCHIVE_EXTRACT_MEMORY_LIMIT,
    )


def readables_of(
    attachments: Sequence[ParsedAttachment],
) -> tuple[list[Readable], list[Readable]]:
    """The attachments of one message to read, and those left unread.

    Listed attachments are read (not the pictures of the HTML), each content
    once, at most MAX_READ_PER_MESSAGE of them. Pure.
    """
    seen: dict[str, Readable] = {}
    for attachment in attachments:
        if not attachment.inline and attachment.sha256 not in seen:
            seen[attachment.sha256] = Readable.of(attachment)
    readables = list(seen.values())
    return readables[:MAX_READ_PER_MESSAGE], readables[MAX_READ_PER_MESSAGE:]


def attachment_texts_read(
    *,
    readables: Sequence[Readable],
    retry_failed: set[str] | None = None,
    workers: int = 1,
    heartbeat: Callable[[], None] | None = None,
    skipped: Sequence[Readable] = (),
) -> TextsRead:
    """Make sure every content of ``readables`` has its AttachmentText.

    Contents read before by this version of the readers are not read again,
    except failed ones whose digest is in ``retry_failed`` (``reindex``). The
    others are read ``workers`` at a time under the extraction budget and
    recorded in one short transaction; ``skipped`` contents are recorded as
    not read (too many in one message) unless they have a record already.
    Returns which contents have a record and the texts found. Safe to re-run
    and to run on several workers at once: the last to write a content wins,
    and both wrote what its file holds.
    """
    outcome = TextsRead()
    # Several messages of a group may carry the same content: read it once.
    readables = list({r.sha256: r for r in readables}.values())
    wanted = {r.sha256: r for r in [*readables, *skipped]}
    if not wanted:
        return outcome
    known = {
        row["sha256"]: row
        for row in AttachmentText.objects.filter(sha256__in=list(wanted)).values(
            "sha256", "status", "reason", "extractor_version", "text"
        )
    }
    retry = retry_failed or set()
    results: dict[str, ExtractResult] = {}
    to_read: list[Readable] = []
    for readable in readables:
        row = known.get(readable.sha256)
        if row is not None and not _read_again(row, retry):
            continue
        if kind_of(readable.content_type, readable.filename, readable.head(1024)):
            to_read.append(readable)
        else:
            results[readable.sha256] = ExtractResult(UNSUPPORTED, reason="type")
    for readable in skipped:
        if readable.sha256 not in known and readable.sha256 not in results:
            results[readable.sha256] = ExtractResult(
                FAILED,
                reason=TOO_MANY,
                detail=f"a message may have {MAX_READ_PER_MESSAGE} files read",
            )
    if to_read:
        results.update(_read(to_read, workers=workers, heartbeat=heartbeat))
    if results:
        _record(results, {r.sha256: r for r in to_read})
    outcome.read_now = len(to_read)
    outcome.failed_now = sum(r.status == FAILED for r in results.values())
    for sha, row in known.items():
        outcome.recorded.add(sha)
        if row["status"] == AttachmentText.Status.OK and sha not in results:
            outcome.texts[sha] = row["text"]
    for sha, result in results.items():
        outcome.recorded.add(sha)
        if result.status == AttachmentText.Status.OK:
            outcome.texts[sha] = clean_text(result.text)
    return outcome


def _read_again(row: dict, retry: set[str]) -> bool:
    if row["extractor_version"] < EXTRACTOR_VERSION:
        return True
    if row["status"] != AttachmentText.Status.FAILED:
        return False
    return row["reason"] == TOO_MANY or row["sha256"] in retry


def _jobs(
    readables: Sequence[Readable],
) -> Iterator[tuple[str, Callable[[], bytes]]]:
    budget = extract_budget()
    # The reader stops on its own, keeping what it has, a little before the
    # process would be killed.
    soft = max(0.5, min(budget.seconds * 0.8, budget.seconds - 1.0))
    for readable in readables:
        request = ExtractRequest(
            content_type=readable.content_type,
            filename=readable.filename,
            data=readable.content,
            path=readable.path,
            charset=readable.charset,
            max_chars=settings.MAILARCHIVE_EXTRACT_MAX_CHARS,
            soft_seconds=soft,
        )
        yield readable.sha256, (lambda request=request: encode_request(request))


def _read(
    readables: Sequence[Readable],
    *,
    workers: int,
    heartbeat: Callable[[], None] | None,
) -> dict[str, ExtractResult]:
    results: dict[str, ExtractResult] = {}
    for sha, answer in parse_many(
        _jobs(readables),
        budget=extract_budget(),
        workers=workers,
        target=EXTRACT_TARGET_IN_USE,
        heartbeat=heartbeat,
    ):
        if isinstance(answer, OverBudget):
            result = ExtractResult(
                FAILED,
                reason=answer.reason,
                detail=_OVER_BUDGET.get(answer.reason, "the reader stopped"),
            )
        elif isinstance(answer, ExtractResult):
            result = answer
        else:
            result = ExtractResult(FAILED, reason="crash", detail="no answer")
        if result.status == FAILED:
            logger.warning(
                "the text of attachment %s could not be read (%s: %s)",
                sha,
                result.reason,
                result.detail,
            )
        results[sha] = result
    return results


def _record(results: dict[str, ExtractResult], read: dict[str, Readable]) -> None:
    now = timezone.now()
    limit = settings.MAILARCHIVE_EXTRACT_MAX_CHARS
    rows = []
    for sha, result in results.items():
        detail = result.detail
        if result.problems:
            detail = "\n".join(filter(None, [detail, *result.problems]))
        rows.append(
            AttachmentText(
                sha256=sha,
                status=result.status,
                reason=clean_text(result.reason, 100),
                detail=clean_text(detail, 5000),
                text=clean_text(result.text, limit) if result.status == "ok" else "",
                truncated=result.truncated or len(result.text) > limit,
                extractor_version=EXTRACTOR_VERSION,
                extracted_at=now,
            )
        )
    with transaction.atomic():
        AttachmentText.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["sha256"],
            update_fields=[
                "status",
                "reason",
                "detail",
                "text",
                "truncated",
                "extractor_version",
                "extracted_at",
            ],
        )
        if connection.vendor == "postgresql":
            AttachmentText.objects.filter(sha256__in=list(results)).update(
                search_vector=SearchVector(Left("text", VECTOR_CHARS), config="simple")
            )


def attachment_texts_forget(*, sha256s: set[str]) -> int:
    """Delete the texts of contents no attachment has any more (after a purge).

    Returns how many were deleted. Safe to re-run.
    """
    if not sha256s:
        return 0
    used = set(
        Attachment.objects.filter(sha256__in=sha256s).values_list("sha256", flat=True)
    )
    deleted, _ = AttachmentText.objects.filter(sha256__in=sha256s - used).delete()
    return deleted


def messages_reread_start(*, space_id: int | None = None) -> int:
    """Mark for indexing again the indexed messages with attachments not read.

    Those are messages archived before attachments were read (or while
    reading was turned off). Returns how many were marked; the index stage
    (``reindex``) then reads them. Safe to re-run.
    """
    waiting = Attachment.objects.filter(text_read=False, inline=False)
    marked = Message.objects.filter(
        Q(pk__in=waiting.values("message_id")),
        index_state=Message.IndexState.INDEXED,
    )
    if space_id is not None:
        marked = marked.filter(space_id=space_id)
    return marked.update(index_state=Message.IndexState.STALE)
