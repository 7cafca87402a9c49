"""Django admin for the archive: looking things up, not editing mail.

Archived mail is evidence: its fields are read-only here, and deleting goes
through the space trash (which audits it), not through the admin. The
periodic tasks that the settings define (CELERY_BEAT_SCHEDULE: polling,
indexing, collecting orphaned objects) are read-only too, and so are their
schedules: automatic polling is switched on the site admin page, the one
audited switch, not by disabling its task.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import EmptyResultSet
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from .models import Attachment, AttachmentText, FeedToken, Message, Thread
from .services import feed_token_revoke


class BoundedChangeList(ChangeList):
    """A change list that takes an impossible date lookup for a wrong one.

    ``?date__year=0`` or a year past 9999 fails only when the query is
    compiled; Django answers a wrong lookup with the list and an error flag,
    and so does this, instead of failing with a server error.
    """

    def get_queryset(
        self, request: HttpRequest, exclude_parameters: list[str] | None = None
    ) -> QuerySet:
        queryset = super().get_queryset(request, exclude_parameters)
        try:
            queryset.query.sql_with_params()
        except EmptyResultSet:
            pass
        except (ValueError, OverflowError) as e:
            raise IncorrectLookupParameters(e) from e
        return queryset


class ArchiveModelAdmin(admin.ModelAdmin):
    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type:
        return BoundedChangeList


class ReadOnlyAdmin(ArchiveModelAdmin):
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

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
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
    # No date_hierarchy: it reads the distinct years of every message on each
    # visit, and moving dates at the ends of the calendar into a far time zone
    # gives years the database driver cannot read back.
    list_filter = (
        ("date", admin.DateFieldListFilter),
        "space",
        "parseable",
        "message_id_conflict",
        "source",
    )
    search_fields = ("subject", "from_address", "message_id")
    list_select_related = ("space",)
    show_full_result_count = False
    raw_id_fields = ("thread",)
    exclude = ("text_body", "html_body", "search_text")
    inlines = [AttachmentInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        # The bodies are not shown; a page of 20 MB messages must not load them.
        return super().get_queryset(request).defer(*self.exclude, "search_vector")


@admin.register(Thread)
class ThreadAdmin(ReadOnlyAdmin):
    list_display = ("subject", "space", "message_count", "last_date")
    list_filter = ("space",)
    search_fields = ("subject",)
    list_select_related = ("space",)
    show_full_result_count = False


@admin.register(FeedToken)
class FeedTokenAdmin(ArchiveModelAdmin):
    """Site admins may revoke a token (delete it); tokens are never shown.

    Only digests are stored, and they are neither shown nor searched nor
    filtered on: a changelist filter such as ``?token_hash__startswith=``
    would otherwise answer, one character at a time, what the digest is.
    """

    list_display = ("user", "created_at")
    search_fields = ("user__username",)
    fields = ("user", "created_at")
    readonly_fields = ("user", "created_at")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if lookup.split(LOOKUP_SEP, 1)[0] == "token_hash":
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: FeedToken) -> None:
        # Through the service, so that the revocation is audit-logged.
        feed_token_revoke(user=obj.user, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for token in queryset.select_related("user"):
            feed_token_revoke(user=token.user, actor=request.user)


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


def _settings_task_names() -> list[str]:
    return list(settings.CELERY_BEAT_SCHEDULE)


def _uses_settings_schedule(obj: object) -> bool:
    return obj is not None and getattr(obj, "name", None) in _settings_task_names()


class SettingsPeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    """The beat tasks; the ones the settings define are looked at, not changed."""

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        if _uses_settings_schedule(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        if _uses_settings_schedule(obj):
            return False
        return super().has_delete_permission(request, obj)

    def _changeable(self, queryset: QuerySet) -> QuerySet:
        return queryset.exclude(name__in=_settings_task_names())

    def enable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().enable_tasks(request, self._changeable(queryset))

    def disable_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().disable_tasks(request, self._changeable(queryset))

    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().toggle_tasks(request, self._changeable(queryset))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().delete_queryset(request, self._changeable(queryset))


class SettingsScheduleMixin:
    """Read-only for a schedule that a settings task runs on.

    Changing such a schedule would change when the task runs; deleting it
    would delete the task with it.
    """

    def _protected(self, obj: object) -> bool:
        return (
            obj is not None
            and obj.periodictask_set.filter(name__in=_settings_task_names()).exists()
        )

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        if self._protected(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        if self._protected(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().delete_queryset(
            request, queryset.exclude(periodictask__name__in=_settings_task_names())
        )


class SettingsIntervalScheduleAdmin(
    SettingsScheduleMixin, beat_admin.IntervalScheduleAdmin
):
    pass


class SettingsCrontabScheduleAdmin(
    SettingsScheduleMixin, beat_admin.CrontabScheduleAdmin
):
    pass


class SettingsSolarScheduleAdmin(SettingsScheduleMixin, beat_admin.SolarScheduleAdmin):
    pass


class SettingsClockedScheduleAdmin(
    SettingsScheduleMixin, beat_admin.ClockedScheduleAdmin
):
    pass


for _model, _base in [
    (PeriodicTask, SettingsPeriodicTaskAdmin),
    (IntervalSchedule, SettingsIntervalScheduleAdmin),
    (CrontabSchedule, SettingsCrontabScheduleAdmin),
    (SolarSchedule, SettingsSolarScheduleAdmin),
    (ClockedSchedule, SettingsClockedScheduleAdmin),
]:
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _base)
