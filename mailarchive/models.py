"""The archive: messages, their threads and attachments, and the space trash."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from spaces.models import Space

# The problem recorded on a message whose parse went over its budget; it is
# archived and shown raw.
TOO_COMPLEX = "too-complex"


class Thread(models.Model):
    """A conversation: messages linked by References/In-Reply-To or subject."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="threads")
    subject = models.TextField(_("subject"), blank=True)
    normalized_subject = models.CharField(max_length=255, blank=True, db_index=True)
    message_count = models.PositiveIntegerField(_("messages"), default=0)
    first_date = models.DateTimeField(null=True, blank=True)
    last_date = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")
        indexes = [models.Index(fields=["space", "-last_date", "-id"])]

    def __str__(self) -> str:
        return self.subject or f"#{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse(
            "mailarchive:thread-detail",
            kwargs={"key": self.space.key, "thread_id": self.pk},
        )


class Message(models.Model):
    """One archived message. Its raw bytes live in storage under ``raw_name``.

    Identity in a space is ``content_digest`` (the content without trace headers):
    a second delivery of the same message is the same row; the same Message-ID
    with other content is a second row flagged ``message_id_conflict``.
    """

    class Source(models.TextChoices):
        POLL = "poll", _("Mail account")
        IMPORT = "import", _("Import")

    class IndexState(models.TextChoices):
        # Secured (raw bytes and identity committed), not yet parsed: shown
        # raw until the index stage gets to it.
        PENDING = "pending", _("Waiting to be indexed")
        INDEXED = "indexed", _("Indexed")
        # Indexed, and to be indexed again (``reindex``); shown as it is.
        STALE = "stale", _("Waiting to be indexed again")

    # A message goes only through the services (trash purge, space deletion),
    # which release its stored objects; an ORM cascade would leak them.
    space = models.ForeignKey(Space, on_delete=models.PROTECT, related_name="messages")
    thread = models.ForeignKey(
        Thread,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    message_id = models.CharField(_("Message-ID"), max_length=500, blank=True)
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.JSONField(default=list, blank=True)
    subject = models.TextField(_("subject"), blank=True)
    from_name = models.CharField(_("sender name"), max_length=300, blank=True)
    from_address = models.CharField(_("sender address"), max_length=320, blank=True)
    to = models.JSONField(_("to"), default=list, blank=True)
    cc = models.JSONField(_("cc"), default=list, blank=True)
    date = models.DateTimeField(
        _("date"), help_text=_("The message's date, or when it arrived if it had none.")
    )
    date_offset_minutes = models.SmallIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(_("archived"), auto_now_add=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    raw_name = models.CharField(max_length=200)
    raw_size = models.PositiveBigIntegerField()
    raw_sha256 = models.CharField(max_length=64)
    content_digest = models.CharField(max_length=64)
    has_attachments = models.BooleanField(default=False)
    problems = models.JSONField(default=list, blank=True)
    parseable = models.BooleanField(default=True)
    message_id_conflict = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    # Rows loaded without the column (bulk loaders) are complete messages.
    index_state = models.CharField(
        _("index state"),
        max_length=16,
        choices=IndexState.choices,
        default=IndexState.PENDING,
        db_default=IndexState.INDEXED,
    )
    search_vector = SearchVectorField(null=True, editable=False)
    search_text = models.TextField(blank=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["space", "content_digest"], name="message_unique_content"
            ),
        ]
        indexes = [
            models.Index(
                fields=["space", "-date", "-id"],
                condition=Q(deleted_at__isnull=True),
                name="message_space_date",
            ),
            models.Index(fields=["space", "message_id"], name="message_space_msgid"),
            models.Index(fields=["thread", "date"], name="message_thread_date"),
            models.Index(
                fields=["space", "id"],
                condition=Q(index_state__in=["pending", "stale"]),
                name="message_pending",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or _("(no subject)")

    def get_absolute_url(self) -> str:
        return reverse(
            "mailarchive:message-detail",
            kwargs={"key": self.space.key, "message_pk": self.pk},
        )

    @property
    def pending(self) -> bool:
        return self.index_state == self.IndexState.PENDING

    @property
    def too_complex(self) -> bool:
        return TOO_COMPLEX in self.problems


class Attachment(models.Model):
    """A part of a message kept as a file. Identical content is stored once."""

    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, related_name="attachments"
    )
    position = models.PositiveSmallIntegerField()
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    sha256 = models.CharField(max_length=64)
    blob_name = models.CharField(max_length=200)
    content_id = models.CharField(max_length=500, blank=True)
    # Content-Location resolved against content_base (RFC 2557): the HTML of
    # the message may name the part by this URL instead of by cid:. Database
    # defaults let loaders that list their columns leave both out.
    content_location = models.CharField(max_length=500, blank=True, db_default="")
    # The base URL of the part's multipart/related group, against which that
    # group's HTML resolves relative references.
    content_base = models.CharField(max_length=500, blank=True, db_default="")
    inline = models.BooleanField(default=False)
    # Whether the index stage has read the text of this content (see
    # AttachmentText); attachments archived before texts were read, or loaded
    # by tools that leave the column out, have not.
    text_read = models.BooleanField(_("text read"), default=False, db_default=False)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "position"], name="attachment_unique_position"
            )
        ]
        indexes = [
            models.Index(fields=["sha256"], name="attachment_sha256"),
            models.Index(
                fields=["message"],
                condition=Q(text_read=False, inline=False),
                name="attachment_text_waiting",
            ),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def anchor(self) -> str:
        """The fragment of the message page that shows this attachment."""
        return f"attachment-{self.position}"


class AttachmentText(models.Model):
    """The text read from one attachment content, stored once for all copies.

    Keyed by the content's digest, like the stored file itself. A file that
    could not be read is recorded too (``failed``, with why), so it is not read
    again with every copy that arrives; ``reindex`` reads failed ones again.
    """

    class Status(models.TextChoices):
        OK = "ok", _("Text found")
        EMPTY = "empty", _("No text in it")
        FAILED = "failed", _("Could not be read")
        UNSUPPORTED = "unsupported", _("Not a kind of file that is read")

    sha256 = models.CharField(max_length=64, unique=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    # A short code (encrypted, unreadable, zip-bomb, time, memory, …), and what
    # the reader said.
    reason = models.CharField(_("reason"), max_length=100, blank=True)
    detail = models.TextField(_("detail"), blank=True)
    text = models.TextField(_("text"), blank=True)
    truncated = models.BooleanField(_("cut short"), default=False)
    extractor_version = models.PositiveSmallIntegerField(default=1)
    extracted_at = models.DateTimeField(_("read at"))
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        verbose_name = _("attachment text")
        verbose_name_plural = _("attachment texts")

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.status})"


