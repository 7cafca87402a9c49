"""Spaces, their grants, and who is asking."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from spaces.models import Space

from .common import (
    LEVEL_CHOICES,
    StrictSerializer,
    UtcDateTimeField,
    absolute,
    api_url,
    level_name,
)


class SpaceSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=Space.Kind.choices)
    allow_anonymous = serializers.BooleanField()
    level = serializers.SerializerMethodField(
        help_text="What the caller may do: view, delete (remove mail) or admin."
    )
    url = serializers.SerializerMethodField()
    messages_url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=LEVEL_CHOICES))
    def get_level(self, space: Space) -> str | None:
        return level_name(self.context["levels"].get(space.pk))

    def get_url(self, space: Space) -> str:
        return api_url(self.context, "space-detail", key=space.key)

    def get_messages_url(self, space: Space) -> str:
        return api_url(self.context, "message-list", key=space.key)

    def get_page_url(self, space: Space) -> str:
        return absolute(self.context, space.get_absolute_url())


class SpaceListSerializer(serializers.Serializer):
    results = SpaceSerializer(many=True)


class GrantSerializer(serializers.Serializer):
    """One grant of a level in a space, to one user or one group."""

    id = serializers.IntegerField(source="pk")
    url = serializers.SerializerMethodField()
    user = serializers.SerializerMethodField()
    group = serializers.SerializerMethodField()
    level = serializers.SerializerMethodField()
    granted_at = UtcDateTimeField()

    def get_url(self, grant: Any) -> str:
        return api_url(
            self.context,
            "permission-detail",
            key=self.context["space_key"],
            id=grant.pk,
        )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_user(self, grant: Any) -> str | None:
        return grant.user.get_username() if grant.user_id else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_group(self, grant: Any) -> str | None:
        return grant.group.name if grant.group_id else None

    @extend_schema_field(serializers.ChoiceField(choices=LEVEL_CHOICES))
    def get_level(self, grant: Any) -> str | None:
        return level_name(grant.level)


class GrantWriteSerializer(StrictSerializer):
    """Give a user or a group a level (replacing the one they had)."""

    user = serializers.CharField(
        required=False, max_length=150, help_text="A user name; or give group."
    )
    group = serializers.CharField(
        required=False, max_length=150, help_text="A group name; or give user."
    )
    level = serializers.ChoiceField(choices=LEVEL_CHOICES)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if bool(attrs.get("user")) == bool(attrs.get("group")):
            raise serializers.ValidationError(_("Choose either a user or a group."))
        return attrs


class GrantListSerializer(serializers.Serializer):
    results = GrantSerializer(many=True)


class TokenInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    expires_at = UtcDateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    site_admin = serializers.BooleanField()
    authenticated_by = serializers.ChoiceField(choices=["token", "session"])
    token = TokenInfoSerializer(allow_null=True)
