"""Recording, queueing and re-queueing imports; the summary line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from spaces.models import Space
from spaces.services import audit_record

from ..models import ImportJob
from ..storage import upload_delete, upload_exists, upload_save
from .sources import import_dir_resolve

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
    path: Path | str,
    file_name: str,
    origin: str,
    requested_by: AbstractBaseUser | None,
    delete_file_when_done: bool = False,
    file_size: int | None = None,
) -> ImportJob:
    """Record a queued import of ``path`` into ``space`` (does not start it).

    ``path`` is a local file, or the storage name of an upload (then give its
    ``file_size``). Raises ValidationError for a personal space. Writes one
    ImportJob and one audit event; not idempotent: each call records another
    import.
    """
    require_global(space)
    size = file_size
    if size is None:
        try:
            size = Path(path).stat().st_size
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
    """Store an uploaded file beside the mail and queue its import.

    The file goes to the storage (``imports/`` there), where a worker on any
    machine finds it; Django has already streamed a large upload to a
    temporary file, which is moved or streamed on, never read into memory.
    The task is dispatched after the commit. Each call queues another import;
    the file is deleted once the import is done, or once a failed import is
    past ``MAILARCHIVE_UPLOAD_RETENTION_DAYS`` (see ``import_uploads_sweep``),
    and at once when the import cannot be recorded.
    """
    require_global(space)
    size = upload.size or 0
    stored = None
    try:
        stored = upload_save(upload)
        name = Path(upload.name or "upload").name
        with transaction.atomic():
            job = import_job_create(
                space=space,
                path=stored,
                file_name=name,
                origin=ImportJob.Origin.UPLOAD,
                requested_by=requested_by,
                delete_file_when_done=True,
                file_size=size,
            )
            _dispatch(job.pk)
    except BaseException:
        # Kept when its row committed and only the dispatch failed: the
        # import can then be run again.
        if stored is not None and not ImportJob.objects.filter(path=stored).exists():
            upload_delete(stored)
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
    return job.origin == ImportJob.Origin.UPLOAD and not upload_exists(job.path)


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
