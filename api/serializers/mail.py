"""Messages, their query, threads, the trash and search results."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mailarchive.forms import MonthField
from mailarchive.models import Message
from mailarchive.selectors import DEFAULT_PAGE_SIZE, PAGE_SIZES, Sort
from mailarchive.templatetags.archive import permalink

from .common import (
    UtcDateTimeField,
    absolute,
    api_url,
)


class AddressSerializer(serializers.Serializer):
    name = serializers.CharField()
    address = serializers.CharField()


def _addresses(pairs: list[list[str]]) -> list[dict[str, str]]:
    shown = []
    for pair in pairs or []:
        name, address = (list(pair) + ["", ""])[:2]
        shown.append({"name": name, "address": address})
    return shown


def _space_key(context: dict[str, Any], message: Message) -> str:
    return context.get("space_key") or message.space.key


class MonthParam(serializers.CharField):
    """``YYYY-MM``, read by the mail list's own month field."""

    def to_internal_value(self, data: object) -> date | None:  # type: ignore[override]
        try:
            return MonthField(required=False).clean(super().to_internal_value(data))
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class PageQuery(serializers.Serializer):
    """Which page of a list: its size and a cursor from a neighbour's link."""

    limit = serializers.IntegerField(
        min_value=1,
        max_value=max(PAGE_SIZES),
        default=DEFAULT_PAGE_SIZE,
        help_text="Rows per page.",
    )
    after = serializers.RegexField(
        r"^[A-Za-z0-9_-]*\Z",
        required=False,
        max_length=2000,
        help_text="The page after this cursor (from a `next` link).",
    )
    before = serializers.RegexField(
        r"^[A-Za-z0-9_-]*\Z",
        required=False,
        max_length=2000,
        help_text="The page before this cursor (from a `previous` link).",
    )


class MessageListQuery(PageQuery):
    """The query of the message list: order, filters, the page."""

    sort = serializers.ChoiceField(
        choices=[s.value for s in Sort], default=Sort.NEWEST.value
    )
    month = MonthParam(required=False, help_text="YYYY-MM, in the site's time zone.")
    date_from = serializers.DateField(
        required=False, help_text="From this day on (site's time zone)."
    )
    date_to = serializers.DateField(
        required=False, help_text="Up to and including this day."
    )
    sender = serializers.CharField(
        required=False, max_length=320, help_text="A sender's address, exactly."
    )
    has_attachments = serializers.BooleanField(required=False, default=False)
    thread = serializers.IntegerField(
        required=False, min_value=1, help_text="Only the messages of this thread."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError(
                _("The start date is after the end date.")
            )
        return attrs


class MessageSummarySerializer(serializers.Serializer):
    """A message as lists show it."""

    id = serializers.IntegerField(source="pk")
    url = serializers.SerializerMethodField()
    subject = serializers.CharField()
    sender = serializers.SerializerMethodField(method_name="get_sender")
    date = UtcDateTimeField()
    has_attachments = serializers.BooleanField()
    parseable = serializers.BooleanField(
        help_text="False: the message could not be read as e-mail; see raw_url."
    )
    index_state = serializers.ChoiceField(
        choices=Message.IndexState.choices,
        help_text="pending: archived but not parsed yet, only the raw source "
        "is there; indexed; stale: to be parsed again, shown as it is.",
    )
    thread_id = serializers.IntegerField(allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is the header's name, and a Python keyword.
        return {
            ("from" if name == "sender" else name): field
            for name, field in super().get_fields().items()
        }

    def get_url(self, message: Message) -> str:
        return api_url(
            self.context,
            "message-detail",
            key=_space_key(self.context, message),
            id=message.pk,
        )

    @extend_schema_field(AddressSerializer)
    def get_sender(self, message: Message) -> dict[str, str]:
        return {"name": message.from_name, "address": message.from_address}


class MessageListItemSerializer(MessageSummarySerializer):
    thread_size = serializers.IntegerField(help_text="Messages in its thread.")


class MessagePageSerializer(serializers.Serializer):
    results = MessageListItemSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class AttachmentSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    inline = serializers.BooleanField(
        help_text="A part the HTML body shows (e.g. a picture named by cid:)."
    )
    content_id = serializers.CharField()
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, part: Any) -> str:
        return api_url(
            self.context,
            "attachment-download",
            key=self.context["space_key"],
            id=part.message_id,
            position=part.position,
        )


class SafeHtmlSerializer(serializers.Serializer):
    document = serializers.CharField(
        source="html",
        help_text="A complete sanitized document, to be shown in a sandboxed "
        "frame; remote content is removed.",
    )
    has_remote_content = serializers.BooleanField()


class ThreadRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    url = serializers.SerializerMethodField()
    subject = serializers.CharField()
    message_count = serializers.IntegerField()

    def get_url(self, thread: Any) -> str:
        return api_url(
            self.context, "thread-detail", key=self.context["space_key"], id=thread.pk
        )


class MessageSerializer(MessageSummarySerializer):
    """A whole message, as its page shows it."""

    message_id = serializers.CharField(help_text="Without angle brackets.")
    in_reply_to = serializers.CharField()
    references = serializers.ListField(child=serializers.CharField())
    to = serializers.SerializerMethodField()
    cc = serializers.SerializerMethodField()
    date_offset_minutes = serializers.IntegerField(
        allow_null=True, help_text="The time zone offset the Date header gave."
    )
    received_at = UtcDateTimeField(help_text="When the archive stored it.")
    source = serializers.ChoiceField(choices=Message.Source.choices)
    size = serializers.IntegerField(source="raw_size")
    sha256 = serializers.CharField(source="raw_sha256", help_text="Of the raw bytes.")
    text_body = serializers.CharField()
    html = serializers.SerializerMethodField()
    attachments = serializers.SerializerMethodField()
    thread = serializers.SerializerMethodField()
    problems = serializers.ListField(child=serializers.CharField())
    too_complex = serializers.BooleanField(
        help_text="Parsing went over its budget; only the raw source is there."
    )
    message_id_conflict = serializers.BooleanField(
        help_text="Another message of the space has this Message-ID with other "
        "content; both are kept."
    )
    deleted_at = UtcDateTimeField(
        allow_null=True, help_text="In the trash since (space admins see these)."
    )
    deleted_by = serializers.SerializerMethodField()
    raw_url = serializers.SerializerMethodField()
    permalink = serializers.SerializerMethodField(
        help_text="The message's page in the archive."
    )
    message_id_url = serializers.SerializerMethodField(
        help_text="Resolves the Message-ID to its message, for links from anywhere."
    )

    @extend_schema_field(AddressSerializer(many=True))
    def get_to(self, message: Message) -> list[dict[str, str]]:
        return _addresses(message.to)

    @extend_schema_field(AddressSerializer(many=True))
    def get_cc(self, message: Message) -> list[dict[str, str]]:
        return _addresses(message.cc)

    @extend_schema_field(SafeHtmlSerializer(allow_null=True))
    def get_html(self, message: Message) -> dict[str, Any] | None:
        html = self.context.get("html")
        return None if html is None else SafeHtmlSerializer(html).data

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, message: Message) -> list[dict[str, Any]]:
        return AttachmentSerializer(
            self.context["attachments"], many=True, context=self.context
        ).data

    @extend_schema_field(ThreadRefSerializer(allow_null=True))
    def get_thread(self, message: Message) -> dict[str, Any] | None:
        if message.thread is None:
            return None
        return ThreadRefSerializer(message.thread, context=self.context).data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_deleted_by(self, message: Message) -> str | None:
        if message.deleted_at is None or message.deleted_by is None:
            return None
        return message.deleted_by.get_username()

    def get_raw_url(self, message: Message) -> str:
        return api_url(
            self.context, "message-raw", key=self.context["space_key"], id=message.pk
        )

    def get_permalink(self, message: Message) -> str:
        return absolute(
            self.context,
            reverse(
                "mailarchive:message-detail",
                kwargs={"key": self.context["space_key"], "message_pk": message.pk},
            ),
        )

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_message_id_url(self, message: Message) -> str | None:
        if not message.message_id:
            return None
        return absolute(self.context, permalink(message.message_id))


class TrashedMessageSerializer(MessageSummarySerializer):
    deleted_at = UtcDateTimeField()
    deleted_by = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_deleted_by(self, message: Message) -> str | None:
        return message.deleted_by.get_username() if message.deleted_by else None


class TrashPageSerializer(serializers.Serializer):
    results = TrashedMessageSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class ThreadRowSerializer(serializers.Serializer):
    depth = serializers.IntegerField(help_text="0 for a message that starts it.")
    message = MessageSummarySerializer(
        allow_null=True,
        help_text="null: a message that replies refer to but the archive lacks.",
    )


class ThreadSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    url = serializers.SerializerMethodField()
    subject = serializers.CharField()
    message_count = serializers.IntegerField()
    first_date = UtcDateTimeField(allow_null=True)
    last_date = UtcDateTimeField(allow_null=True)
    export_url = serializers.SerializerMethodField()
    messages = serializers.SerializerMethodField(
        help_text="The conversation as a tree, flattened: each message once, "
        "replies after what they answer."
    )

    def get_url(self, thread: Any) -> str:
        return api_url(
            self.context, "thread-detail", key=self.context["space_key"], id=thread.pk
        )

    def get_export_url(self, thread: Any) -> str:
        return api_url(
            self.context, "thread-export", key=self.context["space_key"], id=thread.pk
        )

    @extend_schema_field(ThreadRowSerializer(many=True))
    def get_messages(self, thread: Any) -> list[dict[str, Any]]:
        return ThreadRowSerializer(
            self.context["rows"], many=True, context=self.context
        ).data


class SearchHitSerializer(serializers.Serializer):
    message = MessageSummarySerializer()
    space = serializers.CharField(source="message.space.key")
    subject_html = serializers.CharField(
        source="subject",
        help_text="The subject as HTML, escaped, with the matches in <mark>.",
    )
    excerpt_html = serializers.CharField(
        source="excerpt",
        help_text="Some text around the first match, escaped, matches in <mark>.",
    )


class SearchResultsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    count_is_lower_bound = serializers.BooleanField(
        help_text="True: at least this many were found (counting stops there)."
    )
    results = SearchHitSerializer(many=True, source="hits")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
