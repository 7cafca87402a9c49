"""Importing mbox and .eml files into a space, as a job that survives crashes.

A file arrives by browser upload (moved under ``DATA_DIR/imports/``), from the
server directory ``MAILARCHIVE_IMPORT_DIR`` (site admins only), or as a path
given to ``manage.py importmbox``. An ``ImportJob`` row records it, and
``mbox_import_run`` does the work for the Celery task and the command alike:
it counts the file's messages (status "scanning"), then hands each message to
``message_ingest`` (status "importing"), the same ingest and identity rules as
polling, so a message already in the space is reported as a duplicate.

Messages are committed in batches, each batch in one transaction together with
the job's counters and ``checkpoint`` (the number of entries of the file fully
handled). The counters therefore always say exactly what is in the archive,
however the import ends. Running the job again continues after the checkpoint;
running it from the very start would be correct too, because the identity rules
turn every message already stored into a duplicate. The checkpoint only keeps
the counters meaningful and saves the rework.

Memory stays bounded: the file is read as a stream and only the current message
is held. A message larger than ``MAILARCHIVE_MAX_MESSAGE_BYTES`` is not loaded;
it is listed among the job's errors with its offset in the file.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from spaces.models import Space
from spaces.services import audit_record

from .mbox import (
    MboxEntry,
    MboxFormatError,
    count_messages,
    iter_eml,
    iter_mbox,
    open_mbox_source,
    sniff_source,
)
from .models import ImportJob, Message
from .services import message_ingest

logger = logging.getLogger(__name__)

# A batch is committed after this many messages or bytes, whichever comes first:
# small enough that the page's progress moves, large enough to keep commits cheap.
BATCH_MESSAGES = 100
BATCH_BYTES = 32 * 1024 * 1024
# A running import renews its lease at every batch; a worker that died leaves a
# lease that runs out, after which the job may be run again.
LEASE = timedelta(minutes=15)
SCAN_RENEW_BYTES = 256 * 1024 * 1024
ERRORS_KEPT = 1000
SERVER_FILES_LISTED = 2000

Progress = Callable[[ImportJob], None]


class ImportPathError(ValueError):
    """A server-side path that may not be imported; the text says why."""


@dataclass(frozen=True)
class ServerFile:
    """A file of ``MAILARCHIVE_IMPORT_DIR``: its path relative to it, its size."""

    name: str
    size: int


def upload_dir() -> Path:
    """Where uploaded files wait for their import (created when missing)."""
    path = Path(settings.DATA_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_dir_root() -> Path | None:
    """The server directory site admins may import from, or None when unset."""
    configured = settings.MAILARCHIVE_IMPORT_DIR
    return Path(configured).expanduser().resolve() if configured else None


def import_dir_files() -> list[ServerFile]:
    """The files of ``MAILARCHIVE_IMPORT_DIR``, sorted by name; reads only.

    Hidden files and directories are left out, and so are symbolic links that
    lead outside the directory. At most ``SERVER_FILES_LISTED`` files are listed.
    """
    root = import_dir_root()
    if root is None or not root.is_dir():
        return []
    found: list[ServerFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            relative = (Path(dirpath) / name).relative_to(root).as_posix()
            try:
                path = import_dir_resolve(relative)
            except ImportPathError:
                continue
            found.append(ServerFile(name=relative, size=path.stat().st_size))
            if len(found) >= SERVER_FILES_LISTED:
                return found
    return found


def import_dir_resolve(name: str) -> Path:
    """The real path of ``name`` inside ``MAILARCHIVE_IMPORT_DIR``.

    Raises ImportPathError when the directory is not configured, when ``name``
    is absolute, or when it leads outside the directory (``..`` or a symbolic
    link pointing elsewhere), or is not a regular file. Reads only.
    """
    root = import_dir_root()
    if root is None:
        raise ImportPathError(_("No server import directory is configured."))
    if not name or Path(name).is_absolute():
        raise ImportPathError(_("Choose a file inside the import directory."))
    try:
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise ImportPathError(_("No such file in the import directory.")) from e
    if not path.is_relative_to(root):
        raise ImportPathError(_("That file is outside the import directory."))
    if not path.is_file():
        raise ImportPathError(_("That is not a regular file."))
    return path


def import_check_head(head: bytes) -> str:
    """Say what the first bytes of a file hold: ``"mbox"`` or ``"eml"``.

    For a gzip file the start of its content is looked at. Raises
    MboxFormatError with a clear text for an empty file or anything that is
    neither an mbox nor a message. Pure function.
    """
    if head.startswith(b"\x1f\x8b"):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 65536)
        except zlib.error as e:
            raise MboxFormatError(_("corrupt gzip file")) from e
        if not head:
            raise MboxFormatError(_("empty file"))
    return sniff_source(io.BytesIO(head))


def _require_global(space: Space) -> None:
    if not space.is_global:
        raise ValidationError(
            _("Personal spaces do not hold mail: import into a global space.")
        )


def import_job_create(
    *,
    space: Space,
    path: Path,
    file_name: str,
    origin: str,
    requested_by: AbstractBaseUser | None,
    delete_file_when_done: bool = False,
) -> ImportJob:
    """Record a queued import of ``path`` into ``space`` (does not start it).

    Raises ValidationError for a personal space. Writes one ImportJob and one
    audit event; not idempotent: each call records another import.
    """
    _require_global(space)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    with transaction.atomic():
        job = ImportJob.objects.create(
            space=space,
            requested_by=requested_by,
            origin=origin,
            file_name=file_name[:255],
            path=str(path),
            file_size=size,
            delete_file_when_done=delete_file_when_done,
        )
        audit_record(
            actor=requested_by,
            action="mail.import.request",
            space=space,
            target=job.file_name,
            detail={"import": job.pk, "origin": origin, "bytes": size},
        )
    return job


def _dispatch(job_id: int) -> None:
    from .tasks import mbox_import_task

    transaction.on_commit(lambda: mbox_import_task.delay(job_id))


def import_upload_accept(
    *, space: Space, upload: UploadedFile, requested_by: AbstractBaseUser | None
) -> ImportJob:
    """Keep an uploaded file under ``DATA_DIR/imports/`` and queue its import.

    Django has already streamed a large upload to a temporary file; it is moved,
    never read into memory. The task is dispatched after the commit. Each call
    queues another import; the file is deleted once the import is done.
    """
    _require_global(space)
    target = upload_dir() / f"{uuid.uuid4().hex}.upload"
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is not None:
        file_move_safe(temporary(), str(target))
    else:
        with target.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    with target.open("rb") as written:
        os.fsync(written.fileno())
    name = Path(upload.name or "upload").name
    with transaction.atomic():
        job = import_job_create(
            space=space,
            path=target,
            file_name=name,
            origin=ImportJob.Origin.UPLOAD,
            requested_by=requested_by,
            delete_file_when_done=True,
        )
        _dispatch(job.pk)
    return job


def import_server_file_accept(
    *, space: Space, name: str, requested_by: AbstractBaseUser | None
) -> ImportJob:
    """Queue the import of ``name`` from ``MAILARCHIVE_IMPORT_DIR``.

    Raises ImportPathError for a path outside the directory. The file is left
    in place afterwards. Each call queues another import.
    """
    path = import_dir_resolve(name)
    with transaction.atomic():
        job = import_job_create(
            space=space,
            path=path,
            file_name=name,
            origin=ImportJob.Origin.SERVER,
            requested_by=requested_by,
        )
        _dispatch(job.pk)
    return job


def import_job_rerunnable(job: ImportJob) -> bool:
    """Whether the job may be run again: not done and no worker holds it.

    A job still queued is left to its task for a while (the lease's length):
    only a job whose task got lost is offered again.
    """
    now = timezone.now()
    if job.status == ImportJob.Status.DONE:
        return False
    if job.status == ImportJob.Status.QUEUED and job.created_at > now - LEASE:
        return False
    return job.lease_until is None or job.lease_until < now


def import_job_rerun(*, job: ImportJob, requested_by: AbstractBaseUser | None) -> bool:
    """Queue a failed or stalled import again; it continues where it stopped.

    Returns False (and changes nothing) when the job is done or a worker holds
    it. Safe to re-run: a second queued run finds the lease taken and stops.
    """
    if not import_job_rerunnable(job):
        return False
    with transaction.atomic():
        audit_record(
            actor=requested_by,
            action="mail.import.rerun",
            space=job.space,
            target=job.file_name,
            detail={"import": job.pk},
        )
        _dispatch(job.pk)
    return True


def import_summary(job: ImportJob) -> str:
    """One line: ``imported N, duplicates N, failed to parse N, errors N``."""
    return (
        f"imported {job.imported}, duplicates {job.duplicates}, "
        f"failed to parse {job.failed_to_parse}, errors {job.failed}"
    )


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


def _handle(job: ImportJob, entry: MboxEntry, batch: _Batch, limit: int) -> None:
    """Ingest one entry and count what happened in ``job`` (not yet saved)."""
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
        return
    try:
        with transaction.atomic():
            result = message_ingest(
                space_id=job.space_id, raw=entry.raw, source=Message.Source.IMPORT
            )
    except (OperationalError, InterfaceError, OSError):
        # The database or the storage is down: every further message would
        # fail the same way, so the job stops here and can be run again.
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
        return
    if not result.created:
        job.duplicates += 1
        return
    job.imported += 1
    if not result.parseable:
        job.failed_to_parse += 1


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
    with open_mbox_source(path) as fp:
        entries = _entries(fp, sniff_source(fp), limit)
        skip = job.checkpoint
        position = 0
        finished = False
        while not finished:
            batch = _Batch()
            with transaction.atomic(durable=True):
                finished = True
                for entry in entries:
                    position = entry.index + 1
                    if entry.index < skip:
                        continue
                    _handle(job, entry, batch, limit)
                    if batch.messages >= BATCH_MESSAGES or batch.size >= BATCH_BYTES:
                        finished = False
                        break
                _commit_batch(job, batch, max(position, job.checkpoint))
            if progress is not None:
                progress(job)


def _run(job: ImportJob, progress: Progress | None) -> None:
    path = Path(job.path)
    if job.origin == ImportJob.Origin.SERVER:
        # Checked again at run time: a symbolic link may have changed since.
        root = import_dir_root()
        if root is None or not path.resolve().is_relative_to(root):
            raise ImportPathError("the file is no longer inside the import directory")
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
    if isinstance(error, OSError):
        return f"reading the file or storing a message failed: {error}"
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "interrupted; run the import again to continue"
    logger.error("import %s failed", job.pk, exc_info=error)
    return f"unexpected error: {type(error).__name__}: {error}"


def mbox_import_run(import_id: int, *, progress: Progress | None = None) -> ImportJob:
    """Run the import ``import_id`` to its end and return the updated job.

    Stores every message of the file in the job's space through
    ``message_ingest``, committing messages and counters together in batches,
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
        _require_global(job.space)
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
        Path(job.path).unlink(missing_ok=True)
    if progress is not None:
        progress(job)
    return job
