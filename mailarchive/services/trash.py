"""Trash, restore and purge.

Deleting moves messages to the space trash, where they vanish from lists,
threads, search, feeds and exports; space admins restore them or purge them
for good.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from spaces.models import Space
from spaces.services import audit_record

from ..models import Attachment, Message, MessageReference, OrphanBlob, Thread
from .attachment_text import attachment_texts_forget
from .threads import thread_refresh

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


# How long after removing a message its remover may take it back without
# being a space admin: long enough to notice a wrong click.
UNDO_WINDOW = timedelta(minutes=15)


@transaction.atomic(durable=True)
def message_trash_undo(
    *, space: Space, message_pk: int, actor: AbstractBaseUser
) -> bool:
    """Take back ``actor``'s own removal of one message, within UNDO_WINDOW.

    For people who may remove mail but not open the trash. Returns False (and
    changes nothing) when the message is not in the trash, was removed by
    someone else or too long ago, so it is safe to re-run; audit-logged.
    """
    pks = list(
        Message.objects.select_for_update()
        .filter(
            space=space,
            pk=message_pk,
            deleted_by=actor,
            deleted_at__gte=timezone.now() - UNDO_WINDOW,
        )
        .values_list("pk", flat=True)
    )
    if not pks:
        return False
    thread_ids = set(
        Message.objects.filter(pk__in=pks, thread__isnull=False).values_list(
            "thread_id", flat=True
        )
    )
    Message.objects.filter(pk__in=pks).update(deleted_at=None, deleted_by=None)
    _threads_recount(thread_ids)
    audit_record(
        actor=actor,
        action="mail.undo-trash",
        space=space,
        target=f"message {message_pk}",
        detail={"messages": pks},
    )
    return True


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
            messages_delete_rows(pks=pks, raw_names={raw for _pk, _t, raw in rows})
            _threads_recount(thread_ids)
            if pks:
                audit_record(
                    actor=actor,
                    action="mail.purge",
                    space=space,
                    target=f"{len(pks)} messages",
                    detail={"count": len(pks), "messages": pks},
                )
            purged += len(pks)
    return purged


def messages_delete_rows(*, pks: list[int], raw_names: set[str]) -> None:
    """Delete messages ``pks`` for good, with their attachments and references.

    ``raw_names`` are the messages' stored raw objects. They and the
    attachments' stored files are queued as orphaned objects, which are
    deleted once no row refers to them (identical content is stored once and
    may belong to other messages, in any space). Call it inside the
    transaction that chose the rows; threads are left to the caller.
    """
    contents = list(
        Attachment.objects.filter(message_id__in=pks).values_list("blob_name", "sha256")
    )
    names = raw_names | {name for name, _sha in contents}
    MessageReference.objects.filter(message_id__in=pks).delete()
    Attachment.objects.filter(message_id__in=pks).delete()
    Message.objects.filter(pk__in=pks).delete()
    # The text read from a file goes with the last copy of the file.
    attachment_texts_forget(sha256s={sha for _name, sha in contents})
    OrphanBlob.objects.bulk_create(
        [OrphanBlob(name=name) for name in sorted(names)],
        ignore_conflicts=True,
    )
