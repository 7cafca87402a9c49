"""A mailbox of mail carrying hostile files, polled from a real Dovecot.

Reading an attachment's text happens in the index stage, after the message
is secured, in a process that is killed when over its budget: whatever a file
does to its reader, the poll archives every message once, empties the server
and records why each file could not be read.
"""

from __future__ import annotations

import hashlib

import pytest

from accounts.models import PollRun
from accounts.services import mail_account_poll
from mailarchive.models import Attachment, AttachmentText, Message
from mailarchive.services import attachment_text
from tests.accounts.conftest import archived_raws, source_messages
from tests.mailarchive import documents
from tests.mailarchive.test_attachment_text import MISBEHAVING, hostile_documents


def digests(raws: list[bytes]) -> list[str]:
    return sorted(hashlib.sha256(raw).hexdigest() for raw in raws)


@pytest.mark.django_db
def test_hostile_attachments_never_block_the_poll(
    dovecot, mail_user, make_account, settings, monkeypatch
):
    """GIVEN a mailbox where messages with hostile files sit between good ones
    WHEN the account is polled once over IMAPS
    THEN every message is archived exactly once, byte for byte, and indexed,
    the server is empty, and each hostile file has its failure recorded."""
    monkeypatch.setattr(attachment_text, "EXTRACT_TARGET_IN_USE", MISBEHAVING)
    settings.MAILARCHIVE_EXTRACT_TIME_LIMIT = 3.0
    settings.MAILARCHIVE_EXTRACT_MEMORY_LIMIT = 768 * 1024 * 1024
    hostile = hostile_documents()
    bad = [
        documents.message_with([document], subject=f"Hostile file {number}")
        for number, (document, _status, _reason) in enumerate(hostile)
    ]
    good = source_messages(4, tag="attachments")
    good.append(
        documents.message_with([documents.docx("marmoset")], subject="Good file")
    )
    source = [good[0], *bad[:4], good[1], *bad[4:], *good[2:]]
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")

    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)

    assert summary.status == PollRun.Status.OK, summary.error
    assert (summary.fetched, summary.left_on_server) == (len(source), 0)
    assert dovecot.message_count(mail_user.username) == 0
    assert digests(archived_raws(account.space)) == digests(source)
    messages = Message.objects.filter(space=account.space)
    assert not messages.exclude(index_state=Message.IndexState.INDEXED).exists()
    for number, (document, status, reasons) in enumerate(hostile):
        part = Attachment.objects.get(
            message__space=account.space, message__subject=f"Hostile file {number}"
        )
        record = AttachmentText.objects.get(sha256=part.sha256)
        assert record.status == status, document.filename
        assert record.reason in reasons, document.filename
    good_file = Attachment.objects.get(filename="contract.docx")
    assert "marmoset" in AttachmentText.objects.get(sha256=good_file.sha256).text
