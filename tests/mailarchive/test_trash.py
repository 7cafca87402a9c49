"""Trash: delete to trash, restore, purge (with shared stored objects), delete all."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from mailarchive.exports import messages_for_export
from mailarchive.feeds import feed_items
from mailarchive.models import Attachment, Message, OrphanBlob, Thread
from mailarchive.selectors import mail_list_page, thread_tree
from mailarchive.services import (
    message_trash,
    messages_purge,
    messages_restore,
    orphan_blob_grace,
    orphan_blobs_collect,
    space_mail_trash_all,
)
from mailarchive.storage import blob_put
from spaces.models import AuditEvent
from tests.conftest import client_for
from tests.factories import SpaceFactory
from tests.mailarchive.test_views import BASE, ingest, raw_message


@pytest.fixture
def thread(actors) -> list[Message]:
    root = ingest(actors.space, raw_message(subject="Topic", msgid="t0@x"))
    reply = ingest(
        actors.space,
        raw_message(
            subject="Re: Topic",
            msgid="t1@x",
            refs=("t0@x",),
            date=BASE + timedelta(hours=1),
            attachments=(("shared.txt", "text/plain", b"the same bytes"),),
        ),
    )
    return [root, reply]


def visible_everywhere(space, message: Message) -> dict[str, bool]:
    """Where a message shows up: list, thread, feed, export."""
    listed = {m.pk for m in mail_list_page(space, size=200).rows}
    thread = Thread.objects.get(pk=message.thread_id)
    in_thread = {r.message.pk for r in thread_tree(thread) if r.message}
    return {
        "list": message.pk in listed,
        "thread": message.pk in in_thread,
        "feed": message.pk in {m.pk for m in feed_items(space)},
        "export": messages_for_export(space).filter(pk=message.pk).exists(),
    }


@pytest.mark.django_db
def test_trash_hides_everywhere_and_restore_brings_back(actors, thread):
    """GIVEN a two-message thread WHEN the reply is trashed THEN it vanishes from
    the list, the thread, the feed and exports and the thread counts one; WHEN
    restored THEN everything is as before. Both are audited."""
    root, reply = thread
    space = actors.space
    assert all(visible_everywhere(space, reply).values())
    assert message_trash(space=space, message_pk=reply.pk, actor=actors.deleter)
    assert not any(visible_everywhere(space, reply).values())
    assert Thread.objects.get(pk=root.thread_id).message_count == 1
    reply.refresh_from_db()
    assert reply.deleted_by == actors.deleter and reply.deleted_at is not None
    assert not message_trash(space=space, message_pk=reply.pk, actor=actors.deleter)
    restored = messages_restore(space=space, message_pks=[reply.pk], actor=actors.admin)
    assert restored == 1
    assert all(visible_everywhere(space, reply).values())
    assert Thread.objects.get(pk=root.thread_id).message_count == 2
    events = list(
        AuditEvent.objects.filter(space=space)
        .order_by("pk")
        .values_list("action", "actor_name")
    )
    assert events == [("mail.trash", "deleter"), ("mail.restore", "spaceadmin")]


@pytest.mark.django_db
def test_trash_of_another_space_changes_nothing(actors, thread):
    other = SpaceFactory(key="OTHER")
    assert not message_trash(space=other, message_pk=thread[0].pk, actor=actors.admin)
    assert messages_purge(space=other, message_pks=None, actor=actors.admin) == 0
    assert Message.objects.filter(deleted_at__isnull=True).count() == 2


@pytest.mark.django_db
def test_purge_deletes_rows_and_later_only_unshared_stored_objects(actors, thread):
    """GIVEN a message whose raw bytes are also archived in another space and
    whose attachment is shared with a third message WHEN it is purged THEN its
    rows are gone at once, and once the grace period has passed the collector
    deletes of its stored objects only those no other row uses."""
    root, reply = thread
    space = actors.space
    copy_space = SpaceFactory(key="COPY")
    raw_of_reply = default_storage.open(reply.raw_name).read()
    ingest(copy_space, raw_of_reply)
    sharing = ingest(
        space,
        raw_message(
            subject="Also shared",
            msgid="s@x",
            attachments=(("again.txt", "text/plain", b"the same bytes"),),
        ),
    )
    message_trash(space=space, message_pk=reply.pk, actor=actors.deleter)
    message_trash(space=space, message_pk=root.pk, actor=actors.deleter)
    shared_blob = Attachment.objects.get(message=reply).blob_name
    assert Attachment.objects.get(message=sharing).blob_name == shared_blob
    purged = messages_purge(
        space=space, message_pks=[root.pk, reply.pk, sharing.pk], actor=actors.admin
    )
    assert purged == 2
    assert not Message.objects.filter(pk__in=[root.pk, reply.pk]).exists()
    assert Message.objects.filter(pk=sharing.pk).exists()
    assert orphan_blobs_collect() == 0  # within the grace period
    assert default_storage.exists(root.raw_name)
    assert orphan_blobs_collect(now=timezone.now() + orphan_blob_grace()) == 1
    assert not default_storage.exists(root.raw_name)
    assert default_storage.exists(reply.raw_name)
    assert default_storage.exists(shared_blob)
    assert not OrphanBlob.objects.exists()
    event = AuditEvent.objects.get(action="mail.purge")
    assert event.detail["count"] == 2


@pytest.mark.django_db
def test_ingest_during_purge_keeps_reused_bytes(actors, thread):
    """GIVEN a purged message whose bytes wait for collection WHEN the same
    bytes are archived again (another space) just before the collector runs
    THEN the collector keeps them, whether or not the ingest has committed."""
    root, _reply = thread
    raw = default_storage.open(root.raw_name).read()
    message_trash(space=actors.space, message_pk=root.pk, actor=actors.deleter)
    messages_purge(space=actors.space, message_pks=[root.pk], actor=actors.admin)
    # The collector runs a grace period after a moment just before the rewrite
    # (file times are coarser than the clock, hence the second).
    later = timezone.now() - timedelta(seconds=1) + orphan_blob_grace()
    # The ingest rewrites the object (marks it in use) before its commit; the
    # collector runs in between and must not delete it.
    blob_put("raw", raw)
    assert orphan_blobs_collect(now=later) == 0
    assert default_storage.exists(root.raw_name)
    copy = ingest(SpaceFactory(key="AGAIN"), raw)
    assert default_storage.open(copy.raw_name).read() == raw


@pytest.mark.django_db
def test_delete_all_confirms_with_name_and_count_then_trashes_everything(
    actors, thread
):
    client = client_for(actors, "admin")
    address = reverse("mailarchive:delete-all", kwargs={"key": "SALES"})
    page = client.get(address).content.decode()
    assert "Sales" in page and "SALES" in page and "2 messages" in page
    wrong = client.post(address, {"confirm_key": "SALE"})
    assert wrong.status_code == 200
    assert Message.objects.filter(deleted_at__isnull=True).count() == 2
    right = client.post(address, {"confirm_key": "SALES"})
    assert right.status_code == 302
    assert Message.objects.filter(deleted_at__isnull=True).count() == 0
    assert Thread.objects.get(pk=thread[0].thread_id).message_count == 0
    assert AuditEvent.objects.get(action="mail.trash_all").detail == {"count": 2}
    assert space_mail_trash_all(space=actors.space, actor=actors.admin) == 0


@pytest.mark.django_db
def test_trash_page_restores_and_empties(
    actors, thread, django_capture_on_commit_callbacks
):
    root, reply = thread
    client = client_for(actors, "admin")
    for message in thread:
        client_for(actors, "deleter").post(
            reverse(
                "mailarchive:message-delete",
                kwargs={"key": "SALES", "message_pk": message.pk},
            )
        )
    trash = client.get(reverse("mailarchive:trash", kwargs={"key": "SALES"}))
    assert [m.pk for m in trash.context["page"].rows] == [reply.pk, root.pk]
    action = reverse("mailarchive:trash-action", kwargs={"key": "SALES"})
    none_ticked = client.post(action, {"action": "restore"}, follow=True)
    assert "Tick the messages first." in none_ticked.content.decode()
    client.post(action, {"action": "restore", "messages": [root.pk]})
    assert Message.objects.get(pk=root.pk).deleted_at is None
    with django_capture_on_commit_callbacks(execute=True):
        client.post(action, {"action": "empty"})
    assert list(Message.objects.values_list("pk", flat=True)) == [root.pk]
    client.post(action, {"action": "restore_all"})
    assert Message.objects.get(pk=root.pk).deleted_at is None


@pytest.mark.django_db
def test_many_threads_are_recounted_in_bulk(actors):
    messages = [
        ingest(
            actors.space,
            raw_message(subject=f"Own thread {n}", msgid=f"own{n}@x"),
        )
        for n in range(60)
    ]
    space_mail_trash_all(space=actors.space, actor=actors.admin)
    assert set(Thread.objects.values_list("message_count", flat=True)) == {0}
    assert (
        messages_restore(space=actors.space, message_pks=None, actor=actors.admin) == 60
    )
    counts = Thread.objects.filter(messages__in=messages).values_list(
        "message_count", "first_date"
    )
    assert {c for c, _d in counts} == {1}
    assert all(d is not None for _c, d in counts)
