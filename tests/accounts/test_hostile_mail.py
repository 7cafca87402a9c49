"""A mailbox of good and crafted mail, polled from a real Dovecot.

Anyone can send mail to an archived address. Whatever a message does to the
parser, the poll archives every message exactly once and empties the server;
a message whose parse goes over its budget is kept raw and marked.
"""

from __future__ import annotations

import hashlib

import pytest

from accounts.models import PollRun
from accounts.services import mail_account_poll
from mailarchive.models import TOO_COMPLEX, Message
from mailarchive.services import index
from tests.accounts.conftest import archived_raws, source_messages


def crafted(subject: str, body: bytes, content_type: bytes = b"text/plain") -> bytes:
    return (
        b"From: mallory@example.net\r\nTo: sales@example.com\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Message-ID: <" + subject.replace(" ", ".").encode() + b"@example.net>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: "
        + content_type
        + b"\r\n\r\n"
        + body.rstrip(b"\r\n")
        + b"\r\n"
    )


def hostile_messages() -> list[bytes]:
    many_parts = b"".join(b"--b\r\n\r\n" for _ in range(20_000)) + b"--b--\r\n"
    return [
        crafted("many empty parts", many_parts, b'multipart/mixed; boundary="b"'),
        crafted(
            "repeated parameters",
            b"x\r\n",
            b"text/plain; " + b"; ".join(b"a=1" for _ in range(10_000)),
        ),
        crafted("unclosed tags", b"<b>" * 20_000 + b"text", b"text/html"),
        crafted("nested tags", b"<div>" * 20_000 + b"deep", b"text/html"),
        crafted("brackets", b"see http://example.com/" + b"(" * 20_000 + b"\r\n"),
        crafted("long address", b"x\r\n").replace(
            b"To: sales@example.com",
            b"To: " + b'"' + b'\\"' * 20_000 + b'" <sales@example.com>',
        ),
        crafted("endless parse", b"x\r\n").replace(
            b"MIME-Version", b"X-Parser-Test: loop\r\nMIME-Version"
        ),
        crafted("hungry parse", b"x\r\n").replace(
            b"MIME-Version", b"X-Parser-Test: grow\r\nMIME-Version"
        ),
        crafted("parser dies", b"x\r\n").replace(
            b"MIME-Version", b"X-Parser-Test: crash\r\nMIME-Version"
        ),
    ]


def digests(raws: list[bytes]) -> list[str]:
    return sorted(hashlib.sha256(raw).hexdigest() for raw in raws)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_crafted_mail_is_archived_with_the_good_and_never_blocks_the_poll(
    dovecot, mail_user, make_account, settings, monkeypatch, protocol
):
    """GIVEN a mailbox where crafted messages sit between good ones, three of
    them making the parser loop, eat memory or die
    WHEN the account is polled once
    THEN every message is archived exactly once, byte for byte, the server is
    empty, and the three are kept raw and marked too complex."""
    monkeypatch.setattr(index, "PARSE_TARGET", "tests.misbehaving_parser:parse")
    # Crafted mail parses in milliseconds; the limit leaves room for a machine
    # whose two cores are shared with a dozen other processes.
    settings.MAILARCHIVE_PARSE_TIME_LIMIT = 15.0
    settings.MAILARCHIVE_PARSE_MEMORY_LIMIT = 768 * 1024 * 1024
    good = source_messages(6, tag=f"good-{protocol}")
    bad = hostile_messages()
    source = [good[0], *bad[:4], good[1], good[2], *bad[4:], *good[3:]]
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, protocol)

    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)

    assert summary.status == PollRun.Status.OK, summary.error
    assert (summary.fetched, summary.left_on_server) == (len(source), 0)
    assert dovecot.message_count(mail_user.username) == 0
    assert digests(archived_raws(account.space)) == digests(source)
    messages = Message.objects.filter(space=account.space)
    assert not messages.filter(index_state=Message.IndexState.PENDING).exists()
    too_complex = sorted(
        m.raw_size for m in messages if TOO_COMPLEX in m.problems and not m.parseable
    )
    assert too_complex == sorted(len(raw) for raw in bad[-3:])
    subjects = set(messages.values_list("subject", flat=True))
    for raw in good + bad[:-3]:
        subject = raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
        assert subject in subjects


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_a_poll_outside_a_transaction_indexes_behind_the_secure_stage(
    dovecot, mail_user, make_account, monkeypatch, protocol
):
    """GIVEN batches of 5 and a poll that commits for real, so that a thread
    of its own indexes each batch while the next is fetched and secured
    THEN the poll returns with every message secured, deleted and indexed."""
    from accounts.services import polling

    monkeypatch.setattr(polling, "BATCH_MAX_COUNT", 5)
    source = source_messages(23, tag=f"behind-{protocol}")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, protocol)

    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)

    assert (summary.status, summary.fetched, summary.deleted) == ("ok", 23, 23)
    assert dovecot.message_count(mail_user.username) == 0
    assert digests(archived_raws(account.space)) == digests(source)
    messages = Message.objects.filter(space=account.space)
    assert set(messages.values_list("index_state", flat=True)) == {"indexed"}
    assert not messages.filter(thread__isnull=True).exists()


def _queued_tasks() -> int:
    from celery import current_app

    with current_app.connection_for_write() as conn:
        return conn.default_channel.queue_declare("celery", passive=True).message_count


@pytest.mark.django_db(transaction=True)
def test_fetchmail_no_wait_leaves_indexing_to_the_workers(
    dovecot, mail_user, make_account, monkeypatch
):
    """GIVEN ``fetchmail --no-wait`` WHEN it returns THEN the server is empty,
    every message is secured and waiting, one index task per batch is queued
    for the workers, and running those tasks indexes every message."""
    import io

    from celery import current_app
    from django.core.management import call_command

    from accounts.services import polling
    from mailarchive.tasks import messages_index_task

    monkeypatch.setattr(polling, "BATCH_MAX_COUNT", 4)
    source = source_messages(10, tag="no-wait")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")
    current_app.control.purge()

    call_command(
        "fetchmail", "--account", str(account.pk), "--no-wait", stdout=io.StringIO()
    )

    assert dovecot.message_count(mail_user.username) == 0
    messages = Message.objects.filter(space=account.space)
    assert set(messages.values_list("index_state", flat=True)) == {"pending"}
    assert _queued_tasks() == 3
    current_app.control.purge()
    for start in range(0, 10, 4):
        pks = list(messages.order_by("pk").values_list("pk", flat=True))
        messages_index_task(pks[start : start + 4])
    assert set(messages.values_list("index_state", flat=True)) == {"indexed"}
    assert digests(archived_raws(account.space)) == digests(source)
