"""Running an import: scan, then ingest in batches committed with the counts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from ..mbox import (
    MboxEntry,
    MboxFormatError,
    count_messages,
    iter_eml,
    iter_mbox,
    open_mbox_source,
    sniff_source,
)
from ..models import ImportJob, Message
from ..services import (
    Indexer,
    IndexSummary,
    messages_index_pending,
    messages_secure,
)
from ..storage import StorageError, upload_delete, upload_local_file
from .jobs import LEASE, require_global
from .sources import ImportPathError, import_dir_root

logger = logging.getLogger(__name__)

# A batch is committed after this many messages or bytes, whichever comes first:
# small enough that the page's progress moves, large enough to keep commits cheap.
BATCH_MESSAGES = 100
BATCH_BYTES = 32 * 1024 * 1024
SCAN_RENEW_BYTES = 256 * 1024 * 1024
ERRORS_KEPT = 1000

Progress = Callable[[ImportJob], None]


@dataclass
class _Batch:
    messages: int = 0
    size: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


class _LeaseKeeper:
    """Passes reads through and renews the job's lease as the bytes go by."""

    def __init__(self, fp: BinaryIO, renew: Callable[[], None]) -> None:
        self._fp = fp
        self._renew = renew
        self._since = 0

    def read(self, size: int = -1) -> bytes:
        data = self._fp.read(size)
        self._since += len(data)
        if self._since >= SCAN_RENEW_BYTES:
            self._since = 0
            self._renew()
        return data


def _claim(job_id: int) -> bool:
    now = timezone.now()
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .exclude(status=ImportJob.Status.DONE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE, finished_at=None, error="")
    )
    return claimed == 1


def _renew(job_id: int) -> None:
    ImportJob.objects.filter(pk=job_id).update(lease_until=timezone.now() + LEASE)


def _entries(fp: BinaryIO, kind: str, limit: int) -> Iterator[MboxEntry]:
    if kind == "eml":
        return iter_eml(fp, max_message_bytes=limit)
    return iter_mbox(fp, max_message_bytes=limit)


def _error_entry(entry: MboxEntry, reason: str) -> dict[str, Any]:
    return {
        "number": entry.index + 1,
        "offset": entry.offset,
        "size": entry.size,
        "reason": reason,
    }


def _count(job: ImportJob, entry: MboxEntry, batch: _Batch, limit: int) -> bool:
    """Count ``entry`` in the batch; False if it is too large to store."""
    batch.messages += 1
    batch.size += entry.size
    job.processed += 1
    if entry.oversized:
        batch.errors.append(
            _error_entry(
                entry,
                f"message of {entry.size} bytes is larger than the limit of "
                f"{limit} bytes (MAILARCHIVE_MAX_MESSAGE_BYTES)",
            )
        )
        return False
    return True


def _secure(job: ImportJob, entries: list[MboxEntry], batch: _Batch) -> list[int]:
    """Secure the batch's messages in the open transaction; returns new ids.

    Stored together in one step; if that fails for another reason than an
    outage, one at a time, so that one message that cannot be stored is listed
    and the others are kept.
    """
    if not entries:
        return []
    try:
        with transaction.atomic():
            results = messages_secure(
                space_id=job.space_id,
                raws=[entry.raw for entry in entries],
                source=Message.Source.IMPORT,
            )
    except (OperationalError, InterfaceError, OSError):
        # The database or the storage is down: every further message would
        # fail the same way, so the job stops here and can be run again.
        raise
    except Exception:
        results = []
        for entry in entries:
            try:
                with transaction.atomic():
                    results.extend(
                        messages_secure(
                            space_id=job.space_id,
                            raws=[entry.raw],
                            source=Message.Source.IMPORT,
                        )
                    )
            except (OperationalError, InterfaceError, OSError):
                raise
            except Exception as e:
                logger.exception(
                    "import %s: message %s at offset %s not stored",
                    job.pk,
                    entry.index + 1,
                    entry.offset,
                )
                batch.errors.append(
                    _error_entry(entry, f"could not be stored: {type(e).__name__}: {e}")
                )
    created = [result.message_pk for result in results if result.created]
    job.imported += len(created)
    job.duplicates += len(results) - len(created)
    return created


def _commit_batch(job: ImportJob, batch: _Batch, checkpoint: int) -> None:
    job.checkpoint = checkpoint
    job.failed += len(batch.errors)
    room = ERRORS_KEPT - len(job.errors)
    if room > 0 and batch.errors:
        job.errors = [*job.errors, *batch.errors[:room]]
    job.lease_until = timezone.now() + LEASE
    job.save(
        update_fields=[
            "checkpoint",
            "processed",
            "imported",
            "duplicates",
            "failed_to_parse",
            "failed",
            "errors",
            "lease_until",
            "updated_at",
        ]
    )


def _set_status(job: ImportJob, status: str, **fields: Any) -> None:
    job.status = status
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=["status", *fields, "updated_at"])


def _scan(job: ImportJob, path: Path, limit: int) -> None:
    _set_status(job, ImportJob.Status.SCANNING)
    with open_mbox_source(path) as fp:
        kind = sniff_source(fp)
        if kind == "eml":
            total = 1
        else:
            keeper = _LeaseKeeper(fp, lambda: _renew(job.pk))
            total = count_messages(cast(BinaryIO, keeper), max_message_bytes=limit)
    job.total = total
    job.save(update_fields=["total", "updated_at"])


