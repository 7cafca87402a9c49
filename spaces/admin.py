"""Django admin for spaces and the audit log.

A space's name, description and anonymous access are saved through
``space_update`` (audit-logged, like on the space's edit page). Creating and
deleting spaces and changing permissions happen on the product's pages, which
go through the services; here they are read-only, with links to those pages.
The audit log is read-only for everyone, superusers included.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent, Space, SpacePermission
from .services import space_update


class SpacePermissionInline(admin.TabularInline):
    model = SpacePermission
    fields = ["user", "group", "level", "granted_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "kind", "owner", "allow_anonymous", "created_at"]
    list_filter = ["kind", "allow_anonymous"]
    search_fields = ["key", "name"]
    fields = [
        "key",
        "name",
        "description",
        "allow_anonymous",
        "kind",
        "owner",
        "pages",
    ]
    readonly_fields = ["key", "kind", "owner", "pages"]
    inlines = [SpacePermissionInline]

    @admin.display(description=_("on the space's pages"))
    def pages(self, obj: Space) -> str:
        if obj.pk is None:
            return ""
        links = [
            (
                reverse("spaces:space-permissions", kwargs={"key": obj.key}),
                _("Permissions"),
            ),
            (
                reverse("spaces:space-delete", kwargs={"key": obj.key}),
                _("Delete space"),
            ),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Spaces are created on the "Create space" page or with createspace.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a space releases its stored mail; its page does that.
        return False

    def save_model(
        self, request: HttpRequest, obj: Space, form: Any, change: bool
    ) -> None:
        # Through the service: the same checks and the audit log as the page.
        space_update(
            space=Space.objects.get(pk=obj.pk),
            name=obj.name,
            description=obj.description,
            allow_anonymous=obj.allow_anonymous,
            actor=request.user,
        )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log: read by site admins, changed by no one."""

    list_display = ["created_at", "actor_name", "action", "space_key", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    list_select_related = ["space"]
    actions = None

    @admin.display(description=_("space"))
    def space_key(self, obj: AuditEvent) -> str:
        # The space may have been deleted since; the event keeps its id.
        try:
            space = obj.space
        except Space.DoesNotExist:
            space = None
        if space is not None:
            return space.key
        return f"#{obj.space_id}" if obj.space_id else ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
