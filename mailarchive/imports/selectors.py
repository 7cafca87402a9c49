"""Reads about imports: a space's imports and how far one has got."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from spaces.models import Space

from ..models import ImportJob


def import_jobs_of(space: Space) -> QuerySet[ImportJob]:
    """The imports of ``space``, newest first, with who asked for each."""
    return ImportJob.objects.filter(space=space).select_related("requested_by")


def import_job_get(space: Space, import_id: int) -> ImportJob | None:
    """The import ``import_id`` of ``space``, or None."""
    return import_jobs_of(space).filter(pk=import_id).first()


def import_progress(job: ImportJob) -> dict[str, Any]:
    """Where ``job`` stands, as the import page's script and the API show it."""
    percent = None
    if job.total:
        percent = min(100, round(100 * job.processed / job.total))
    elif job.status == ImportJob.Status.DONE:
        percent = 100
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": str(job.get_status_display()),
        "finished": job.finished,
        "total": job.total,
        "processed": job.processed,
        "imported": job.imported,
        "duplicates": job.duplicates,
        "failed_to_parse": job.failed_to_parse,
        "failed": job.failed,
        "error": job.error,
        "percent": percent,
    }
