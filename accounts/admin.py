"""Django admin for mail accounts, poll history, the fetch ledger and the switch.

Passwords and OAuth2 tokens are not shown and cannot be set here: accounts
are added, their passwords changed and their sign-ins renewed on the space's
mail account pages or with addmailaccount.
For the same reason the fields that say where the password goes (protocol,
host, port, user name, STARTTLS) are read-only here: changing them needs the
password again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import FetchedMessage, FetchSettings, MailAccount, PollRun
from .services import (
    fetch_settings_set,
    mail_account_delete,
    mail_account_update,
    mail_account_update_check,
)
from .services.mail_accounts import CONNECTION_FIELDS, EDITABLE_FIELDS


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: looked at, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a ledger row would let a message be fetched again.
        return False


class MailAccountAdminForm(forms.ModelForm):
    """Checks a change with the service's own rules before it is saved."""

    class Meta:
        model = MailAccount
        fields: list[str] = []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        changes = {
            name: data[name]
            for name in self.changed_data
            if name in EDITABLE_FIELDS and name in data
        }
        try:
            mail_account_update_check(account=self.instance, changes=changes)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    form = MailAccountAdminForm
    list_display = [
        "name",
        "space",
        "protocol",
        "host",
        "enabled",
        "auth_state",
        "last_poll_at",
        "consecutive_failures",
    ]
    list_filter = ["protocol", "auth_method", "auth_state", "enabled", "space"]
    search_fields = ["name", "host", "username", "space__key", "space__name"]
    list_select_related = ["space"]
    fieldsets = [
        (None, {"fields": ["space", "name", "description", "folder", "enabled"]}),
        (
            _("Server and user"),
            {
                "fields": list(CONNECTION_FIELDS),
                "description": _(
                    "Changing these needs the mailbox's password again, so they "
                    "are changed on the space's mail account page."
                ),
            },
        ),
        (
            _("Sign-in"),
            {
                "fields": [
                    "auth_method",
                    "auth_state",
                    "oauth2_scopes",
                    "oauth2_signed_in_as",
                    "oauth2_signed_in_at",
                ],
                "description": _(
                    "Signing in with a provider happens on the space's mail "
                    "account page."
                ),
            },
        ),
        (
            _("Health"),
            {
                "fields": [
                    "last_poll_at",
                    "last_success_at",
                    "last_error",
                    "last_error_at",
                    "consecutive_failures",
                    "left_on_server",
                    "on_server_count",
                    "on_server_at",
                    "index_error",
                    "index_error_at",
                    "last_test_at",
                    "last_test_ok",
                    "alert_email_state",
                    "alert_email_at",
                    "alert_webhook_state",
                    "alert_webhook_at",
                    "lease_owner",
                    "lease_expires_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "space",
        *CONNECTION_FIELDS,
        "auth_method",
        "auth_state",
        "oauth2_scopes",
        "oauth2_signed_in_as",
        "oauth2_signed_in_at",
        "last_poll_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "left_on_server",
        "on_server_count",
        "on_server_at",
        "index_error",
        "index_error_at",
        "last_test_at",
        "last_test_ok",
        "alert_email_state",
        "alert_email_at",
        "alert_webhook_state",
        "alert_webhook_at",
        "lease_owner",
        "lease_expires_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # An account needs a password, which only the space's pages take.
        return False

    def save_model(
        self, request: HttpRequest, obj: MailAccount, form: Any, change: bool
    ) -> None:
        # Through the service: the same checks and the audit log as the pages.
        mail_account_update(
            account=MailAccount.objects.select_related("space").get(pk=obj.pk),
            changes={
                name: getattr(obj, name)
                for name in form.changed_data
                if name in EDITABLE_FIELDS
            },
            actor=request.user,
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(
            objs, request
        )
        # Poll history and ledger go with their account, through the service,
        # though they cannot be deleted one by one here.
        perms_needed = set(perms_needed) - {
            str(PollRun._meta.verbose_name),
            str(FetchedMessage._meta.verbose_name),
        }
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: MailAccount) -> None:
        mail_account_delete(account=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for account in queryset.select_related("space"):
            mail_account_delete(account=account, actor=request.user)


@admin.register(PollRun)
class PollRunAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "trigger",
        "status",
        "queued_at",
        "finished_at",
        "fetched",
        "duplicates",
        "deleted",
        "left_on_server",
        "error_kind",
    ]
    list_filter = ["status", "trigger", "error_kind"]
    list_select_related = ["account", "account__space"]
    date_hierarchy = "queued_at"


@admin.register(FetchedMessage)
class FetchedMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "server_id",
        "message_id",
        "fetched_at",
        "deleted_from_server_at",
    ]
    list_select_related = ["account", "account__space"]
    search_fields = ["server_id", "raw_sha256"]
    raw_id_fields = ["message"]


@admin.register(FetchSettings)
class FetchSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "automatic_polling", "changed_by", "changed_at"]
    fields = ["automatic_polling", "changed_by", "changed_at"]
    readonly_fields = ["changed_by", "changed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not FetchSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: FetchSettings, form: Any, change: bool
    ) -> None:
        # Through the service, so the change is audit-logged like on the page.
        row = fetch_settings_set(
            automatic_polling=obj.automatic_polling, actor=request.user
        )
        obj.pk = row.pk
