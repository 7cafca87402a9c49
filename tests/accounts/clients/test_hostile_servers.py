"""Servers that lie about sizes, send slowly, or are sent control characters.

Fakes (``tests.accounts.fake_servers``), because no real server can be made to
misbehave on demand; the honest side of the same limits runs against Dovecot.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest

from accounts.clients import ConnectionSettings, ErrorKind, MailClientError, open_client
from tests.accounts.clients.conftest import MakeSettings
from tests.accounts.fake_servers import (
    FakeMessage,
    FakeServer,
    Mailbox,
    Session,
    imap_session,
    pop3_session,
)
from tests.dovecot import DovecotServer, MailUser

StartServer = Callable[[Session], FakeServer]
LIMIT = 1024 * 1024
HUGE = 200 * 1024 * 1024
# What the kernel may take in on loopback before a sender blocks (socket
# buffers at both ends): the fake can get that much out after the client
# stopped reading.
SOCKET_BUFFERS = 16 * 1024 * 1024


def honest(n: int) -> FakeMessage:
    return FakeMessage(raw=b"Subject: honest %d\r\n\r\nall there\r\n" % n)


def liar() -> FakeMessage:
    """Announces 100 bytes, sends 200 MB."""
    return FakeMessage(announced=100, streamed=HUGE)


def fake_settings(protocol: str, port: int, **overrides: object) -> ConnectionSettings:
    values: dict[str, object] = {
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": port,
        "username": "archive",
        "password": "secret",
        "timeout": 20.0,
        "allowed_hosts": ("127.0.0.1",),
        "max_message_bytes": LIMIT,
    }
    values.update(overrides)
    return ConnectionSettings(**values)  # type: ignore[arg-type]


def session_for(protocol: str, mailbox: Mailbox, **options: object) -> Session:
    make = pop3_session if protocol == "pop" else imap_session
    return make(mailbox, **options)  # type: ignore[arg-type]


# -- sizes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "options"),
    [
        ("pop", {}),
        ("imap", {}),
        ("imap", {"ignore_partial": True}),
    ],
    ids=["pop3", "imap", "imap-ignoring-partial-fetch"],
)
def test_a_message_bigger_than_announced_is_not_read_past_the_limit(
    fake_server: StartServer, protocol: str, options: dict[str, object]
) -> None:
    """GIVEN a server that announces 100 bytes and then sends 200 MB
    WHEN the client fetches it with a 1 MB limit
    THEN it yields the message as too large without its bytes, having held
    little more than the limit in memory and let little more than the limit
    (plus socket buffers) cross the wire, and the session goes on: the
    messages around it arrive whole and can be deleted.
    """
    mailbox = Mailbox([honest(1), liar(), honest(3)])
    server = fake_server(session_for(protocol, mailbox, **options))
    tracemalloc.start()
    try:
        with open_client(fake_settings(protocol, server.port)) as client:
            listing = client.list_messages()
            assert [item.size for item in listing][1] == 100
            fetched = list(client.fetch([item.server_id for item in listing]))
            _current, peak = tracemalloc.get_traced_memory()
            client.delete([m.server_id for m in fetched if not m.too_large])
    finally:
        tracemalloc.stop()

    assert [m.too_large for m in fetched] == [False, True, False]
    assert [m.raw for m in fetched if not m.too_large] == [
        honest(1).raw,
        honest(3).raw,
    ]
    assert fetched[1].raw is None
    assert fetched[1].size > LIMIT
    assert peak < 8 * LIMIT
    assert server.message_bytes_sent < LIMIT + SOCKET_BUFFERS
    assert [m.announced for m in mailbox.messages] == [100]  # only the liar is left


def test_pop3_reconnects_and_marks_again_what_it_had_marked(
    fake_server: StartServer,
) -> None:
    """GIVEN a message marked for deletion, then a RETR cut off at the limit
    THEN the client logs in again, marks it again in the new session, and QUIT
    deletes it; the abandoned session deleted nothing."""
    mailbox = Mailbox([honest(1), liar(), honest(3)])
    server = fake_server(pop3_session(mailbox))
    with open_client(fake_settings("pop", server.port)) as client:
        ids = [item.server_id for item in client.list_messages()]
        [first] = client.fetch(ids[:1])
        client.delete([first.server_id])
        [too_large, third] = client.fetch(ids[1:])
        client.delete([third.server_id])
    assert too_large.too_large
    assert server.connections == 2
    assert "QUIT" not in server.verbs(1)
    assert server.verbs(2)[2:] == ["LIST", "UIDL", "DELE 1", "RETR 3", "DELE 3", "QUIT"]
    assert [m.announced for m in mailbox.messages] == [100]


def test_imap_finds_the_message_that_overflowed_a_shared_fetch(
    fake_server: StartServer,
) -> None:
    """GIVEN three small messages fetched with one FETCH, the middle one sent
    as a 200 MB literal although a partial fetch asked for 1 MB + 1
    THEN the client refuses the literal before reading it, reconnects, fetches
    the three one by one, and flags nothing but what it is asked to delete."""
    mailbox = Mailbox([honest(1), liar(), honest(3)])
    server = fake_server(imap_session(mailbox, ignore_partial=True))
    with open_client(fake_settings("imap", server.port)) as client:
        ids = [item.server_id for item in client.list_messages()]
        fetched = list(client.fetch(ids))
        client.delete([m.server_id for m in fetched if not m.too_large])
    assert [m.too_large for m in fetched] == [False, True, False]
    assert server.connections == 3  # the shared FETCH, then the liar alone
    fetches = [v for v in server.verbs() if v.startswith("UID FETCH")]
    assert [f.split(" ")[2] for f in fetches[1:]] == ["1,2,3", "1", "2", "3"]
    stores = [v for v in server.verbs() if v.startswith(("UID STORE", "UID EXPUNGE"))]
    assert stores == [
        "UID STORE 1,3 +FLAGS.SILENT (\\Deleted)",
        "UID EXPUNGE 1,3",
    ]


@pytest.mark.parametrize("protocol", ["pop", "imap"])
def test_an_announced_size_over_the_limit_is_not_fetched_at_all(
    fake_server: StartServer, protocol: str
) -> None:
    mailbox = Mailbox([FakeMessage(raw=b"Subject: big\r\n\r\n" + b"y" * 5000)])
    server = fake_server(session_for(protocol, mailbox))
    settings = fake_settings(protocol, server.port, max_message_bytes=1000)
    with open_client(settings) as client:
        [message] = client.fetch([item.server_id for item in client.list_messages()])
    assert (message.too_large, message.size) == (True, 5016)
    assert server.message_bytes_sent == 0


@pytest.mark.parametrize("protocol", ["pops", "imaps"])
def test_the_limit_is_exact_against_a_real_server(
    dovecot: DovecotServer,
    mail_user: MailUser,
    make_settings: MakeSettings,
    protocol: str,
) -> None:
    """A message of exactly the limit arrives whole; one byte more does not,
    also when the client has no listing to go by (IMAP: the partial fetch)."""
    raw = b"Subject: limit\r\n\r\n" + b"z" * 3000 + b"\r\n"
    dovecot.deliver(mail_user.username, raw)
    with open_client(make_settings(protocol)) as client:
        [server_id] = [item.server_id for item in client.list_messages()]
    for listed in (True, False):
        for limit, whole in ((len(raw), True), (len(raw) - 1, False)):
            settings = make_settings(protocol, max_message_bytes=limit)
            with open_client(settings) as client:
                if listed or protocol == "pops":
                    client.list_messages()
                [message] = client.fetch([server_id])
            assert message.too_large is not whole, (listed, limit)
            assert message.raw == (raw if whole else None)


# -- time -----------------------------------------------------------------------


def fails_on_the_deadline(
    settings: ConnectionSettings, *, fetch: bool = False
) -> tuple[float, MailClientError]:
    """Open a session (and fetch everything), expecting the deadline kind;
    return how long it took, and the error."""
    started = time.monotonic()
    with pytest.raises(MailClientError) as caught, open_client(settings) as client:
        if fetch:
            list(client.fetch([item.server_id for item in client.list_messages()]))
    elapsed = time.monotonic() - started
    assert caught.value.kind == ErrorKind.DEADLINE_EXCEEDED, str(caught.value)
    return elapsed, caught.value


@pytest.mark.parametrize("protocol", ["pop", "imap"])
def test_a_trickling_greeting_hits_the_session_deadline(
    fake_server: StartServer, protocol: str
) -> None:
    """GIVEN a server that sends its greeting one byte a second
    WHEN the session may take 2 s and each read 1.5 s
    THEN it fails on the deadline after about 2 s, not after a per-read
    timeout per byte."""
    server = fake_server(session_for(protocol, Mailbox([]), greeting_interval=1.0))
    settings = fake_settings(protocol, server.port, timeout=1.5, deadline=2.0)
    elapsed, _error = fails_on_the_deadline(settings)
    assert elapsed < 3.0


@pytest.mark.parametrize("protocol", ["pop", "imap"])
def test_the_session_deadline_holds_below_the_read_timeout(
    fake_server: StartServer, protocol: str
) -> None:
    server = fake_server(session_for(protocol, Mailbox([]), greeting_interval=0.2))
    settings = fake_settings(protocol, server.port, timeout=10.0, deadline=1.0)
    elapsed, error = fails_on_the_deadline(settings)
    assert elapsed < 2.0
    assert "did not finish within 1 seconds" in str(error)


@pytest.mark.parametrize("protocol", ["pop", "imap"])
def test_a_message_trickling_in_fails_without_a_session_deadline(
    fake_server: StartServer, protocol: str
) -> None:
    """GIVEN no session deadline and a per-read timeout of 1.5 s
    WHEN a message arrives at four bytes a second (every read succeeds)
    THEN the fetch stops after about 1.5 s: an answer must average 1 KiB/s
    once the per-read timeout's worth of grace is used up."""
    mailbox = Mailbox([honest(1)])
    session = session_for(
        protocol,
        mailbox,
        **{"retr_interval" if protocol == "pop" else "body_interval": 0.25},
    )
    server = fake_server(session)
    settings = fake_settings(protocol, server.port, timeout=1.5, deadline=None)
    elapsed, error = fails_on_the_deadline(settings, fetch=True)
    assert elapsed < 3.0
    assert "too slowly" in str(error)


