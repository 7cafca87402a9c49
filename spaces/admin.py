from django.contrib import admin

from .models import AuditEvent, Space, SpacePermission


class SpacePermissionInline(admin.TabularInline):
    model = SpacePermission
    extra = 0
    autocomplete_fields = ["user", "group"]


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "kind", "owner", "allow_anonymous", "created_at"]
    list_filter = ["kind", "allow_anonymous"]
    search_fields = ["key", "name"]
    inlines = [SpacePermissionInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "space", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
