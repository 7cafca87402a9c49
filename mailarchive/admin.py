"""Django admin for the archive: looking things up, not editing mail.

Archived mail is evidence: its fields are read-only here, and deleting goes
through the space trash (which audits it), not through the admin.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import Attachment, AttachmentText, FeedToken, Message, Thread


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AttachmentInline(admin.TabularInline):
    model = Attachment
    fields = (
        "position",
        "filename",
        "content_type",
        "size",
        "inline",
        "content_id",
        "text_read",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "subject",
        "from_address",
        "date",
        "space",
        "parseable",
        "deleted_at",
    )
    list_filter = ("space", "parseable", "message_id_conflict", "source")
    search_fields = ("subject", "from_address", "message_id")
    date_hierarchy = "date"
    list_select_related = ("space",)
    show_full_result_count = False
    raw_id_fields = ("thread",)
    exclude = ("text_body", "html_body", "search_text")
    inlines = [AttachmentInline]


@admin.register(Thread)
class ThreadAdmin(ReadOnlyAdmin):
    list_display = ("subject", "space", "message_count", "last_date")
    list_filter = ("space",)
    search_fields = ("subject",)
    list_select_related = ("space",)
    show_full_result_count = False


@admin.register(FeedToken)
class FeedTokenAdmin(admin.ModelAdmin):
    """Site admins may revoke a token (delete it); tokens are never shown."""

    list_display = ("user", "created_at")
    search_fields = ("user__username",)
    fields = ("user", "created_at")
    readonly_fields = ("user", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AttachmentText)
class AttachmentTextAdmin(ReadOnlyAdmin):
    """What was read from each attachment content, and why a file was not."""

    list_display = ("sha256", "status", "reason", "truncated", "extracted_at")
    list_filter = ("status", "reason", "truncated")
    search_fields = ("sha256",)
    show_full_result_count = False
    exclude = ("search_vector",)
    readonly_fields = ("files",)

    @admin.display(description=_("files with this content"))
    def files(self, obj: AttachmentText) -> str:
        names = (
            Attachment.objects.filter(sha256=obj.sha256)
            .order_by("message_id", "position")
            .values_list("filename", flat=True)[:20]
        )
        return ", ".join(names)
