"""What the archive keeps in a space, counted and removed when it is deleted."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from spaces.contents import SpaceContents
from spaces.models import Space

from ..models import ImportJob, Message, MessageReference, Thread
from .trash import TRASH_BATCH, messages_delete_rows


def space_archive_count(space: Space) -> dict[str, int]:
    """How many messages (the trash included) ``space`` holds."""
    return {"messages": Message.objects.filter(space=space).count()}


def space_archive_delete_batch(space: Space, actor: AbstractBaseUser | None) -> int:
    """Delete one batch of ``space``'s messages for good, in one transaction.

    Their stored objects are queued as orphans in the same transaction. Once
    no message is left, its threads, references and imports go (0 is
    returned). Safe to re-run after a crash at any point.
    """
    with transaction.atomic(durable=True):
        rows = list(
            Message.objects.select_for_update()
            .filter(space=space)
            .order_by("pk")
            .values_list("pk", "raw_name")[:TRASH_BATCH]
        )
        if rows:
            messages_delete_rows(
                pks=[pk for pk, _raw in rows], raw_names={raw for _pk, raw in rows}
            )
            return len(rows)
        MessageReference.objects.filter(space=space).delete()
        Thread.objects.filter(space=space).delete()
        ImportJob.objects.filter(space=space).delete()
        return 0


ARCHIVE_CONTENTS = SpaceContents(
    order=20, count=space_archive_count, delete_batch=space_archive_delete_batch
)
