"""Celery tasks of the archive. Thin: they take ids and call one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from .imports import import_summary, import_uploads_sweep, mbox_import_run
from .services import orphan_blobs_collect

# An import of a file of many gigabytes may take hours; the job commits as it
# goes, so a run cut short continues where it stopped when run again.
IMPORT_TIME_LIMIT = int(timedelta(hours=48).total_seconds())


@shared_task(
    name="mailarchive.tasks.mbox_import_task",
    acks_late=True,
    time_limit=IMPORT_TIME_LIMIT,
    soft_time_limit=IMPORT_TIME_LIMIT - 60,
)
def mbox_import_task(import_id: int) -> str:
    """Run the import ``import_id``; returns its summary line.

    Safe to re-run and to deliver twice: the job's lease lets one run at a time
    and a re-run continues after the last committed batch.
    """
    job = mbox_import_run(import_id)
    return f"import {job.pk} {job.status}: {import_summary(job)}"


@shared_task(name="mailarchive.tasks.orphan_blobs_collect_task")
def orphan_blobs_collect_task() -> str:
    """Delete the stored objects purges left behind, past their grace period."""
    return f"deleted {orphan_blobs_collect()} orphaned stored objects"


@shared_task(name="mailarchive.tasks.import_uploads_sweep_task")
def import_uploads_sweep_task() -> str:
    """Delete uploaded files that no import will read again."""
    return f"removed {import_uploads_sweep()} uploaded files"
