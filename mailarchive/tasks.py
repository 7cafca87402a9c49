"""Celery tasks of the archive. Thin: they take ids and call one service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .imports import import_summary, import_uploads_sweep, mbox_import_run
from .services import messages_index, messages_index_pending, orphan_blobs_collect

# Messages secured this recently are left to the poll or import that secured
# them, which indexes them right after.
PENDING_GRACE = timedelta(minutes=5)

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


@shared_task(
    name="mailarchive.tasks.messages_index_pending_task",
    acks_late=True,
    time_limit=IMPORT_TIME_LIMIT,
)
def messages_index_pending_task(space_id: int | None = None) -> str:
    """Index every message still waiting (of one space, or all). Safe to re-run."""
    summary = messages_index_pending(
        space_id=space_id, secured_before=timezone.now() - PENDING_GRACE
    )
    return f"indexed {summary.indexed} waiting messages"


@shared_task(
    name="mailarchive.tasks.messages_index_task",
    acks_late=True,
    time_limit=IMPORT_TIME_LIMIT,
)
def messages_index_task(message_pks: list[int]) -> str:
    """Index the given messages if they are still waiting. Safe to re-run."""
    summary = messages_index(message_pks=message_pks)
    return f"indexed {summary.indexed} of {len(message_pks)} messages"


@shared_task(name="mailarchive.tasks.import_uploads_sweep_task")
def import_uploads_sweep_task() -> str:
    """Delete uploaded files that no import will read again."""
    return f"removed {import_uploads_sweep()} uploaded files"
