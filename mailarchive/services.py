"""Writes to the archive: ingesting messages, threading them, trash and restore."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchVector
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Count,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from spaces.models import Space
from spaces.services import audit_record

from .models import (
    Attachment,
    FeedToken,
    Message,
    MessageReference,
    OrphanBlob,
    Thread,
)
from .parsing import (
    ParsedAddress,
    ParsedMessage,
    body_text_for_search,
    content_digest,
    parse_message,
)
from .selectors import feed_token_digest
from .storage import blob_put
from .threading import normalize_subject

# A subject-only match joins an existing thread only when that thread was
# active this recently: "Re: Hello" a year later is a new conversation.
SUBJECT_THREAD_WINDOW = timedelta(days=60)
SEARCH_TEXT_LIMIT = 200_000
REPLY_PREFIXES = ("re:", "re[", "aw:", "sv:", "vs:", "antw:", "返信:", "答复:", "回复:")


@dataclass(frozen=True)
class IngestResult:
    message_pk: int
    created: bool
    parseable: bool


def _clean(value: str, limit: int | None = None) -> str:
    """Text the database accepts: no NUL, no lone surrogates, bounded length."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:limit] if limit else value


def _addresses(items: list[ParsedAddress]) -> list[list[str]]:
    return [[_clean(a.name, 300), _clean(a.address, 320)] for a in items[:200]]


def _search_text(parsed: ParsedMessage) -> str:
    people = [parsed.from_] if parsed.from_ else []
    people += parsed.to + parsed.cc
    parts = [parsed.subject]
    parts += [f"{p.name} {p.address}" for p in people]
    parts += [a.filename for a in parsed.attachments if not a.inline]
    parts.append(body_text_for_search(parsed))
    return _clean("\n".join(parts), SEARCH_TEXT_LIMIT)


def message_ingest(
    *,
    space_id: int,
    raw: bytes,
    source: str,
    received_at: datetime | None = None,
) -> IngestResult:
    """Archive ``raw`` into the space, exactly once.

    The raw bytes and attachments are written durably to storage before the
    database rows; the rows are written in one savepoint, so this may run inside
    the caller's transaction (the poller commits a batch together with its fetch
    ledger). A message whose content is already in the space is reported as a
    duplicate and changes nothing. Never raises for malformed mail: what cannot
    be parsed is archived raw and marked. Safe to re-run.
    """
    digest = content_digest(raw)
    existing = (
        Message.objects.filter(space_id=space_id, content_digest=digest)
        .values_list("pk", "parseable")
        .first()
    )
    if existing is not None:
        return IngestResult(
            message_pk=existing[0], created=False, parseable=existing[1]
        )

    parsed = parse_message(raw)
    raw_name, raw_sha = blob_put("raw", raw)
    stored_attachments = []
    for position, att in enumerate(parsed.attachments):
        name, _ = blob_put("att", att.content, att.sha256)
        stored_attachments.append((position, att, name))

    now = received_at or timezone.now()
    message_id = _clean(parsed.message_id or "", 500)
    in_reply_to = _clean(parsed.in_reply_to or "", 500)
    references = [_clean(r, 500) for r in parsed.references]
    refs = [
        r for r in dict.fromkeys([*references, in_reply_to]) if r and r != message_id
    ]
    subject = _clean(parsed.subject, 10_000)
    search_text = _search_text(parsed)
    message = Message(
        space_id=space_id,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        from_name=_clean(parsed.from_.name, 300) if parsed.from_ else "",
        from_address=_clean(parsed.from_.address, 320) if parsed.from_ else "",
        to=_addresses(parsed.to),
        cc=_addresses(parsed.cc),
        date=parsed.date or now,
        date_offset_minutes=parsed.date_offset_minutes,
        text_body=_clean(parsed.text_body),
        html_body=_clean(parsed.html_body),
        raw_name=raw_name,
        raw_size=len(raw),
        raw_sha256=raw_sha,
        content_digest=digest,
        has_attachments=any(not a.inline for a in parsed.attachments),
        problems=list(parsed.problems),
        parseable=parsed.parseable,
        source=source,
        search_text=search_text,
    )
    if connection.vendor == "postgresql":
        # Computed by the INSERT itself: no second write per message.
        message.search_vector = SearchVector(
            Value(subject), config="simple", weight="A"
        ) + SearchVector(Value(search_text), config="simple")
    # No savepoint of its own: inside the poller's batch, a failure here fails
    # the batch (the poller keeps a savepoint per message); alone, this is the
    # transaction. The inner savepoint only absorbs a lost duplicate race.
    with transaction.atomic(savepoint=False):
        try:
            with transaction.atomic():
                thread_pk, merge, conflict = _thread_choose(message, refs)
                message.thread_id = thread_pk
                message.message_id_conflict = conflict
                message.save()
        except IntegrityError:
            # Another worker archived the same content a moment ago.
            winner = Message.objects.get(space_id=space_id, content_digest=digest)
            return IngestResult(
                message_pk=winner.pk, created=False, parseable=winner.parseable
            )
        if stored_attachments:
            Attachment.objects.bulk_create(
                [
                    Attachment(
                        message=message,
                        position=position,
                        filename=_clean(att.filename, 255),
                        content_type=_clean(att.content_type, 255),
                        size=len(att.content),
                        sha256=att.sha256,
                        blob_name=name,
                        content_id=_clean(att.content_id or "", 500),
                        content_location=_clean(att.content_location or "", 500),
                        content_base=_clean(att.content_base or "", 500),
                        inline=att.inline,
                    )
                    for position, att, name in stored_attachments
                ]
            )
        if refs:
            MessageReference.objects.bulk_create(
                [
                    MessageReference(space_id=space_id, message=message, ref_id=ref)
                    for ref in refs
                ],
                ignore_conflicts=True,
            )
        if conflict:
            Message.objects.filter(space_id=space_id, message_id=message_id).exclude(
                pk=message.pk
            ).update(message_id_conflict=True)
        _thread_record(message, thread_pk, merge)
    return IngestResult(message_pk=message.pk, created=True, parseable=parsed.parseable)


