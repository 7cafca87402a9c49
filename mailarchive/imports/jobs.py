"""Recording, queueing and re-queueing imports; the summary line."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from spaces.models import Space
from spaces.services import audit_record

from ..models import ImportJob
from .sources import import_dir_resolve, upload_dir

# A running import renews its lease at every batch; a worker that died leaves a
# lease that runs out, after which the job may be run again.
LEASE = timedelta(minutes=15)


def require_global(space: Space) -> None:
    """Raise ValidationError unless ``space`` is a global space (reads only)."""
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
    require_global(space)
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
    # Imported here: the tasks module imports this package.
    from ..tasks import mbox_import_task

    transaction.on_commit(lambda: mbox_import_task.delay(job_id))


def import_upload_accept(
    *, space: Space, upload: UploadedFile, requested_by: AbstractBaseUser | None
) -> ImportJob:
    """Keep an uploaded file under ``DATA_DIR/imports/`` and queue its import.

    Django has already streamed a large upload to a temporary file; it is moved,
    never read into memory. The task is dispatched after the commit. Each call
    queues another import; the file is deleted once the import is done, or
    once a failed import is past ``MAILARCHIVE_UPLOAD_RETENTION_DAYS`` (see
    ``import_uploads_sweep``), and at once when the import cannot be recorded.
    """
    require_global(space)
    target = upload_dir() / f"{uuid.uuid4().hex}.upload"
    try:
        temporary = getattr(upload, "temporary_file_path", None)
        if temporary is not None:
            file_move_safe(temporary(), str(target))
        else:
            with target.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
        # Mail is private, whichever way the file arrived.
        target.chmod(settings.FILE_UPLOAD_PERMISSIONS)
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
    except BaseException:
        # Kept when its row committed and only the dispatch failed: the
        # import can then be run again.
        if not ImportJob.objects.filter(path=str(target)).exists():
            target.unlink(missing_ok=True)
        raise
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


def import_upload_missing(job: ImportJob) -> bool:
    """Whether ``job`` is an upload whose file is gone (swept, or lost). Reads."""
    return job.origin == ImportJob.Origin.UPLOAD and not Path(job.path).is_file()


def import_job_rerunnable(job: ImportJob) -> bool:
    """Whether the job may be run again: not done and no worker holds it.

    A job still queued is left to its task for a while (the lease's length):
    only a job whose task got lost is offered again.
    """
    now = timezone.now()
    if job.status == ImportJob.Status.DONE or import_upload_missing(job):
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
