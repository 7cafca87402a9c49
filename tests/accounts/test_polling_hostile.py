"""Polls and connection tests against servers that lie about sizes or dawdle.

Fakes (``tests.accounts.fake_servers``), because no real server misbehaves on
demand; the same poll against Dovecot is in ``test_polling``.
"""

from __future__ import annotations

import time

import pytest

from accounts.models import MailAccount, PollRun
from accounts.services import mail_account_create, mail_account_poll, polling
from accounts.services.mail_accounts import mail_account_test
from tests.accounts.conftest import archived_raws, make_message
from tests.accounts.fake_servers import (
    FakeMessage,
    Mailbox,
    imap_session,
    pop3_session,
)
from tests.factories import SpaceFactory

LIMIT = 1024 * 1024


@pytest.fixture
def hostile_settings(settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = ["127.0.0.1"]
    settings.MAILARCHIVE_FETCH_DISABLED = False
    settings.MAILARCHIVE_MAX_MESSAGE_BYTES = LIMIT
    settings.MAILARCHIVE_MAIL_TIMEOUT = 15.0
    return settings


def deletions(server) -> list[str]:
    """The commands that delete or flag for deletion, in order."""
    return [
        command
        for command in server.verbs()
        if command.startswith(("DELE ", "UID STORE ", "UID EXPUNGE "))
    ]


def account_on(server, protocol: str) -> MailAccount:
    return mail_account_create(
        space=SpaceFactory(),
        name=f"Fake {protocol}",
        protocol=protocol,
        host="127.0.0.1",
        port=server.port,
        username="archive",
        password="secret",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "options"),
    [("pop", {}), ("imap", {}), ("imap", {"ignore_partial": True})],
    ids=["pop3", "imap", "imap-ignoring-partial-fetch"],
)
def test_a_lying_message_is_reported_too_large_and_left_on_the_server(
    hostile_settings, fake_server, monkeypatch, protocol, options
):
    """GIVEN four messages, the second announced as 100 bytes but 200 MB long
    WHEN the account is polled one message per batch (so that the session is
    cut off and opened again in the middle of the poll)
    THEN the other three are archived and deleted, the liar is reported as too
    large and stays on the server: no DELE, STORE or EXPUNGE ever names it.
    """
    monkeypatch.setattr(polling, "BATCH_MAX_COUNT", 1)
    honest = [make_message(n, tag=f"hostile-{protocol}") for n in (1, 3, 4)]
    liar = FakeMessage(announced=100, streamed=200 * 1024 * 1024)
    mailbox = Mailbox(
        [FakeMessage(raw=honest[0]), liar, *(FakeMessage(raw=r) for r in honest[1:])]
    )
    session = pop3_session if protocol == "pop" else imap_session
    server = fake_server(session(mailbox, **options))
    account = account_on(server, protocol)

    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)

    assert summary.status == "ok", summary.error
    assert (summary.fetched, summary.deleted, summary.left_on_server) == (3, 3, 1)
    assert sorted(archived_raws(account.space)) == sorted(honest)
    assert mailbox.messages == [liar]
    account.refresh_from_db()
    [entry] = account.left_on_server
    assert entry["reason"] == "too_large"
    assert entry["size"] > LIMIT
    assert "1 stays on the server" in summary.line()
    if protocol == "pop":
        # The liar (number 2 throughout) is fetched ahead while the first
        # message is secured, so the session is cut off before that message's
        # DELE, which the new session sends.
        assert deletions(server) == ["DELE 1", "DELE 3", "DELE 4"]
    else:
        assert [c.split(" ")[2] for c in deletions(server)] == list("113344")
    assert server.message_bytes_sent < 40 * 1024 * 1024

    before = deletions(server)
    again = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)
    assert (again.status, again.fetched, again.left_on_server) == ("ok", 0, 1)
    assert mailbox.messages == [liar]
    assert deletions(server) == before


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["pop", "imap"])
def test_a_trickling_server_fails_the_poll_soon_with_a_sentence(
    hostile_settings, fake_server, protocol
):
    """GIVEN a server that sends its greeting four bytes a second
    WHEN polled with a one-second mail timeout
    THEN the poll fails after about a second (not a timeout per byte), with
    a sentence the admin can act on, and the account's health says so."""
    hostile_settings.MAILARCHIVE_MAIL_TIMEOUT = 1.0
    session = pop3_session if protocol == "pop" else imap_session
    server = fake_server(session(Mailbox([]), greeting_interval=0.25))
    account = account_on(server, protocol)

    started = time.monotonic()
    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)

    assert time.monotonic() - started < 5.0
    assert (summary.status, summary.error_kind) == ("failed", "deadline_exceeded")
    assert "answered too slowly" in summary.error
    assert "MAILARCHIVE_MAIL_TIMEOUT" in summary.error
    account.refresh_from_db()
    assert account.last_error_kind == "deadline_exceeded"


@pytest.mark.django_db
def test_a_poll_session_ends_before_the_poll_time_limit(hostile_settings, fake_server):
    """A server that keeps every read alive still cannot outlast the poll:
    its session ends MAILARCHIVE_POLL_TIME_LIMIT minus a margin after it began
    (here at least half the limit: 2 of 4 seconds)."""
    hostile_settings.MAILARCHIVE_POLL_TIME_LIMIT = 4
    hostile_settings.MAILARCHIVE_MAIL_TIMEOUT = 10.0
    # 21 bytes of greeting take about 6 s: within the per-command allowance
    # of the 10 s mail timeout, not within the session's 2 s.
    server = fake_server(pop3_session(Mailbox([]), greeting_interval=0.3))
    account = account_on(server, "pop")
    started = time.monotonic()
    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)
    assert time.monotonic() - started < 3.5
    assert summary.error_kind == "deadline_exceeded"
    assert "did not finish within 2 seconds" in summary.error


@pytest.mark.django_db
def test_connection_test_against_a_trickling_server_ends_in_time(
    hostile_settings, fake_server
):
    hostile_settings.MAILARCHIVE_MAIL_TIMEOUT = 1.5
    server = fake_server(imap_session(Mailbox([]), greeting_interval=0.2))
    account = account_on(server, "imap")
    started = time.monotonic()
    result = mail_account_test(account)
    assert time.monotonic() - started < 3.0
    assert (result.ok, result.kind) == (False, "deadline_exceeded")
    assert "answered too slowly" in result.sentence(account)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["pop", "imap"])
def test_a_server_that_trickles_a_later_message_fails_the_poll_with_its_kind(
    hostile_settings, fake_server, monkeypatch, protocol
):
    """GIVEN two messages, fetched one per batch, the second trickling in
    WHEN the account is polled with a one-second mail timeout
    THEN the first is archived, the poll fails with the kind the client met
    in the fetch thread (as if the poll had fetched itself), and both stay on
    the server (the first was to be deleted after the second was fetched);
    the next poll deletes the first and archives the second."""
    monkeypatch.setattr(polling, "BATCH_MAX_COUNT", 1)
    hostile_settings.MAILARCHIVE_MAIL_TIMEOUT = 1.0
    first = make_message(1, tag=f"trickle-{protocol}")
    slow = make_message(2, tag=f"trickle-{protocol}")
    mailbox = Mailbox([FakeMessage(raw=first), FakeMessage(raw=slow)])
    session = pop3_session if protocol == "pop" else imap_session
    server = fake_server(session(mailbox))
    account = account_on(server, protocol)
    # Only the second message trickles: the first is sent at full speed.
    trickling = {"count": 0}
    original = FakeMessage.chunks

    def chunks(self, limit=None):
        if self.raw == slow:
            trickling["count"] += 1
            for byte in b"".join(original(self, limit)):
                time.sleep(0.3)
                yield bytes([byte])
            return
        yield from original(self, limit)

    monkeypatch.setattr(FakeMessage, "chunks", chunks)

    summary = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)

    assert (summary.status, summary.error_kind) == ("failed", "deadline_exceeded")
    assert trickling["count"] >= 1
    assert archived_raws(account.space) == [first]
    assert [m.raw for m in mailbox.messages] == [first, slow]

    monkeypatch.setattr(FakeMessage, "chunks", original)
    again = mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)
    assert (again.status, again.fetched, again.deleted) == ("ok", 1, 2)
    assert sorted(archived_raws(account.space)) == sorted([first, slow])
    assert mailbox.messages == []