@pytest.mark.parametrize("protocol", ["pops", "imaps"])
def test_the_deadline_covers_tls(
    dovecot: DovecotServer, make_settings: MakeSettings, protocol: str
) -> None:
    """A session over TLS that runs out of time mid-way fails on its deadline
    (the TLS sockets carry it too)."""
    settings = make_settings(protocol, deadline=0.5)
    with pytest.raises(MailClientError) as caught, open_client(settings) as client:
        time.sleep(0.6)
        client.message_count()
    assert caught.value.kind == ErrorKind.DEADLINE_EXCEEDED


# -- control characters ---------------------------------------------------------


@pytest.mark.parametrize("protocol", ["pop", "imap"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "archive\r\nDELE 1"),
        ("password", "secret\nQUIT"),
        ("folder", "INBOX\r\nA1 DELETE INBOX"),
        ("host", "127.0.0.1\t"),
        ("username", "archive\x00"),
        ("password", "secret\x7f"),
        ("username", "archive\x85"),
    ],
    ids=["crlf-user", "lf-password", "crlf-folder", "tab-host", "nul", "del", "c1"],
)
def test_control_characters_are_refused_before_anything_is_sent(
    fake_server: StartServer, protocol: str, field: str, value: str
) -> None:
    server = fake_server(session_for(protocol, Mailbox([honest(1)])))
    settings = fake_settings(protocol, server.port, **{field: value})
    with pytest.raises(MailClientError) as caught, open_client(settings):
        pass
    assert caught.value.kind == ErrorKind.INVALID_SETTING
    assert value not in str(caught.value)
    assert server.connections == 0