class MessageReference(models.Model):
    """One Message-ID that a message refers to (References or In-Reply-To).

    Lets a parent that arrives after its replies find them by one indexed
    lookup, so threads join up whatever order the mail arrives in.
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="reference_rows"
    )
    ref_id = models.CharField(max_length=500)

    class Meta:
        verbose_name = _("message reference")
        verbose_name_plural = _("message references")
        indexes = [models.Index(fields=["space", "ref_id"], name="msgref_space_ref")]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "ref_id"], name="msgref_unique_message_ref"
            )
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.ref_id}"


class ImportJob(models.Model):
    """One import of an mbox or .eml file into a space, and what it stored.

    The counters are committed together with the messages they count, so after
    a crash they say exactly what is in the archive. ``checkpoint`` is the number
    of entries of the file fully handled; a re-run skips those and continues.
    ``lease_until`` is set while a worker runs the import, so that a second
    delivery of the same task does not run it twice at once.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SCANNING = "scanning", _("Scanning")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Origin(models.TextChoices):
        UPLOAD = "upload", _("Upload")
        SERVER = "server", _("Server directory")
        COMMAND = "command", _("Command line")

    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="import_jobs"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    origin = models.CharField(_("origin"), max_length=16, choices=Origin.choices)
    file_name = models.CharField(_("file"), max_length=255)
    path = models.CharField(max_length=1000)
    file_size = models.PositiveBigIntegerField(_("file size"), default=0)
    delete_file_when_done = models.BooleanField(default=False)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    total = models.PositiveIntegerField(_("messages in the file"), null=True)
    checkpoint = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    imported = models.PositiveIntegerField(_("imported"), default=0)
    duplicates = models.PositiveIntegerField(_("duplicates"), default=0)
    failed_to_parse = models.PositiveIntegerField(_("failed to parse"), default=0)
    failed = models.PositiveIntegerField(_("not stored"), default=0)
    errors = models.JSONField(_("messages not stored"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("mail import")
        verbose_name_plural = _("mail imports")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["space", "-created_at"], name="import_space")]

    def __str__(self) -> str:
        return f"{self.file_name} → {self.space.key}"

    def get_absolute_url(self) -> str:
        return reverse(
            "mbox:import-detail", kwargs={"key": self.space.key, "import_id": self.pk}
        )

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class FeedToken(models.Model):
    """A user's secret for feed readers, which cannot log in.

    The token in a feed URL stands for the user: the feed shows a space only
    while that user may view it. Regenerating replaces it, which revokes every
    URL that carried the old one. Only the token's SHA-256 is kept: the user
    sees the token once, in the feed addresses shown when it is made, and
    neither the database nor the admin can reveal it afterwards.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="feed_token",
        verbose_name=_("user"),
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("feed token")
        verbose_name_plural = _("feed tokens")

    def __str__(self) -> str:
        return f"{self.user} ({self.created_at:%Y-%m-%d})"


class OrphanBlob(models.Model):
    """A stored object that a purge left without rows, waiting to be deleted.

    It is deleted only after a grace period longer than any ingest transaction,
    and only if no row refers to it then and nothing rewrote it meanwhile: an
    ingest that reuses identical bytes rewrites the object before its commit.
    """

    name = models.CharField(max_length=200, unique=True)
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("orphaned stored object")
        verbose_name_plural = _("orphaned stored objects")

    def __str__(self) -> str:
        return self.name


class ReadingPreference(models.Model):
    """How a user likes to read: the mail list as messages or as conversations."""

    class MailView(models.TextChoices):
        MESSAGES = "messages", _("Messages")
        THREADS = "threads", _("Conversations")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="reading_preference",
        verbose_name=_("user"),
    )
    mail_view = models.CharField(
        _("mail list shows"),
        max_length=16,
        choices=MailView.choices,
        default=MailView.MESSAGES,
    )

    class Meta:
        verbose_name = _("reading preference")
        verbose_name_plural = _("reading preferences")

    def __str__(self) -> str:
        return f"{self.user}: {self.mail_view}"