def _is_reply_subject(subject: str) -> bool:
    return subject.strip().lower().startswith(REPLY_PREFIXES)


def _thread_choose(message: Message, refs: list[str]) -> tuple[int, list[int], bool]:
    """The thread a message about to be stored joins, threads to merge into it,
    and whether another message of the space already has its Message-ID.

    A message joins the threads of the messages it refers to, of those that
    refer to it (replies that arrived first) and of siblings that share a
    reference with it (their parent never arrived); when those are several
    threads, they are merged into the oldest. With no link at all, a reply-like
    subject joins a recent thread of the same subject; otherwise a new thread
    starts. Runs inside the caller's transaction.
    """
    space_id = message.space_id
    own = message.message_id
    linked: set[int] = set()
    conflict = False
    wanted = [*refs, own] if own else refs
    if wanted:
        # The messages this one refers to, those that share a reference with
        # it or refer to it, and any that already carry its Message-ID (a
        # conflict, flagged; not a reason to join their thread). UNION ALL,
        # not OR: each half is served by its own index, where an OR of the
        # two makes PostgreSQL read every message of the space.
        by_id = Message.objects.filter(
            space_id=space_id, message_id__in=wanted
        ).values_list("message_id", "thread_id")
        by_reference = Message.objects.filter(
            pk__in=MessageReference.objects.filter(
                space_id=space_id, ref_id__in=wanted
            ).values("message_id")
        ).values_list("message_id", "thread_id")
        rows = by_id.union(by_reference, all=True)
        for message_id, thread_id in rows:
            if own and message_id == own:
                conflict = True
            elif thread_id is not None:
                linked.add(thread_id)
    normalized = normalize_subject(message.subject)[:255]
    if not linked and not refs and normalized and _is_reply_subject(message.subject):
        candidate = (
            Thread.objects.filter(
                space_id=space_id,
                normalized_subject=normalized,
                last_date__gte=message.date - SUBJECT_THREAD_WINDOW,
            )
            .order_by("-last_date")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate:
            linked.add(candidate)
    if not linked:
        thread = Thread.objects.create(
            space_id=space_id,
            subject=message.subject[:2000],
            normalized_subject=normalized,
            message_count=0,
        )
        return thread.pk, [], conflict
    ordered = sorted(linked)
    if len(ordered) > 1:
        # Lock in id order so that concurrent merges cannot deadlock.
        list(Thread.objects.select_for_update().filter(pk__in=ordered).order_by("pk"))
    return ordered[0], ordered[1:], conflict


_THREAD_COUNT_ONE_MORE = """
    UPDATE mailarchive_thread SET
        message_count = message_count + 1,
        subject = CASE WHEN first_date IS NULL OR first_date > %(date)s
            THEN %(subject)s ELSE subject END,
        normalized_subject = CASE WHEN first_date IS NULL OR first_date > %(date)s
            THEN %(normalized)s ELSE normalized_subject END,
        first_date = CASE WHEN first_date IS NULL OR first_date > %(date)s
            THEN %(date)s ELSE first_date END,
        last_date = CASE WHEN last_date IS NULL OR last_date < %(date)s
            THEN %(date)s ELSE last_date END
    WHERE id = %(thread)s
"""


def _thread_record(message: Message, thread_pk: int, merge: list[int]) -> None:
    """Count the stored message in its thread, merging ``merge`` into it first.

    Without a merge this is one UPDATE in plain SQL: it runs for every archived
    message, and building the same statement through the ORM's conditional
    expressions cost more than the database took to run it.
    """
    if merge:
        Message.objects.filter(thread_id__in=merge).update(thread_id=thread_pk)
        Thread.objects.filter(pk__in=merge).delete()
        thread_refresh(thread_pk)
        return
    subject = message.subject[:2000]
    with connection.cursor() as cursor:
        cursor.execute(
            _THREAD_COUNT_ONE_MORE,
            {
                "date": connection.ops.adapt_datetimefield_value(message.date),
                "subject": subject,
                "normalized": normalize_subject(subject)[:255],
                "thread": thread_pk,
            },
        )


def thread_refresh(thread_pk: int) -> None:
    """Recount a thread's messages and dates (trashed messages do not count).

    Safe to re-run. The thread's subject is that of its earliest message.
    """
    live = Message.objects.filter(thread_id=thread_pk, deleted_at__isnull=True)
    stats = live.aggregate(n=Count("pk"), first=Min("date"), last=Max("date"))
    first = live.order_by("date", "pk").values_list("subject", flat=True).first()
    updates = {
        "message_count": stats["n"],
        "first_date": stats["first"],
        "last_date": stats["last"],
    }
    if first is not None:
        updates["subject"] = first[:2000]
        updates["normalized_subject"] = normalize_subject(first)[:255]
    Thread.objects.filter(pk=thread_pk).update(**updates)


# Trash, restore and purge. Deleting moves messages to the space trash, where
# they vanish from lists, threads, search, feeds and exports; space admins
# restore them or purge them for good.

TRASH_BATCH = 1000
# Threads touched by one change above this many are recounted with one UPDATE
# each batch instead of one refresh each (the subject stays as it was).
THREAD_REFRESH_ONE_BY_ONE = 50


def _threads_recount(thread_ids: set[int]) -> None:
    """Bring message counts and dates of ``thread_ids`` up to date. Safe to re-run."""
    if len(thread_ids) <= THREAD_REFRESH_ONE_BY_ONE:
        for thread_pk in sorted(thread_ids):
            thread_refresh(thread_pk)
        return
    ids = sorted(thread_ids)
    for start in range(0, len(ids), TRASH_BATCH):
        batch = ids[start : start + TRASH_BATCH]
        live = Message.objects.filter(
            thread_id=OuterRef("pk"), deleted_at__isnull=True
        ).order_by()
        Thread.objects.filter(pk__in=batch).update(
            message_count=Coalesce(
                Subquery(
                    live.values("thread_id").annotate(n=Count("pk")).values("n")[:1]
                ),
                0,
            ),
            first_date=Subquery(
                live.values("thread_id").annotate(d=Min("date")).values("d")[:1]
            ),
            last_date=Subquery(
                live.values("thread_id").annotate(d=Max("date")).values("d")[:1]
            ),
        )


def _message_label(message: Message) -> dict[str, str]:
    return {"subject": message.subject[:200], "message_id": message.message_id}


@transaction.atomic(durable=True)
def message_trash(*, space: Space, message_pk: int, actor: AbstractBaseUser) -> bool:
    """Move one message of ``space`` to its trash; audit-logged.

    Returns False (and changes nothing) when the message is not in the space or
    already in the trash, so it is safe to re-run.
    """
    message = (
        Message.objects.select_for_update()
        .filter(space=space, pk=message_pk, deleted_at__isnull=True)
        .only("pk", "thread_id", "subject", "message_id")
        .first()
    )
    if message is None:
        return False
    Message.objects.filter(pk=message.pk).update(
        deleted_at=timezone.now(), deleted_by=actor
    )
    if message.thread_id:
        thread_refresh(message.thread_id)
    audit_record(
        actor=actor,
        action="mail.trash",
        space=space,
        target=f"message {message.pk}",
        detail=_message_label(message),
    )
    return True


def _pks_in(space: Space, message_pks: list[int] | None, trashed: bool) -> QuerySet:
    qs = Message.objects.filter(space=space, deleted_at__isnull=not trashed)
    return qs if message_pks is None else qs.filter(pk__in=message_pks)


@transaction.atomic(durable=True)
def messages_restore(
    *, space: Space, message_pks: list[int] | None, actor: AbstractBaseUser
) -> int:
    """Bring messages of ``space`` back from the trash; None restores all of it.

    Returns how many came back. Messages not in the trash are left alone, so it
    is safe to re-run.
    """
    selected = _pks_in(space, message_pks, trashed=True)
    pks = list(selected.values_list("pk", flat=True))
    if not pks:
        return 0
    thread_ids = set(
        Message.objects.filter(pk__in=pks, thread__isnull=False)
        .values_list("thread_id", flat=True)
        .distinct()
    )
    for start in range(0, len(pks), TRASH_BATCH):
        Message.objects.filter(pk__in=pks[start : start + TRASH_BATCH]).update(
            deleted_at=None, deleted_by=None
        )
    _threads_recount(thread_ids)
    audit_record(
        actor=actor,
        action="mail.restore",
        space=space,
        target="all trash" if message_pks is None else f"{len(pks)} messages",
        detail={"count": len(pks), "messages": pks[:TRASH_BATCH]},
    )
    return len(pks)


@transaction.atomic(durable=True)
def space_mail_trash_all(*, space: Space, actor: AbstractBaseUser) -> int:
    """Move every message of ``space`` to its trash ("Delete all mail").

    Returns how many moved; messages already in the trash stay as they were,
    so it is safe to re-run.
    """
    now = timezone.now()
    moved = Message.objects.filter(space=space, deleted_at__isnull=True).update(
        deleted_at=now, deleted_by=actor
    )
    if moved:
        Thread.objects.filter(space=space).update(
            message_count=0, first_date=None, last_date=None
        )
    audit_record(
        actor=actor,
        action="mail.trash_all",
        space=space,
        target=space.key,
        detail={"count": moved},
    )
    return moved


def messages_purge(
    *, space: Space, message_pks: list[int] | None, actor: AbstractBaseUser
) -> int:
    """Delete trashed messages of ``space`` for good; None empties the trash.

    Rows go in batches, each in its own transaction with its audit event.
    Stored raw messages and attachments are deleted after each commit, but
    only those no remaining row refers to (identical content is stored once
    and may belong to other messages, in any space). Messages not in the
    trash are never touched. Returns how many were purged; safe to re-run.
    """
    purged = 0
    requested = None if message_pks is None else sorted(set(message_pks))
    while True:
        with transaction.atomic(durable=True):
            if requested is None:
                batch = _pks_in(space, None, trashed=True)
            else:
                batch = _pks_in(space, requested[:TRASH_BATCH], trashed=True)
                requested = requested[TRASH_BATCH:]
            rows = list(
                batch.select_for_update()
                .order_by("pk")
                .values_list("pk", "thread_id", "raw_name")[:TRASH_BATCH]
            )
            if not rows and (requested is None or not requested):
                break
            pks = [pk for pk, _thread, _raw in rows]
            thread_ids = {thread for _pk, thread, _raw in rows if thread}
            names = {raw for _pk, _thread, raw in rows}
            names |= set(
                Attachment.objects.filter(message_id__in=pks).values_list(
                    "blob_name", flat=True
                )
            )
            MessageReference.objects.filter(message_id__in=pks).delete()
            Attachment.objects.filter(message_id__in=pks).delete()
            Message.objects.filter(pk__in=pks).delete()
            _threads_recount(thread_ids)
            if pks:
                audit_record(
                    actor=actor,
                    action="mail.purge",
                    space=space,
                    target=f"{len(pks)} messages",
                    detail={"count": len(pks), "messages": pks},
                )
            OrphanBlob.objects.bulk_create(
                [OrphanBlob(name=name) for name in sorted(names)],
                ignore_conflicts=True,
            )
            purged += len(pks)
    return purged


def orphan_blob_grace() -> timedelta:
    """How long a purged object waits: longer than any ingest transaction."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + timedelta(hours=1)


def orphan_blobs_collect(*, now: datetime | None = None) -> int:
    """Delete stored objects that purges left without rows, once it is safe.

    An object queued longer ago than the grace period is deleted when no row
    refers to it and it was not written since (an ingest that reuses identical
    bytes rewrites the object before it commits, and commits within the grace
    period). Returns how many objects were deleted. Safe to re-run.
    """
    now = now or timezone.now()
    cutoff = now - orphan_blob_grace()
    deleted = 0
    while True:
        batch = list(
            OrphanBlob.objects.filter(queued_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", "name")[:TRASH_BATCH]
        )
        if not batch:
            return deleted
        names = [name for _pk, name in batch]
        used = set(
            Message.objects.filter(raw_name__in=names).values_list(
                "raw_name", flat=True
            )
        )
        used |= set(
            Attachment.objects.filter(blob_name__in=names).values_list(
                "blob_name", flat=True
            )
        )
        for name in names:
            if name in used or not default_storage.exists(name):
                continue
            if default_storage.get_modified_time(name) >= cutoff:
                continue
            default_storage.delete(name)
            deleted += 1
        OrphanBlob.objects.filter(pk__in=[pk for pk, _name in batch]).delete()


@dataclass(frozen=True)
class NewFeedToken:
    """A feed token just made: the only time its plain text is known."""

    token: str
    record: FeedToken


@transaction.atomic(durable=True)
def feed_token_regenerate(*, user: AbstractBaseUser) -> NewFeedToken:
    """Give ``user`` a new feed token, revoking the old one and its URLs.

    Stores only the token's digest; the plain token is returned, to be shown
    once. Every call makes a new token; audit-logged.
    """
    token = secrets.token_urlsafe(32)
    record, _created = FeedToken.objects.update_or_create(
        user=user, defaults={"token_hash": feed_token_digest(token)}
    )
    audit_record(actor=user, action="feed.token.regenerate", target=str(user.pk))
    return NewFeedToken(token=token, record=record)


@transaction.atomic(durable=True)
def feed_token_revoke(*, user: AbstractBaseUser) -> bool:
    """Remove ``user``'s feed token; False when there was none. Safe to re-run."""
    deleted, _counts = FeedToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(actor=user, action="feed.token.revoke", target=str(user.pk))
    return bool(deleted)
