"""Imports and their progress."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mailarchive.imports.selectors import import_progress
from mailarchive.models import ImportJob

from .common import (
    UtcDateTimeField,
    api_url,
)


class ImportSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    url = serializers.SerializerMethodField()
    file_name = serializers.CharField()
    file_size = serializers.IntegerField()
    origin = serializers.ChoiceField(choices=ImportJob.Origin.choices)
    requested_by = serializers.SerializerMethodField()
    created_at = UtcDateTimeField()
    started_at = UtcDateTimeField(allow_null=True)
    finished_at = UtcDateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=ImportJob.Status.choices)
    status_label = serializers.CharField()
    finished = serializers.BooleanField()
    total = serializers.IntegerField(
        allow_null=True, help_text="Messages in the file, once scanned."
    )
    processed = serializers.IntegerField()
    imported = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    failed_to_parse = serializers.IntegerField(
        help_text="Archived raw: they could not be read as e-mail."
    )
    failed = serializers.IntegerField(help_text="Not stored; see errors.")
    percent = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField())

    def to_representation(self, job: ImportJob) -> dict[str, Any]:
        when = UtcDateTimeField()
        return {
            **import_progress(job),
            "url": self.get_url(job),
            "file_name": job.file_name,
            "file_size": job.file_size,
            "origin": job.origin,
            "requested_by": self.get_requested_by(job),
            "created_at": when.to_representation(job.created_at),
            "started_at": job.started_at and when.to_representation(job.started_at),
            "finished_at": job.finished_at and when.to_representation(job.finished_at),
            "errors": job.errors or [],
        }

    def get_url(self, job: ImportJob) -> str:
        return api_url(
            self.context, "import-detail", key=self.context["space_key"], id=job.pk
        )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_requested_by(self, job: ImportJob) -> str | None:
        return job.requested_by.get_username() if job.requested_by else None


class ImportListSerializer(serializers.Serializer):
    results = ImportSerializer(many=True)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="An mbox file, a gzip-compressed one, or a single .eml message."
    )
