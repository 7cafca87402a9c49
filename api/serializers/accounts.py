"""Mail accounts, their health, tests and polls."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import MailAccount, PollRun
from accounts.services.mail_accounts import plain_text_password
from accounts.templatetags.accounts_tags import account_last_error, poll_run_sentence

from .common import (
    StrictSerializer,
    UtcDateTimeField,
    api_url,
)


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
    auth_method = serializers.ChoiceField(
        choices=MailAccount.AuthMethod.choices,
        required=False,
        help_text="How the account signs in: a password, or a configured OAuth2 "
        "provider (then follow signin_url in a browser to sign in).",
    )
    password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        help_text="Write-only; for password accounts. On update, leave out to "
        "keep the stored one.",
    )
    auth_state = serializers.ChoiceField(
        choices=MailAccount.AuthState.choices, read_only=True
    )
    signin_url = serializers.SerializerMethodField(
        help_text="For OAuth2 accounts: the address that starts the sign-in "
        "at the provider, to open in a browser logged in as a space admin."
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

    def get_signin_url(self, account: MailAccount) -> str | None:
        if not account.uses_oauth2:
            return None
        path = reverse(
            "accounts:account-signin",
            kwargs={"key": self.context["space_key"], "account_id": account.pk},
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

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
