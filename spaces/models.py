"""Spaces: the containers mail is archived into, and who may do what in them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

space_key_validator = RegexValidator(
    r"^[A-Z0-9]+\Z",
    _("A space key uses upper-case letters A-Z and digits 0-9 only."),
)


class Space(models.Model):
    class Kind(models.TextChoices):
        GLOBAL = "global", _("Global")
        PERSONAL = "personal", _("Personal")

    key = models.CharField(
        _("key"), max_length=64, unique=True, validators=[space_key_validator]
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(
        _("kind"), max_length=16, choices=Kind.choices, default=Kind.GLOBAL
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="personal_spaces",
    )
    allow_anonymous = models.BooleanField(_("anonymous users may view"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("space")
        verbose_name_plural = _("spaces")
        ordering = ["name", "key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="global", owner__isnull=True)
                | Q(kind="personal", owner__isnull=False),
                name="space_owner_iff_personal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    def get_absolute_url(self) -> str:
        return reverse("spaces:space-home", kwargs={"key": self.key})

    @property
    def is_global(self) -> bool:
        return self.kind == self.Kind.GLOBAL


class Level(models.IntegerChoices):
    """What a grant allows; each level includes the ones below it."""

    VIEW = 10, _("View mail")
    DELETE = 20, _("View and remove mail")
    ADMIN = 30, _("Administer space")


class SpacePermission(models.Model):
    """A grant of one level in one space to one user or one group."""

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="permissions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="space_permissions",
    )
    group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="space_permissions",
    )
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    granted_at = models.DateTimeField(_("granted"), auto_now=True)

    class Meta:
        verbose_name = _("space permission")
        verbose_name_plural = _("space permissions")
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="space_permission_one_principal",
            ),
            models.UniqueConstraint(
                fields=["space", "user"],
                condition=Q(user__isnull=False),
                name="space_permission_unique_user",
            ),
            models.UniqueConstraint(
                fields=["space", "group"],
                condition=Q(group__isnull=False),
                name="space_permission_unique_group",
            ),
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{who}: {self.get_level_display()} in {self.space.key}"


class AuditLogAppendOnlyError(Exception):
    """An audit event was about to be changed or deleted; it never is."""

    def __init__(self) -> None:
        super().__init__(
            "The audit log is append-only: its events are never changed or deleted."
        )


class AuditEventQuerySet(models.QuerySet):
    """Audit events are added, never changed or deleted in bulk either."""

    def update(self, **kwargs: object) -> int:
        raise AuditLogAppendOnlyError

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogAppendOnlyError

    def bulk_update(self, objs: object, fields: object, batch_size=None) -> int:
        raise AuditLogAppendOnlyError

    def update_or_create(self, *args: object, **kwargs: object) -> object:
        raise AuditLogAppendOnlyError


class AuditEvent(models.Model):
    """Who did what, when: permission changes, deletions, switches.

    Append-only: the model refuses to change or delete a saved event, and a
    database trigger refuses it to any other code (see the migration
    ``0002_audit_append_only``). The actor and the space are kept as the ids
    they had, without a foreign key constraint, so that removing a user or a
    space leaves the events that name them as they were; ``actor_name`` and
    ``target`` say who and what in words.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(_("actor"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    space = models.ForeignKey(
        Space,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    target = models.CharField(_("target"), max_length=500, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AuditLogAppendOnlyError
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditLogAppendOnlyError
