"""List, fetch and delete against the real Dovecot over every protocol variant."""

from __future__ import annotations

import secrets
import time

import pytest

from accounts.clients import (
    ErrorKind,
    IMAPMailClient,
    MailClient,
    MailClientError,
    POP3Client,
    ServerListing,
    open_client,
)
from tests.accounts.clients.conftest import VARIANTS, MakeSettings, as_transmitted
from tests.dovecot import DovecotServer, MailUser

variant_ids = list(VARIANTS)


@pytest.fixture(params=variant_ids)
def variant(request: pytest.FixtureRequest) -> tuple[str, bool]:
    return VARIANTS[request.param]


def test_logs_in_over_imaps_verifying_the_fixture_ca(
    make_settings: MakeSettings,
) -> None:
    with open_client(make_settings("imaps")) as client:
        assert isinstance(client, IMAPMailClient)
        assert client.message_count() == 0


def test_logs_in_over_pop3s_verifying_the_fixture_ca(
    make_settings: MakeSettings,
) -> None:
    with open_client(make_settings("pops")) as client:
        assert isinstance(client, POP3Client)
        assert client.message_count() == 0


def test_host_name_that_resolves_to_several_addresses(
    make_settings: MakeSettings,
) -> None:
    """GIVEN 'localhost' (which may resolve to ::1, where nothing listens, first)
    THEN the client still reaches the server and verifies the name 'localhost'."""
    settings = make_settings("imaps", host="localhost", allowed_hosts=("localhost",))
    with open_client(settings) as client:
        assert client.message_count() == 0


def test_empty_mailbox_lists_nothing(
    make_settings: MakeSettings, variant: tuple[str, bool]
) -> None:
    protocol, starttls = variant
    with open_client(make_settings(protocol, starttls=starttls)) as client:
        assert client.list_messages() == []
        assert list(client.fetch([])) == []
        client.delete([])


def test_list_fetch_delete_round_trip(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    corpus_messages: list[bytes],
    variant: tuple[str, bool],
) -> None:
    """GIVEN the corpus in the INBOX
    WHEN every message is listed and fetched
    THEN each arrives byte for byte as transmitted (CRLF), and deleting some
    removes exactly those."""
    protocol, starttls = variant
    dovecot.deliver_many(mail_user.username, corpus_messages)
    settings = make_settings(protocol, starttls=starttls)

    with open_client(settings) as client:
        assert client.message_count() == len(corpus_messages)
        listing = client.list_messages()
        ids = [item.server_id for item in listing]
        fetched = list(client.fetch(ids))

    assert len(set(ids)) == len(corpus_messages)
    assert [message.server_id for message in fetched] == ids
    expected = sorted(as_transmitted(raw, protocol) for raw in corpus_messages)
    assert sorted(message.raw for message in fetched) == expected
    assert all(message.size == len(message.raw) for message in fetched)
    # Listed sizes are the server's: the stored message with CRLF line endings.
    assert sorted(item.size for item in listing) == sorted(
        len(as_transmitted(raw, "imap")) for raw in corpus_messages
    )

    doomed = ids[::2]
    kept = ids[1::2]
    with open_client(settings) as client:
        client.delete(doomed)

    with open_client(settings) as client:
        assert [item.server_id for item in client.list_messages()] == kept
        assert list(client.fetch(doomed)) == []
        survivors = {m.server_id: m.raw for m in client.fetch(kept)}
    originals = {m.server_id: m.raw for m in fetched}
    assert survivors == {server_id: originals[server_id] for server_id in kept}
    assert dovecot.message_count(mail_user.username) == len(kept)


def test_ids_are_stable_across_sessions(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    protocol, starttls = variant
    dovecot.deliver_many(
        mail_user.username, [b"Subject: one\n\n1\n", b"Subject: two\n\n2\n"]
    )
    settings = make_settings(protocol, starttls=starttls)

    def listing() -> list[ServerListing]:
        with open_client(settings) as client:
            return client.list_messages()

    assert listing() == listing()


def test_fetch_follows_the_requested_order_and_skips_unknown_ids(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    protocol, starttls = variant
    raws = [f"Subject: {n}\n\nbody {n}\n".encode() for n in range(5)]
    dovecot.deliver_many(mail_user.username, raws)
    with open_client(make_settings(protocol, starttls=starttls)) as client:
        ids = [item.server_id for item in client.list_messages()]
        unknown = "1:999999" if protocol.startswith("imap") else "no-such-uidl"
        wanted = [ids[3], unknown, ids[0]]
        assert [m.server_id for m in client.fetch(wanted)] == [ids[3], ids[0]]


def test_delete_of_unknown_ids_deletes_nothing(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    protocol, starttls = variant
    dovecot.deliver(mail_user.username, b"Subject: stays\n\nbody\n")
    unknown = "1:999999" if protocol.startswith("imap") else "no-such-uidl"
    with open_client(make_settings(protocol, starttls=starttls)) as client:
        client.delete([unknown])
    assert dovecot.message_count(mail_user.username) == 1


def test_delete_is_safe_to_repeat(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    protocol, starttls = variant
    dovecot.deliver_many(
        mail_user.username, [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    )
    settings = make_settings(protocol, starttls=starttls)
    with open_client(settings) as client:
        first = client.list_messages()[0].server_id
        client.delete([first])
        client.delete([first])
    with open_client(settings) as client:
        client.delete([first])
        assert len(client.list_messages()) == 1


def test_logout_happens_even_when_the_block_raises(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    """GIVEN a message deleted in a session that then fails in the caller's code
    THEN the caller's error propagates and the session still ended with a
    goodbye, so the deletion took effect (POP3 commits it at QUIT)."""
    protocol, starttls = variant
    dovecot.deliver_many(
        mail_user.username, [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    )

    class CallerError(Exception):
        pass

    client: MailClient = open_client(make_settings(protocol, starttls=starttls))
    with pytest.raises(CallerError), client:
        client.delete([client.list_messages()[0].server_id])
        raise CallerError

    assert dovecot.message_count(mail_user.username) == 1


def test_other_folders_are_left_alone(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    protocol, starttls = variant
    dovecot.create_folder(mail_user.username, "Archive")
    dovecot.deliver(mail_user.username, b"Subject: archived\n\nx\n", folder="Archive")
    dovecot.deliver(mail_user.username, b"Subject: inbox\n\ny\n")
    with open_client(make_settings(protocol, starttls=starttls)) as client:
        client.delete([item.server_id for item in client.list_messages()])
    assert dovecot.message_count(mail_user.username) == 0
    assert dovecot.mailbox_raws(mail_user.username, "Archive") == [
        b"Subject: archived\n\nx\n"
    ]


def test_a_client_can_be_used_for_several_sessions(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    protocol, starttls = variant
    dovecot.deliver_many(
        mail_user.username, [b"Subject: a\n\na\n", b"Subject: b\n\nb\n"]
    )
    client = open_client(make_settings(protocol, starttls=starttls))
    with client:
        first, second = (item.server_id for item in client.list_messages())
        client.delete([first])
    dovecot.deliver(mail_user.username, b"Subject: c\n\nc\n")
    with client:
        ids = [item.server_id for item in client.list_messages()]
        assert ids[0] == second
        assert len(ids) == 2
        assert [m.server_id for m in client.fetch(ids)] == ids


def test_non_ascii_password_logs_in(
    dovecot: DovecotServer,
    make_settings: MakeSettings,
    variant: tuple[str, bool],
) -> None:
    """GIVEN a password with non-ASCII letters (which IMAP LOGIN cannot carry)
    THEN the client still logs in (IMAP through AUTHENTICATE PLAIN, UTF-8)."""
    protocol, starttls = variant
    username = f"umlaut{secrets.token_hex(6)}"
    password = "Pässwörd-ñ-" + secrets.token_hex(4)
    dovecot.add_user(username, password)
    dovecot.deliver(username, b"Subject: hello\n\nbody\n")
    settings = make_settings(
        protocol, starttls=starttls, username=username, password=password
    )
    with open_client(settings) as client:
        assert client.message_count() == 1


def test_wrong_non_ascii_password_is_login_rejected(
    make_settings: MakeSettings, variant: tuple[str, bool]
) -> None:
    protocol, starttls = variant
    settings = make_settings(protocol, starttls=starttls, password="Fälsch")
    with pytest.raises(MailClientError) as caught, open_client(settings):
        pass
    assert caught.value.kind == ErrorKind.LOGIN_REJECTED, str(caught.value)


def test_a_session_left_idle_longer_than_the_timeout_still_works(
    make_settings: MakeSettings, variant: tuple[str, bool]
) -> None:
    """GIVEN a session that sat idle for longer than the mail timeout between
    two commands (the archive was busy securing or indexing)
    THEN the next command gets the whole timeout of its own: the idle time is
    not counted against the server."""
    protocol, starttls = variant
    settings = make_settings(protocol, starttls=starttls, timeout=1.0)
    with open_client(settings) as client:
        assert client.list_messages() == []
        time.sleep(1.5)
        assert client.message_count() == 0