def _import(job: ImportJob, path: Path, limit: int, progress: Progress | None) -> None:
    _set_status(job, ImportJob.Status.IMPORTING)
    # Batches are indexed while the next ones are read and secured.
    indexer = Indexer(heartbeat=functools.partial(_renew, job.pk))
    try:
        _secure_file(job, path, limit, progress, indexer)
    finally:
        _count_unparseable(job, indexer.finish())
    if isinstance(indexer.failure, StorageError):
        # The messages are secured and wait to be indexed; the job says why.
        raise indexer.failure
    # What an interrupted run secured but did not get to index.
    _count_unparseable(
        job,
        messages_index_pending(
            space_id=job.space_id, heartbeat=functools.partial(_renew, job.pk)
        ),
    )


def _secure_file(
    job: ImportJob,
    path: Path,
    limit: int,
    progress: Progress | None,
    indexer: Indexer,
) -> None:
    with open_mbox_source(path) as fp:
        entries = _entries(fp, sniff_source(fp), limit)
        skip = job.checkpoint
        position = 0
        finished = False
        while not finished:
            batch = _Batch()
            storable: list[MboxEntry] = []
            finished = True
            for entry in entries:
                position = entry.index + 1
                if entry.index < skip:
                    continue
                if _count(job, entry, batch, limit):
                    storable.append(entry)
                if batch.messages >= BATCH_MESSAGES or batch.size >= BATCH_BYTES:
                    finished = False
                    break
            with transaction.atomic(durable=True):
                created = _secure(job, storable, batch)
                _commit_batch(job, batch, max(position, job.checkpoint))
            del storable
            indexer.submit(created)
            if progress is not None:
                progress(job)


def _count_unparseable(job: ImportJob, summary: IndexSummary) -> None:
    """Add what the index stage could not parse to the job's counters."""
    if summary.unparseable:
        job.failed_to_parse += summary.unparseable
        ImportJob.objects.filter(pk=job.pk).update(failed_to_parse=job.failed_to_parse)


def _run(job: ImportJob, progress: Progress | None) -> None:
    if job.origin == ImportJob.Origin.UPLOAD:
        # Copied down from an object store first: the lease is kept meanwhile.
        renew = functools.partial(_renew, job.pk)
        with upload_local_file(job.path, heartbeat=renew) as path:
            _run_file(job, path, progress)
        return
    path = Path(job.path)
    if job.origin == ImportJob.Origin.SERVER:
        # Checked again at run time: a symbolic link may have changed since.
        root = import_dir_root()
        if root is None or not path.resolve().is_relative_to(root):
            raise ImportPathError("the file is no longer inside the import directory")
    _run_file(job, path, progress)


def _run_file(job: ImportJob, path: Path, progress: Progress | None) -> None:
    size = path.stat().st_size
    if size != job.file_size:
        if job.checkpoint:
            raise ImportPathError(
                "the file changed since this import started; start a new import"
            )
        job.file_size = size
        job.total = None
        job.save(update_fields=["file_size", "total", "updated_at"])
    limit = settings.MAILARCHIVE_MAX_MESSAGE_BYTES
    if job.total is None:
        _scan(job, path, limit)
        if progress is not None:
            progress(job)
    _import(job, path, limit, progress)


def _failure_text(error: BaseException, job: ImportJob) -> str:
    if isinstance(error, MboxFormatError | ImportPathError):
        return str(error)
    if isinstance(error, PermissionError):
        return "permission denied: the file cannot be read"
    if isinstance(error, FileNotFoundError):
        return "file not found: it was moved or deleted"
    if isinstance(error, OperationalError | InterfaceError):
        return f"the database was unavailable ({error}); run the import again"
    if isinstance(error, StorageError):
        return (
            f"the archive's storage failed ({error}): the disk may be full or "
            "not writable. What was imported before is kept; run the import "
            "again once the storage works"
        )
    if isinstance(error, OSError):
        return f"reading the file or storing a message failed: {error}"
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "interrupted; run the import again to continue"
    logger.error("import %s failed", job.pk, exc_info=error)
    return f"unexpected error: {type(error).__name__}: {error}"


def mbox_import_run(import_id: int, *, progress: Progress | None = None) -> ImportJob:
    """Run the import ``import_id`` to its end and return the updated job.

    Secures every message of the file in the job's space, committing messages
    and counters together in batches, then indexes each batch,
    and calls ``progress(job)`` after the scan and after each batch. A bad file
    or an outage marks the job failed with a clear ``error``; per-message
    failures are listed in ``errors`` and the import goes on. Safe to re-run: a
    done job is left alone, a failed or interrupted one continues after its
    checkpoint, and a job that another worker is running is left to it.
    """
    if not _claim(import_id):
        logger.info("import %s is done or running elsewhere; not started", import_id)
        return ImportJob.objects.select_related("space").get(pk=import_id)
    job = ImportJob.objects.select_related("space").get(pk=import_id)
    job.attempts += 1
    job.started_at = job.started_at or timezone.now()
    job.save(update_fields=["attempts", "started_at", "updated_at"])
    try:
        require_global(job.space)
        _run(job, progress)
    except (Exception, KeyboardInterrupt, SystemExit) as error:
        text = _failure_text(error, job)
        if isinstance(error, ValidationError):
            text = " ".join(error.messages)
        job.refresh_from_db()
        _set_status(
            job,
            ImportJob.Status.FAILED,
            error=text,
            finished_at=timezone.now(),
            lease_until=None,
        )
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        return job
    _set_status(
        job, ImportJob.Status.DONE, finished_at=timezone.now(), lease_until=None
    )
    if job.delete_file_when_done:
        upload_delete(job.path)
    if progress is not None:
        progress(job)
    return job
