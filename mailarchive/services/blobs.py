"""Stored objects that purges left behind, deleted once it is safe."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from ..models import Attachment, Message, OrphanBlob
from .trash import TRASH_BATCH


def orphan_blob_grace() -> timedelta:
    """How long a purged object waits: longer than any ingest transaction."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + timedelta(hours=1)


def orphan_blobs_collect(*, now: datetime | None = None) -> int:
    """Delete stored objects that purges left without rows, once it is safe.

    An object queued longer ago than the grace period is deleted when no row
    refers to it and it was not written since (an ingest that reuses identical
    bytes rewrites the object before it commits, and commits within the grace
    period). Returns how many objects were deleted. Safe to re-run.
    """
    now = now or timezone.now()
    cutoff = now - orphan_blob_grace()
    deleted = 0
    while True:
        batch = list(
            OrphanBlob.objects.filter(queued_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", "name")[:TRASH_BATCH]
        )
        if not batch:
            return deleted
        names = [name for _pk, name in batch]
        used = set(
            Message.objects.filter(raw_name__in=names).values_list(
                "raw_name", flat=True
            )
        )
        used |= set(
            Attachment.objects.filter(blob_name__in=names).values_list(
                "blob_name", flat=True
            )
        )
        for name in names:
            if name in used or not default_storage.exists(name):
                continue
            if default_storage.get_modified_time(name) >= cutoff:
                continue
            default_storage.delete(name)
            deleted += 1
        OrphanBlob.objects.filter(pk__in=[pk for pk, _name in batch]).delete()
