"""Pages of mail imports: start one, follow its progress, read its summary."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from spaces.decorators import space_required
from spaces.models import Level, Space

from .import_forms import ImportServerFileForm, ImportUploadForm, too_large_error
from .imports import (
    ImportPathError,
    import_dir_root,
    import_job_rerun,
    import_job_rerunnable,
    import_server_file_accept,
    import_upload_accept,
    import_upload_missing,
)
from .imports.selectors import import_job_get, import_jobs_of, import_progress
from .models import ImportJob
from .uploads import upload_refused

PAST_IMPORTS_SHOWN = 200


def _job_or_404(space: Space, import_id: int) -> ImportJob:
    job = import_job_get(space, import_id)
    if job is None:
        raise Http404(_("No such import."))
    return job


def _render_list(
    request: HttpRequest,
    space: Space,
    *,
    upload_form: ImportUploadForm | None = None,
    server_form: ImportServerFileForm | None = None,
    status: int = 200,
) -> HttpResponse:
    site_admin = request.user.is_superuser
    import_dir = import_dir_root() if site_admin else None
    if site_admin and import_dir is not None and server_form is None:
        server_form = ImportServerFileForm()
    context: dict[str, Any] = {
        "space": space,
        "jobs": import_jobs_of(space)[:PAST_IMPORTS_SHOWN],
        "upload_form": upload_form or ImportUploadForm(),
        "server_form": server_form,
        "site_admin": site_admin,
        "import_dir": import_dir,
    }
    return render(request, "mailarchive/import_list.html", context, status=status)


@space_required(Level.ADMIN)
def import_list(request: HttpRequest, space: Space) -> HttpResponse:
    """The forms to import mail and the space's past imports, newest first."""
    return _render_list(request, space)


@require_POST
@space_required(Level.ADMIN)
def import_upload(request: HttpRequest, space: Space) -> HttpResponse:
    """Accept an uploaded mbox, mbox.gz or .eml file and queue its import."""
    if not space.is_global:
        return _render_list(request, space, status=400)
    form = ImportUploadForm(request.POST, request.FILES)
    limit = upload_refused(request)
    if limit is not None:
        # The file never arrived: its only error is why, not that it is missing.
        form.errors["file"] = form.error_class(too_large_error(limit).messages)
        return _render_list(request, space, upload_form=form, status=413)
    if not form.is_valid():
        return _render_list(request, space, upload_form=form, status=400)
    job = import_upload_accept(
        space=space, upload=form.cleaned_data["file"], requested_by=request.user
    )
    messages.success(request, _("Import of %(file)s queued.") % {"file": job.file_name})
    return redirect(job)


@require_POST
@space_required(Level.ADMIN)
def import_server_file(request: HttpRequest, space: Space) -> HttpResponse:
    """Queue the import of a file of MAILARCHIVE_IMPORT_DIR (site admins only)."""
    if not request.user.is_superuser:
        raise PermissionDenied
    if not space.is_global:
        return _render_list(request, space, status=400)
    form = ImportServerFileForm(request.POST)
    if not form.is_valid():
        return _render_list(request, space, server_form=form, status=400)
    try:
        job = import_server_file_accept(
            space=space, name=form.cleaned_data["name"], requested_by=request.user
        )
    except (ImportPathError, ValidationError) as e:
        form.add_error("name", str(e))
        return _render_list(request, space, server_form=form, status=400)
    messages.success(request, _("Import of %(file)s queued.") % {"file": job.file_name})
    return redirect(job)


@space_required(Level.ADMIN)
def import_detail(request: HttpRequest, space: Space, import_id: int) -> HttpResponse:
    """One import: live progress while it runs, its summary afterwards."""
    job = _job_or_404(space, import_id)
    return render(
        request,
        "mailarchive/import_detail.html",
        {
            "space": space,
            "job": job,
            "progress": import_progress(job),
            "rerunnable": import_job_rerunnable(job),
            "upload_missing": job.status != ImportJob.Status.DONE
            and import_upload_missing(job),
            "retention_days": settings.MAILARCHIVE_UPLOAD_RETENTION_DAYS,
        },
    )


@space_required(Level.ADMIN)
def import_status(request: HttpRequest, space: Space, import_id: int) -> JsonResponse:
    """The import's progress as JSON, polled by the import page."""
    job = _job_or_404(space, import_id)
    response = JsonResponse(import_progress(job))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@space_required(Level.ADMIN)
def import_rerun(request: HttpRequest, space: Space, import_id: int) -> HttpResponse:
    """Queue a failed or stalled import again; it continues where it stopped."""
    job = _job_or_404(space, import_id)
    if import_job_rerun(job=job, requested_by=request.user):
        messages.success(request, _("The import continues where it stopped."))
    else:
        messages.error(request, _("This import is done or still running."))
    return redirect(job)
