"""Imports of mbox files into a space, for its admins: upload, then follow."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mailarchive.import_forms import ImportUploadForm
from mailarchive.imports import import_job_rerun, import_upload_accept
from mailarchive.imports.selectors import import_job_get, import_jobs_of
from mailarchive.models import ImportJob
from spaces.models import Level, Space

from ..problems import Conflict
from ..serializers import ImportListSerializer, ImportSerializer, ImportUploadSerializer
from .base import form_errors, problems, space_for

TAGS = ["imports"]
IMPORTS_LISTED = 200


def _job_or_404(space: Space, import_id: int) -> ImportJob:
    job = import_job_get(space, import_id)
    if job is None:
        raise exceptions.NotFound(_("No such import."))
    return job


def _shown(request: Request, space: Space, job: ImportJob, status: int = 200):
    context = {"request": request, "space_key": space.key}
    data = ImportSerializer(job, context=context).data
    headers = {"Location": data["url"]} if status == 202 else None
    return Response(data, status=status, headers=headers)


class ImportListView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="imports_list",
        summary="A space's imports",
        description=f"Space admins only; the newest {IMPORTS_LISTED}.",
        responses={200: ImportListSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def get(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        context = {"request": request, "space_key": space.key}
        jobs = import_jobs_of(space)[:IMPORTS_LISTED]
        return Response(
            {"results": ImportSerializer(jobs, many=True, context=context).data}
        )

    @extend_schema(
        operation_id="import_upload",
        summary="Upload a file to import",
        description="An mbox, mbox.gz or .eml file, as multipart/form-data field "
        "`file`. The import runs in the background: follow its url.",
        request={"multipart/form-data": ImportUploadSerializer},
        responses={202: ImportSerializer, **problems(400, 401, 403, 404, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str) -> Response:
        space = space_for(request, key, Level.ADMIN)
        form = ImportUploadForm(data={}, files=request.FILES)
        if not form.is_valid():
            raise form_errors(form)
        job = import_upload_accept(
            space=space, upload=form.cleaned_data["file"], requested_by=request.user
        )
        return _shown(request, space, job, status=202)


class ImportDetailView(APIView):
    @extend_schema(
        operation_id="import_retrieve",
        summary="An import and its progress",
        responses={200: ImportSerializer, **problems(401, 403, 404, 429)},
        tags=TAGS,
    )
    def get(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        return _shown(request, space, _job_or_404(space, id))


class ImportRerunView(APIView):
    @extend_schema(
        operation_id="import_rerun",
        summary="Run a failed or stalled import again",
        description="It continues where it stopped. 409 when it is done or "
        "still running.",
        request=None,
        responses={202: ImportSerializer, **problems(401, 403, 404, 409, 429)},
        tags=TAGS,
    )
    def post(self, request: Request, key: str, id: int) -> Response:
        space = space_for(request, key, Level.ADMIN)
        job = _job_or_404(space, id)
        if not import_job_rerun(job=job, requested_by=request.user):
            raise Conflict(_("This import is done or still running."))
        return _shown(request, space, job, status=202)
