"""Removing uploaded files that no import will read again.

An upload waits in the storage, under ``imports/``, for its import. A finished import
deletes it; a failed one keeps it for ``MAILARCHIVE_UPLOAD_RETENTION_DAYS``
so that it can be run again from where it stopped. Everything else that
would otherwise stay on disk for ever is swept here: the file of an import
that failed longer ago than that, of one nobody ran or finished for as long,
of a finished one whose process died before deleting it, stored uploads no
import refers to, and the temporary files of uploads cut short on this
machine.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import ImportJob
from ..storage import upload_delete, uploads_stored_before
from .jobs import LEASE

logger = logging.getLogger(__name__)

# A stored upload that no import refers to is kept this long: an upload being
# accepted is stored a moment before its row commits.
STRAY_GRACE = timedelta(days=1)
ABANDONED = (
    "abandoned: no worker ran or finished this import for {days} days; "
    "the uploaded file was removed"
)


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def _sweep_job(job_id: int, *, now: datetime) -> bool:
    # The lease is taken first, as a worker would take it, so that no run of
    # the import starts while its file goes.
    taken = (
        ImportJob.objects.filter(pk=job_id)
        .filter(_free(now))
        .update(lease_until=now + LEASE)
    )
    if not taken:
        return False
    job = ImportJob.objects.get(pk=job_id)
    removed = upload_delete(job.path)
    # Nothing of it is left to delete, so later sweeps pass it by.
    changes: dict[str, object] = {"lease_until": None, "delete_file_when_done": False}
    if job.status not in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        days = settings.MAILARCHIVE_UPLOAD_RETENTION_DAYS
        changes |= {
            "status": ImportJob.Status.FAILED,
            "finished_at": now,
            "error": ABANDONED.format(days=days),
        }
    ImportJob.objects.filter(pk=job_id).update(**changes)
    if removed:
        logger.info("import %s: removed its uploaded file %s", job_id, job.path)
    return removed


def _old_files(folder: Path, before: datetime) -> list[Path]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        try:
            stat = path.lstat()
        except OSError:
            continue
        if path.is_file() and stat.st_mtime < before.timestamp():
            found.append(path)
    return found


def import_uploads_sweep(*, now: datetime | None = None) -> int:
    """Delete the uploaded files no import will read again; returns how many.

    Removes the file of a done import, of one that failed more than
    ``MAILARCHIVE_UPLOAD_RETENTION_DAYS`` ago, and of one that stayed queued
    or stopped half-way, with no worker holding it, for as long (that import
    is marked failed and says why); then, past a day, the stored uploads no
    import refers to, this machine's temporary files of uploads cut short
    and the spool directories of index runs that were killed. Only uploads
    and those temporary files are ever deleted. Safe to re-run and to run
    while imports run: a running import holds its lease, and the sweep takes
    the lease before removing a file.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.MAILARCHIVE_UPLOAD_RETENTION_DAYS)
    finished = (ImportJob.Status.DONE, ImportJob.Status.FAILED)
    due = (
        ImportJob.objects.filter(
            origin=ImportJob.Origin.UPLOAD, delete_file_when_done=True
        )
        .filter(_free(now))
        .filter(
            Q(status=ImportJob.Status.DONE)
            | Q(status=ImportJob.Status.FAILED, finished_at__lt=cutoff)
            | (~Q(status__in=finished) & Q(updated_at__lt=cutoff))
        )
        .values_list("pk", flat=True)
    )
    removed = sum(_sweep_job(pk, now=now) for pk in list(due))

    stray_before = now - STRAY_GRACE
    strays = uploads_stored_before(stray_before)
    if strays:
        referred = set(
            ImportJob.objects.filter(path__in=strays).values_list("path", flat=True)
        )
        for name in strays:
            if name not in referred and upload_delete(name):
                logger.info("removed %s, which no import refers to", name)
                removed += 1
    temporary = Path(settings.FILE_UPLOAD_TEMP_DIR).resolve()
    for path in _old_files(temporary, stray_before):
        if path.resolve().parent == temporary:
            path.unlink(missing_ok=True)
            removed += 1
    # The spool of an index run whose process was killed outright (a run
    # removes its own, and no run lasts a day).
    for path in temporary.glob("index-*"):
        with contextlib.suppress(OSError):
            if (
                path.is_dir()
                and not path.is_symlink()
                and path.lstat().st_mtime < stray_before.timestamp()
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed
