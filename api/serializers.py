"""What the API says about each resource, and what it accepts.

Serializers only shape data: every read comes from a selector, every write
goes through a service. Times are ISO 8601 in UTC; secrets are write-only.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import MailAccount, PollRun
from accounts.services.mail_accounts import plain_text_password
from accounts.templatetags.accounts_tags import account_last_error, poll_run_sentence
from mailarchive.forms import MonthField
from mailarchive.imports.selectors import import_progress
from mailarchive.models import ImportJob, Message
from mailarchive.selectors import DEFAULT_PAGE_SIZE, PAGE_SIZES, Sort
from mailarchive.templatetags.archive import permalink
from spaces.models import Level, Space

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


# -- spaces ------------------------------------------------------------------


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


# -- messages ----------------------------------------------------------------


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


# -- threads -----------------------------------------------------------------


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


# -- search ------------------------------------------------------------------


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


# -- mail accounts -----------------------------------------------------------


class PollRunSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    url = serializers.SerializerMethodField()
    account = serializers.IntegerField(source="account_id")
    trigger = serializers.ChoiceField(choices=PollRun.Trigger.choices)
    status = serializers.ChoiceField(choices=PollRun.Status.choices)
    done = serializers.SerializerMethodField()
    queued_at = UtcDateTimeField()
    started_at = UtcDateTimeField(allow_null=True)
    finished_at = UtcDateTimeField(allow_null=True)
    fetched = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    deleted = serializers.IntegerField()
    left_on_server = serializers.IntegerField()
    summary = serializers.SerializerMethodField(
        help_text="What happened, in words, in the caller's language."
    )

    def get_url(self, run: PollRun) -> str:
        return api_url(
            self.context, "poll-run-detail", key=self.context["space_key"], id=run.pk
        )

    def get_done(self, run: PollRun) -> bool:
        return run.status not in (PollRun.Status.QUEUED, PollRun.Status.RUNNING)

    def get_summary(self, run: PollRun) -> str:
        return poll_run_sentence(run)


class MailAccountHealthSerializer(serializers.Serializer):
    last_poll_at = UtcDateTimeField(allow_null=True)
    last_success_at = UtcDateTimeField(allow_null=True)
    last_error = serializers.SerializerMethodField()
    last_error_at = UtcDateTimeField(allow_null=True)
    consecutive_failures = serializers.IntegerField()
    pending_index = serializers.SerializerMethodField(
        help_text="Its messages archived but not yet parsed."
    )
    left_on_server = serializers.ListField(
        child=serializers.DictField(),
        help_text="Messages left on the server (too large, or not archivable).",
    )

    def get_last_error(self, account: MailAccount) -> str:
        return account_last_error(account)

    @extend_schema_field(OpenApiTypes.INT)
    def get_pending_index(self, account: MailAccount) -> int | None:
        return getattr(account, "pending_index", None)


class MailAccountSerializer(StrictSerializer):
    """A mail account as space admins see it; its password is never shown."""

    id = serializers.IntegerField(source="pk", read_only=True)
    url = serializers.SerializerMethodField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    protocol = serializers.ChoiceField(choices=MailAccount.Protocol.choices)
    host = serializers.CharField(max_length=255)
    port = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Leave out for the protocol's standard port.",
    )
    username = serializers.CharField(max_length=320)
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        help_text="Write-only. On update, leave out to keep the stored one.",
    )
    folder = serializers.CharField(required=False, allow_blank=True, max_length=255)
    starttls = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)
    created_at = UtcDateTimeField()
    updated_at = UtcDateTimeField()
    sends_password_in_clear = serializers.SerializerMethodField(
        help_text="POP or IMAP without STARTTLS."
    )
    health = serializers.SerializerMethodField()
    latest_run = serializers.SerializerMethodField()

    def get_url(self, account: MailAccount) -> str:
        return api_url(
            self.context,
            "mail-account-detail",
            key=self.context["space_key"],
            id=account.pk,
        )

    def get_sends_password_in_clear(self, account: MailAccount) -> bool:
        return plain_text_password(account)

    @extend_schema_field(MailAccountHealthSerializer)
    def get_health(self, account: MailAccount) -> dict[str, Any]:
        return MailAccountHealthSerializer(account, context=self.context).data

    @extend_schema_field(PollRunSerializer(allow_null=True))
    def get_latest_run(self, account: MailAccount) -> dict[str, Any] | None:
        run = getattr(account, "latest_run", None)
        if run is None:
            return None
        return PollRunSerializer(run, context=self.context).data


class MailAccountUpdateSerializer(MailAccountSerializer):
    """The fields to change; those left out stay as they are."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class MailAccountListSerializer(serializers.Serializer):
    results = MailAccountSerializer(many=True)


class EnabledSerializer(StrictSerializer):
    enabled = serializers.BooleanField()


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message_count = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField(help_text="What went wrong, as a code; empty if ok.")
    detail = serializers.CharField(help_text="What to tell a person, in words.")


# -- imports -----------------------------------------------------------------


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


# -- permissions -------------------------------------------------------------


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


# -- who is asking -----------------------------------------------------------


class TokenInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    expires_at = UtcDateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    site_admin = serializers.BooleanField()
    authenticated_by = serializers.ChoiceField(choices=["token", "session"])
    token = TokenInfoSerializer(allow_null=True)


LEVELS_BY_NAME = {name: level for level, name in LEVEL_NAMES.items()}
