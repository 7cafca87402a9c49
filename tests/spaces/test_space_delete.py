"""Deleting a space: everything in it goes, its stored objects are released,
and a deletion stopped half-way is finished by running it again."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import FetchedMessage, MailAccount, PollRun
from mailarchive.models import (
    Attachment,
    ImportJob,
    Message,
    MessageReference,
    OrphanBlob,
    Thread,
)
from mailarchive.services import orphan_blob_grace, orphan_blobs_collect
from mailarchive.services import trash as trash_services
from spaces import contents as spaces_contents
from spaces.models import AuditEvent, Space, SpacePermission
from spaces.selectors import space_contents_count
from spaces.services import space_delete, space_update
from tests.factories import SpaceFactory
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = pytest.mark.django_db

SHARED_FILE = ("shared.pdf", "application/pdf", b"%PDF-1.4 the same bytes in both")


def _on_disk(name: str) -> bool:
    return Path(default_storage.path(name)).exists()


@pytest.fixture
def full_space(actors):
    """The SALES space with a thread, files, a mail account with ledger and
    history, an import and grants; and a second space sharing one raw message
    and one attachment with it."""
    space = actors.space
    root = ingest(space, raw_message(subject="Plans", msgid="root@x"))
    reply = ingest(
        space,
        raw_message(
            subject="Re: Plans",
            msgid="reply@x",
            refs=("root@x",),
            attachments=(("own.txt", "text/plain", b"only in sales"), SHARED_FILE),
        ),
    )
    shared_raw = raw_message(subject="Both", msgid="both@x")
    both = ingest(space, shared_raw)
    account = MailAccount.objects.create(
        space=space,
        name="conf-sales",
        protocol="imaps",
        host="mail.example.com",
        port=993,
        username="conf-sales",
    )
    FetchedMessage.objects.create(
        account=account, server_id="1:1", message=root, raw_sha256=root.raw_sha256
    )
    PollRun.objects.create(account=account, trigger="schedule", status="ok")
    ImportJob.objects.create(space=space, origin="command", file_name="a.mbox")
    other = SpaceFactory(key="OTHER", name="Other")
    other_both = ingest(other, shared_raw)
    other_file = ingest(
        other,
        raw_message(subject="Theirs", msgid="theirs@x", attachments=(SHARED_FILE,)),
    )
    return {
        "space": space,
        "messages": [root, reply, both],
        "other": other,
        "other_messages": [other_both, other_file],
    }


def _stored_names(messages: list[Message]) -> set[str]:
    names = {m.raw_name for m in messages}
    names |= set(
        Attachment.objects.filter(message__in=messages).values_list(
            "blob_name", flat=True
        )
    )
    return names


def test_counts_say_what_will_go(full_space):
    assert space_contents_count(full_space["space"]) == {
        "messages": 3,
        "mail_accounts": 1,
    }


def test_delete_removes_everything_and_releases_only_unshared_objects(
    actors, full_space
):
    """GIVEN a space whose messages share a raw message and a file with another
    space WHEN it is deleted and the orphan collector runs past its grace
    period THEN every row of the space is gone, the files only it used are
    gone from the data directory, and the shared ones are still there."""
    space = full_space["space"]
    ours = _stored_names(full_space["messages"])
    theirs = _stored_names(full_space["other_messages"])
    assert ours & theirs  # the raw message and the file are stored once
    assert all(_on_disk(name) for name in ours | theirs)

    assert space_delete(space=space, actor=actors.site_admin) is True

    assert not Space.objects.filter(pk=space.pk).exists()
    for model in (Message, Thread, MessageReference, ImportJob, MailAccount):
        assert not model.objects.filter(space_id=space.pk).exists(), model
    assert not SpacePermission.objects.filter(space_id=space.pk).exists()
    assert not FetchedMessage.objects.exists()
    assert not PollRun.objects.exists()
    assert not Attachment.objects.filter(
        message_id__in=[m.pk for m in full_space["messages"]]
    ).exists()
    assert set(OrphanBlob.objects.values_list("name", flat=True)) == ours

    orphan_blobs_collect(now=timezone.now() + orphan_blob_grace())
    assert not any(_on_disk(name) for name in ours - theirs)
    assert all(_on_disk(name) for name in theirs)
    assert Message.objects.filter(space=full_space["other"]).count() == 2

    actions = list(
        AuditEvent.objects.filter(space_id=space.pk)
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == ["space.delete", "mail_account.delete", "space.delete.done"]
    started = AuditEvent.objects.get(action="space.delete")
    assert started.actor_name == "root"
    assert started.detail == {"name": "Sales", "messages": 3, "mail_accounts": 1}


def test_delete_of_a_space_already_gone_is_no_error(actors, full_space):
    space = full_space["space"]
    assert space_delete(space=space, actor=actors.site_admin)
    assert space_delete(space=space, actor=actors.site_admin) is False


def test_a_deletion_killed_half_way_is_finished_by_running_it_again(
    actors, full_space, monkeypatch
):
    """GIVEN a deletion that works in batches of one message WHEN the process
    dies after the first batch committed THEN the space is still there with
    the rest, nothing of the first message is left half-deleted, and running
    the deletion again removes everything and releases every object."""
    space = full_space["space"]
    ours = _stored_names(full_space["messages"])
    monkeypatch.setattr(
        "mailarchive.services.space_contents.TRASH_BATCH", 1, raising=True
    )
    real = trash_services.messages_delete_rows
    calls = {"n": 0}

    def dies_on_the_second_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("killed")
        return real(**kwargs)

    monkeypatch.setattr(
        "mailarchive.services.space_contents.messages_delete_rows",
        dies_on_the_second_batch,
    )
    with pytest.raises(SystemExit):
        space_delete(space=space, actor=actors.site_admin)
    assert Space.objects.filter(pk=space.pk).exists()
    assert not MailAccount.objects.filter(space=space).exists()
    left = list(Message.objects.filter(space=space))
    assert len(left) == 2
    gone = next(m for m in full_space["messages"] if m not in left)
    assert not Attachment.objects.filter(message_id=gone.pk).exists()
    assert OrphanBlob.objects.filter(name=gone.raw_name).exists()

    monkeypatch.setattr(
        "mailarchive.services.space_contents.messages_delete_rows", real
    )
    assert space_delete(space=space, actor=actors.site_admin) is True
    assert not Space.objects.filter(pk=space.pk).exists()
    assert not Message.objects.filter(space_id=space.pk).exists()
    assert set(OrphanBlob.objects.values_list("name", flat=True)) == ours
    assert AuditEvent.objects.filter(action="space.delete").count() == 2
    assert AuditEvent.objects.filter(action="space.delete.done").count() == 1


def test_protect_stops_an_orm_cascade(full_space):
    """Deleting a space or a message with the ORM, as the Django admin or a
    shell would, is refused: it would leave the stored objects behind."""
    space = full_space["space"]
    with pytest.raises(ProtectedError):
        Space.objects.get(pk=space.pk).delete()
    with_files = full_space["messages"][1]
    with pytest.raises(ProtectedError):
        Message.objects.get(pk=with_files.pk).delete()
    assert Message.objects.filter(space=space).count() == 3
    assert Attachment.objects.filter(message=with_files).count() == 2


def test_update_changes_name_description_and_access_audited(actors):
    space = actors.space
    space_update(
        space=space,
        name=" Sales team ",
        description="Mail of sales@",
        allow_anonymous=True,
        actor=actors.admin,
    )
    space.refresh_from_db()
    assert (space.name, space.description, space.allow_anonymous) == (
        "Sales team",
        "Mail of sales@",
        True,
    )
    event = AuditEvent.objects.get(action="space.update")
    assert event.actor_name == "spaceadmin"
    assert event.detail["name"] == {"from": "Sales", "to": "Sales team"}
    assert event.detail["allow_anonymous"] == {"from": False, "to": True}
    # Unchanged: nothing saved, nothing logged again.
    space_update(
        space=space,
        name="Sales team",
        description="Mail of sales@",
        allow_anonymous=True,
        actor=actors.admin,
    )
    assert AuditEvent.objects.filter(action="space.update").count() == 1


def test_mail_that_arrives_during_the_deletion_goes_too(
    actors, full_space, monkeypatch
):
    """GIVEN an import that stores one more message just as the deletion has
    emptied the space WHEN the deletion comes to remove the space THEN it
    goes round again, and that message and its stored object go too."""
    space = full_space["space"]
    archive = spaces_contents._registry["mailarchive"]
    late = {}

    def delete_batch(target, actor):
        removed = archive.delete_batch(target, actor)
        if not removed and not late:
            late["message"] = ingest(target, raw_message(subject="Late", msgid="l@x"))
        return removed

    monkeypatch.setitem(
        spaces_contents._registry,
        "mailarchive",
        dataclasses.replace(archive, delete_batch=delete_batch),
    )
    assert space_delete(space=space, actor=actors.site_admin)
    assert not Space.objects.filter(pk=space.pk).exists()
    assert not Message.objects.filter(pk=late["message"].pk).exists()
    assert OrphanBlob.objects.filter(name=late["message"].raw_name).exists()
