"""Threads: which conversation a message joins, and keeping counts right."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Count, Max, Min

from ..models import Message, MessageReference, Thread
from ..threading import normalize_subject

# A subject-only match joins an existing thread only when that thread was
# active this recently: "Re: Hello" a year later is a new conversation.
SUBJECT_THREAD_WINDOW = timedelta(days=60)
REPLY_PREFIXES = ("re:", "re[", "aw:", "sv:", "vs:", "antw:", "返信:", "答复:", "回复:")


def _is_reply_subject(subject: str) -> bool:
    return subject.strip().lower().startswith(REPLY_PREFIXES)


def thread_choose(message: Message, refs: list[str]) -> tuple[int, list[int], bool]:
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


def thread_record(message: Message, thread_pk: int, merge: list[int]) -> None:
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
