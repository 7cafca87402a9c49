"""What every serializer of the API shares: levels by name, UTC times,
absolute URLs, strictness about fields, the problem shape."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from spaces.models import Level

LEVEL_NAMES: dict[int, str] = {
    Level.VIEW: "view",
    Level.DELETE: "delete",
    Level.ADMIN: "admin",
}
LEVEL_CHOICES = [(name, Level(level).label) for level, name in LEVEL_NAMES.items()]


def level_name(level: int | None) -> str | None:
    return LEVEL_NAMES.get(level) if level is not None else None


class UtcDateTimeField(serializers.DateTimeField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(default_timezone=UTC, **kwargs)


def absolute(context: dict[str, Any], path: str) -> str:
    """``path`` as an absolute URL of the request being answered."""
    return context["request"].build_absolute_uri(path)


def api_url(context: dict[str, Any], name: str, **kwargs: Any) -> str:
    return absolute(context, reverse(f"api:{name}", kwargs=kwargs))


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so that a typo is not silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if hasattr(data, "keys") else []
        errors: dict[str, Any] = {}
        value = None
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        errors.update({name: [_("Unknown field.")] for name in unknown})
        if errors:
            raise serializers.ValidationError(errors)
        return value


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the shape of every error."""

    type = serializers.CharField(help_text="urn:mailarchive:problem:<code>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="400 only: messages by field (non_field_errors for the rest).",
    )
    retry_after = serializers.IntegerField(
        required=False, help_text="429 only: seconds until a request is let in."
    )


LEVELS_BY_NAME = {name: level for level, name in LEVEL_NAMES.items()}
