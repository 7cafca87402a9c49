"""Mail accounts polled into spaces, what was fetched from them, and poll history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.clients.protocols import default_ports, protocols
from mailarchive.models import Message
from spaces.models import Space


class MailAccount(models.Model):
    """A clone mailbox (e.g. conf-sales@) whose mail is archived into a space."""

    # The choices come from the protocol registry (accounts.clients.protocols).
    Protocol = models.TextChoices(
        "Protocol", [(p.name.upper(), (p.name, p.label)) for p in protocols()]
    )
    DEFAULT_PORTS = default_ports()

    class AuthMethod(models.TextChoices):
        PASSWORD = "password", _("Password")
        MICROSOFT = "microsoft", _("Microsoft 365 / Outlook.com")
        GOOGLE = "google", _("Google Workspace / Gmail")
        CUSTOM = "custom", _("Another OAuth2 provider")

    class AuthState(models.TextChoices):
        OK = "ok", _("Signed in")
        SIGNIN_NEEDED = "signin_needed", _("Sign-in needed")

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="mail_accounts"
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    protocol = models.CharField(_("protocol"), max_length=8, choices=Protocol.choices)
    host = models.CharField(_("host name"), max_length=255)
    port = models.PositiveIntegerField(_("port"))
    username = models.CharField(_("user name"), max_length=320)
    password_encrypted = models.TextField(editable=False, blank=True, default="")
    auth_method = models.CharField(
        _("sign in with"),
        max_length=16,
        choices=AuthMethod.choices,
        default=AuthMethod.PASSWORD,
    )
    # Whether the account can sign in: an OAuth2 account whose grant the
    # provider no longer honours (revoked, expired) needs a person to sign in
    # again, and is not polled until then.
    auth_state = models.CharField(
        _("sign-in state"),
        max_length=16,
        choices=AuthState.choices,
        default=AuthState.OK,
    )
    oauth2_scopes = models.CharField(_("OAuth2 scopes"), max_length=1000, blank=True)
    # The grant, encrypted like passwords (accounts.crypto). The access token
    # is kept until shortly before it expires, so polls do not refresh it.
    oauth2_refresh_token_encrypted = models.TextField(editable=False, blank=True)
    oauth2_access_token_encrypted = models.TextField(editable=False, blank=True)
    oauth2_access_token_expires_at = models.DateTimeField(
        null=True, blank=True, editable=False
    )
    oauth2_signed_in_as = models.CharField(
        _("signed in as"), max_length=320, blank=True
    )
    oauth2_signed_in_at = models.DateTimeField(_("signed in"), null=True, blank=True)
    starttls = models.BooleanField(_("use STARTTLS"), default=False)
    folder = models.CharField(_("IMAP folder"), max_length=255, default="INBOX")
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The poll lease: one poller at a time across workers and machines. A killed
    # worker's lease runs out after seconds, so the next poll proceeds.
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    # Health, updated at the end of every poll.
    last_poll_at = models.DateTimeField(_("last poll"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    # The error's kind and the server's own words, so that pages can say it
    # again in the reader's language.
    last_error_kind = models.CharField(max_length=40, blank=True)
    last_error_detail = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    left_on_server = models.JSONField(
        _("messages left on the server"), default=list, blank=True
    )
    # What the last listing showed, less what that poll deleted: the messages
    # on the server as far as the archive knows.
    on_server_count = models.PositiveIntegerField(
        _("messages on the server"), null=True, blank=True
    )
    on_server_at = models.DateTimeField(null=True, blank=True)
    # The index stage could not read what the poll secured (the messages wait
    # to be indexed); cleared by the next poll that indexes everything.
    index_error = models.TextField(blank=True)
    index_error_at = models.DateTimeField(null=True, blank=True)
    # The last connection test, which is part of the health the pages show.
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_kind = models.CharField(max_length=40, blank=True)
    last_test_detail = models.TextField(blank=True)
    last_test_count = models.PositiveIntegerField(null=True, blank=True)

    # Alerts (accounts.services.alerts): the problems each channel last told
    # of (comma-separated, empty when it told of none or of the recovery) and
    # when, and a short claim that lets one evaluation at a time send.
    alert_email_state = models.CharField(max_length=200, blank=True)
    alert_email_at = models.DateTimeField(null=True, blank=True)
    alert_webhook_state = models.CharField(max_length=200, blank=True)
    alert_webhook_at = models.DateTimeField(null=True, blank=True)
    alert_claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("mail account")
        verbose_name_plural = _("mail accounts")
        ordering = ["space", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["space", "name"], name="mail_account_unique_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_protocol_display()} {self.host})"

    @property
    def uses_oauth2(self) -> bool:
        return self.auth_method != self.AuthMethod.PASSWORD

    @property
    def signin_needed(self) -> bool:
        return self.auth_state == self.AuthState.SIGNIN_NEEDED


class FetchedMessage(models.Model):
    """The fetch ledger: a server message that is safely archived.

    Keyed on the server's identity of the message (POP3 UIDL, or IMAP
    UIDVALIDITY:UID with the folder), so a re-poll only deletes it again.
    """

    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="ledger"
    )
    server_id = models.CharField(max_length=600)
    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    raw_sha256 = models.CharField(max_length=64)
    fetched_at = models.DateTimeField(auto_now_add=True)
    deleted_from_server_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("fetched message")
        verbose_name_plural = _("fetched messages")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "server_id"], name="fetched_unique_server_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.server_id}"


class PollRun(models.Model):
    """One poll of one account: when, what it brought, how it ended."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Scheduled")
        MANUAL = "manual", _("Fetch new mail")
        COMMAND = "command", _("Command line")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        OK = "ok", _("Succeeded")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    account = models.ForeignKey(
        MailAccount, on_delete=models.CASCADE, related_name="poll_runs"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fetched = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    left_on_server = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=40, blank=True)
    error_detail = models.TextField(blank=True)

    class Meta:
        verbose_name = _("poll run")
        verbose_name_plural = _("poll runs")
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["account", "-queued_at"])]

    def __str__(self) -> str:
        return f"{self.account_id} {self.queued_at:%Y-%m-%d %H:%M} {self.status}"


class AlertPreference(models.Model):
    """A person's choice about alert e-mails (all of them get them by default)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="alert_preference",
    )
    email_alerts = models.BooleanField(_("alert e-mails"), default=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("alert preference")
        verbose_name_plural = _("alert preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: {'on' if self.email_alerts else 'off'}"


class FetchSettings(models.Model):
    """The site-wide automatic polling switch (one row)."""

    automatic_polling = models.BooleanField(_("automatic polling"), default=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("fetch settings")
        verbose_name_plural = _("fetch settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="fetch_settings_singleton")
        ]

    def __str__(self) -> str:
        return str(_("Fetch settings"))
