"""IMAP specifics: UIDVALIDITY ids, unread state, folders, exact expunge."""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Iterator

import pytest
from imapclient import DELETED, SEEN, IMAPClient

from accounts.clients import IMAPMailClient, MailClient, open_client
from accounts.clients.imap import FETCH_MAX_MESSAGES
from tests.accounts.clients.conftest import MakeSettings, as_transmitted
from tests.dovecot import DovecotServer, DovecotUnavailableError, MailUser


def imap_client(opened: MailClient) -> IMAPMailClient:
    assert isinstance(opened, IMAPMailClient)
    return opened


def direct_session(dovecot: DovecotServer, user: MailUser) -> IMAPClient:
    """A plain imapclient session, to look at the mailbox from the side."""
    context = ssl.create_default_context(cafile=dovecot.ca_file)
    client = IMAPClient(dovecot.host, dovecot.imaps_port, ssl_context=context)
    client.login(user.username, user.password)
    client.select_folder("INBOX")
    return client


def test_ids_carry_the_uidvalidity(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    dovecot.deliver_many(
        mail_user.username, [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    )
    with open_client(make_settings("imaps")) as opened:
        client = imap_client(opened)
        ids = [item.server_id for item in client.list_messages()]
    uidvalidity = dovecot.uidvalidity(mail_user.username)
    assert client.uidvalidity == uidvalidity
    assert ids == [f"{uidvalidity}:1", f"{uidvalidity}:2"]


def test_fetch_leaves_messages_unread(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    dovecot.deliver(mail_user.username, b"Subject: unread\n\nbody\n")
    with open_client(make_settings("imaps")) as client:
        assert len(list(client.fetch([i.server_id for i in client.list_messages()])))
    with direct_session(dovecot, mail_user) as side:
        flags = side.get_flags(side.search("ALL"))
    assert all(SEEN not in message_flags for message_flags in flags.values())


def test_uidvalidity_change_gives_new_ids_and_ignores_old_ones(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    corpus_messages: list[bytes],
) -> None:
    """GIVEN ids listed before the server rebuilt the mailbox
    WHEN the mailbox gets a new UIDVALIDITY
    THEN the old ids fetch and delete nothing, and the same messages are
    listed under new ids."""
    dovecot.deliver_many(mail_user.username, corpus_messages[:5])
    settings = make_settings("imap", starttls=True)
    with open_client(settings) as opened:
        old_validity = imap_client(opened).uidvalidity
        old_ids = [item.server_id for item in opened.list_messages()]

    dovecot.recreate_mailbox(mail_user.username)

    with open_client(settings) as opened:
        client = imap_client(opened)
        assert client.uidvalidity != old_validity
        assert list(client.fetch(old_ids)) == []
        client.delete(old_ids)
        new_ids = [item.server_id for item in client.list_messages()]
        raws = sorted(message.raw for message in client.fetch(new_ids))
    assert len(new_ids) == 5
    assert not set(new_ids) & set(old_ids)
    assert raws == sorted(as_transmitted(raw, "imap") for raw in corpus_messages[:5])
    assert dovecot.message_count(mail_user.username) == 5


def test_other_folder(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    folder = "Archiv/Entwürfe"
    dovecot.create_folder(mail_user.username, "Archiv")
    dovecot.create_folder(mail_user.username, folder)
    dovecot.deliver(mail_user.username, b"Subject: here\n\nx\n", folder=folder)
    dovecot.deliver(mail_user.username, b"Subject: inbox\n\ny\n")
    with open_client(make_settings("imaps", folder=folder)) as client:
        ids = [item.server_id for item in client.list_messages()]
        assert [m.raw for m in client.fetch(ids)] == [b"Subject: here\r\n\r\nx\r\n"]
        client.delete(ids)
    assert dovecot.message_count(mail_user.username, folder) == 0
    assert dovecot.message_count(mail_user.username) == 1


def test_many_messages_are_fetched_over_several_commands(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    count = FETCH_MAX_MESSAGES * 2 + 3
    raws = [f"Subject: {n}\n\nmessage {n}\n".encode() for n in range(count)]
    dovecot.deliver_many(mail_user.username, raws)
    with open_client(make_settings("imaps")) as client:
        ids = [item.server_id for item in client.list_messages()]
        fetched = list(client.fetch(list(reversed(ids))))
    assert [m.server_id for m in fetched] == list(reversed(ids))
    assert sorted(m.raw for m in fetched) == sorted(
        as_transmitted(r, "imap") for r in raws
    )


def test_malformed_id_is_a_programming_error(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    with open_client(make_settings("imaps")) as client:
        with pytest.raises(ValueError, match="not an IMAP server id"):
            list(client.fetch(["42"]))
        with pytest.raises(ValueError, match="not an IMAP server id"):
            client.delete(["abc:1"])


def _flag_as_deleted_elsewhere(dovecot: DovecotServer, user: MailUser) -> int:
    """Flag the last message \\Deleted from another session; return its UID."""
    with direct_session(dovecot, user) as side:
        uid = max(side.search("ALL"))
        side.add_flags([uid], [DELETED])
    return uid


def test_expunges_only_named_messages(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    """GIVEN a message someone else flagged \\Deleted but did not expunge
    WHEN the archive deletes another message
    THEN the flagged message stays (UID EXPUNGE names exact UIDs)."""
    raws = [b"Subject: a\n\na\n", b"Subject: b\n\nb\n", b"Subject: c\n\nc\n"]
    dovecot.deliver_many(mail_user.username, raws)
    flagged = _flag_as_deleted_elsewhere(dovecot, mail_user)
    with open_client(make_settings("imaps")) as client:
        first = client.list_messages()[0].server_id
        client.delete([first])
    with direct_session(dovecot, mail_user) as side:
        remaining = side.search("ALL")
        assert DELETED in side.get_flags([flagged])[flagged]
    assert len(remaining) == 2
    assert flagged in remaining


@pytest.fixture(scope="module")
def dovecot_without_uidplus() -> Iterator[DovecotServer]:
    """A second Dovecot, running beside the session one, without UIDPLUS."""
    server = DovecotServer(imap_capability="IMAP4rev1 IDLE NAMESPACE")
    try:
        server.start()
    except DovecotUnavailableError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def test_without_uidplus_others_deleted_flags_survive(
    dovecot_without_uidplus: DovecotServer, make_settings: MakeSettings
) -> None:
    """GIVEN a server without UIDPLUS, where EXPUNGE removes every \\Deleted
    message, and a message someone else flagged \\Deleted
    WHEN the archive deletes another message
    THEN only that message goes and the other keeps its \\Deleted flag."""
    server = dovecot_without_uidplus
    user = MailUser(f"user{secrets.token_hex(6)}", secrets.token_urlsafe(12))
    server.add_user(user.username, user.password)
    server.deliver_many(
        user.username,
        [b"Subject: a\n\na\n", b"Subject: b\n\nb\n", b"Subject: c\n\nc\n"],
    )
    flagged = _flag_as_deleted_elsewhere(server, user)
    with direct_session(server, user) as side:
        assert not side.has_capability("UIDPLUS")
    settings = make_settings(
        "imaps",
        port=server.imaps_port,
        username=user.username,
        password=user.password,
        ca_file=server.ca_file,
    )
    with open_client(settings) as client:
        first = client.list_messages()[0].server_id
        client.delete([first])
    with direct_session(server, user) as side:
        remaining = side.search("ALL")
        assert DELETED in side.get_flags([flagged])[flagged]
    assert len(remaining) == 2
    assert flagged in remaining


def test_responses_are_not_formatted_for_a_trace_nobody_reads(
    dovecot: DovecotServer, mail_user: MailUser, make_settings: MakeSettings
) -> None:
    """imaplib's trace would format every literal, a whole message, before the
    logger drops it; it is on only while its logger records debug lines."""
    dovecot.deliver(mail_user.username, b"Subject: traced\n\nbody\n")
    trace = logging.getLogger("imapclient.imaplib")
    with open_client(make_settings("imaps")) as opened:
        client = imap_client(opened)
        assert client._connection._imap.debug == 0
        assert len(list(client.fetch([i.server_id for i in client.list_messages()])))
    previous = trace.level
    trace.setLevel(logging.DEBUG)
    try:
        with open_client(make_settings("imaps")) as opened:
            assert imap_client(opened)._connection._imap.debug == 5
    finally:
        trace.setLevel(previous)
