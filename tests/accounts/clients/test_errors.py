"""Every failure surfaces as a MailClientError with a kind and words to act on."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from accounts.clients import ConnectionSettings, ErrorKind, MailClientError, open_client
from accounts.clients.base import greeting_wait
from tests.accounts.clients.conftest import (
    VARIANTS,
    MakeSettings,
    ScriptedServer,
    imap_greeting,
    imap_without_starttls,
    pop3_without_uidl,
)
from tests.dovecot import CA_SUBJECT, SERVER_NAME

TLS_VARIANTS = ["imaps", "imap+starttls", "pops", "pop+starttls"]


def fails_with(kind: ErrorKind, settings: ConnectionSettings) -> MailClientError:
    """Open a session with *settings*, expecting it to fail with *kind*."""
    with pytest.raises(MailClientError) as caught, open_client(settings):
        pass
    assert caught.value.kind == kind, str(caught.value)
    return caught.value


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose socket accepts connections but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_wrong_password_is_login_rejected(
    make_settings: MakeSettings, variant: str
) -> None:
    protocol, starttls = VARIANTS[variant]
    settings = make_settings(protocol, starttls=starttls, password="not-the-password")
    error = fails_with(ErrorKind.LOGIN_REJECTED, settings)
    assert f"login of {settings.username!r}" in str(error)
    assert "not-the-password" not in str(error)
    # The server's words, not a Python rendering of the bytes it sent.
    assert re.search(r" \(\[AUTH[A-Z]*\] Authentication failed\)\. ", str(error))


@pytest.mark.parametrize("protocol", ["imap", "pop"])
def test_refused_port_is_connection_refused(
    make_settings: MakeSettings, closed_port: int, protocol: str
) -> None:
    settings = make_settings(protocol, port=closed_port)
    error = fails_with(ErrorKind.CONNECTION_REFUSED, settings)
    assert f"127.0.0.1:{closed_port}" in str(error)


@pytest.mark.parametrize("protocol", ["imap", "imaps", "pop", "pops"])
def test_server_that_never_answers_is_a_timeout(
    make_settings: MakeSettings, silent_port: int, protocol: str
) -> None:
    settings = make_settings(protocol, port=silent_port, timeout=0.3)
    error = fails_with(ErrorKind.TIMEOUT, settings)
    assert "0.3 seconds" in str(error)


@pytest.mark.parametrize("variant", TLS_VARIANTS)
def test_certificate_from_an_unknown_ca_is_untrusted(
    make_settings: MakeSettings, variant: str
) -> None:
    """GIVEN the client does not know the fixture's CA
    THEN the connection is refused and the error names the certificate's
    subject and issuer (read over a second, credential-free connection)."""
    protocol, starttls = VARIANTS[variant]
    settings = make_settings(protocol, starttls=starttls, ca_file=None)
    error = fails_with(ErrorKind.CERTIFICATE_UNTRUSTED, settings)
    assert f"CN={SERVER_NAME}" in str(error)
    assert f"CN={CA_SUBJECT}" in str(error)


@pytest.mark.parametrize("variant", TLS_VARIANTS)
def test_name_the_certificate_does_not_cover_is_a_hostname_mismatch(
    make_settings: MakeSettings,
    static_dns: Callable[[str, str], None],
    variant: str,
) -> None:
    """GIVEN a name that resolves to the server's address but is not in its
    certificate (which covers localhost and 127.0.0.1 only)
    THEN verification against the typed name fails."""
    static_dns("mail.example.test", "127.0.0.1")
    protocol, starttls = VARIANTS[variant]
    settings = make_settings(
        protocol,
        starttls=starttls,
        host="mail.example.test",
        allowed_hosts=("mail.example.test",),
    )
    error = fails_with(ErrorKind.HOSTNAME_MISMATCH, settings)
    assert "'mail.example.test'" in str(error)
    assert "localhost, 127.0.0.1" in str(error)


def test_missing_ca_bundle_is_reported(make_settings: MakeSettings) -> None:
    settings = make_settings("imaps", ca_file="/nonexistent/ca.pem")
    error = fails_with(ErrorKind.CERTIFICATE_UNTRUSTED, settings)
    assert "/nonexistent/ca.pem" in str(error)


def test_tls_client_on_a_port_that_is_no_mail_server_is_a_protocol_error(
    make_settings: MakeSettings, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """GIVEN a port that answers neither TLS nor a mail greeting (a web server)
    THEN the failed handshake is reported as such, not as a port mismatch."""

    def web_server(rfile, wfile, received):  # type: ignore[no-untyped-def]
        wfile.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        wfile.flush()

    settings = make_settings("imaps", port=scripted_server(web_server).port)
    error = fails_with(ErrorKind.PROTOCOL_ERROR, settings)
    assert "TLS" in str(error)


def test_missing_folder(make_settings: MakeSettings) -> None:
    error = fails_with(ErrorKind.FOLDER_MISSING, make_settings("imaps", folder="Nope"))
    assert "'Nope'" in str(error)


def test_unresolvable_name_is_unknown_host(make_settings: MakeSettings) -> None:
    fails_with(
        ErrorKind.UNKNOWN_HOST, make_settings("imaps", host="no-such-host.invalid")
    )


@pytest.mark.parametrize("protocol", ["imap", "pop"])
def test_loopback_without_allow_list_is_blocked(
    make_settings: MakeSettings, protocol: str
) -> None:
    error = fails_with(
        ErrorKind.BLOCKED_DESTINATION, make_settings(protocol, allowed_hosts=())
    )
    assert "MAILARCHIVE_ALLOWED_MAIL_HOSTS" in str(error)


def test_pop3_starttls_not_offered(
    make_settings: MakeSettings,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    server = scripted_server(pop3_without_uidl([]))
    settings = make_settings("pop", starttls=True, port=server.port)
    fails_with(ErrorKind.TLS_UNAVAILABLE, settings)
    assert not any(line.startswith(("USER", "PASS")) for line in server.received)


@pytest.mark.parametrize(
    "response",
    [
        b"-ERR [IN-USE] Mailbox is locked by another POP3 session.",
        b"-ERR [SYS/TEMP] Temporary authentication failure.",
    ],
    ids=["in-use", "sys-temp"],
)
def test_busy_mailbox_is_not_blamed_on_the_password(
    make_settings: MakeSettings,
    scripted_server: Callable[..., ScriptedServer],
    response: bytes,
) -> None:
    server = scripted_server(pop3_without_uidl([], pass_response=response))
    error = fails_with(ErrorKind.PROTOCOL_ERROR, make_settings("pop", port=server.port))
    assert "temporary" in str(error)
    assert "password" not in str(error)


def test_imap_starttls_not_offered(
    make_settings: MakeSettings,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    server = scripted_server(imap_without_starttls)
    settings = make_settings("imap", starttls=True, port=server.port)
    fails_with(ErrorKind.TLS_UNAVAILABLE, settings)
    assert not any(" LOGIN " in line.upper() for line in server.received)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"protocol": "imaps", "starttls": True}, "STARTTLS"),
        ({"protocol": "smtp"}, "protocol"),
        ({"port": 0}, "port"),
        ({"host": " "}, "host"),
        ({"timeout": 0}, "timeout"),
    ],
    ids=["starttls-on-imaps", "unknown-protocol", "port", "host", "timeout"],
)
def test_settings_are_validated(overrides: dict[str, object], complaint: str) -> None:
    values: dict[str, object] = {
        "protocol": "imap",
        "host": "mail.example.com",
        "port": 143,
        "username": "archive",
        "password": "secret",
    }
    with pytest.raises(ValueError, match=complaint):
        ConnectionSettings(**{**values, **overrides})  # type: ignore[arg-type]


def test_settings_never_show_the_password() -> None:
    settings = ConnectionSettings(
        protocol="imap", host="mail.example.com", port=143, username="u", password="pw1"
    )
    assert "pw1" not in repr(settings)


def test_non_ascii_password_without_auth_plain_is_login_rejected(
    make_settings: MakeSettings,
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """GIVEN an IMAP server that offers only LOGIN, which cannot carry UTF-8
    THEN a non-ASCII password is refused before anything is sent."""
    server = scripted_server(imap_greeting(b"IMAP4rev1"))
    settings = make_settings("imap", port=server.port, password="Pässwörd")
    error = fails_with(ErrorKind.LOGIN_REJECTED, settings)
    assert "non-ASCII" in str(error)
    assert not any(
        verb in line.upper() for line in server.received for verb in ("LOGIN", "AUTH")
    )


# (account protocol, protocol of the port it is pointed at, kind, what it says)
WRONG_PORTS = [
    ("imap", "imaps", ErrorKind.PORT_SPEAKS_TLS, "speaks IMAPS, not IMAP"),
    ("imaps", "imap", ErrorKind.PORT_SPEAKS_PLAIN, "speaks IMAP, not IMAPS"),
    ("pop", "pops", ErrorKind.PORT_SPEAKS_TLS, "speaks POPS, not POP"),
    ("pops", "pop", ErrorKind.PORT_SPEAKS_PLAIN, "speaks POP, not POPS"),
]


@pytest.mark.parametrize(
    ("protocol", "port_protocol", "kind", "said"),
    WRONG_PORTS,
    ids=[f"{p}-on-{q}-port" for p, q, _, _ in WRONG_PORTS],
)
def test_a_port_of_the_other_side_of_tls_is_named_at_once(
    make_settings: MakeSettings,
    protocol: str,
    port_protocol: str,
    kind: ErrorKind,
    said: str,
) -> None:
    """GIVEN an account pointed at the real Dovecot port of its protocol's
    TLS (or plain) twin
    THEN the session fails with what the port speaks instead, long before the
    connection's timeout would have run out."""
    settings = make_settings(protocol, port=make_settings(port_protocol).port)
    started = time.monotonic()
    error = fails_with(kind, settings)
    elapsed = time.monotonic() - started
    assert said in str(error)
    assert "firewall" not in str(error)
    assert elapsed < settings.timeout / 2


def test_a_slow_plain_greeting_is_still_awaited(
    make_settings: MakeSettings, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """GIVEN a plain POP3 server that greets only after the greeting wait
    THEN it is not taken for a TLS port: the session goes on as usual."""
    script = pop3_without_uidl([b"Subject: x\r\n\r\nbody\r\n"])

    def slow(rfile, wfile, received):  # type: ignore[no-untyped-def]
        time.sleep(0.6)
        script(rfile, wfile, received)

    settings = make_settings("pop", port=scripted_server(slow).port, timeout=2.0)
    assert greeting_wait(settings) < 0.6
    with open_client(settings) as client:
        assert client.message_count() == 1


@pytest.mark.parametrize(("protocol", "port_protocol"), [("imap", "pop")])
def test_an_empty_answer_is_not_reported_as_an_empty_error(
    make_settings: MakeSettings, protocol: str, port_protocol: str
) -> None:
    """GIVEN an IMAP account on a POP3 port (whose greeting imaplib refuses
    without words) THEN the error says what the port is not."""
    settings = make_settings(protocol, port=make_settings(port_protocol).port)
    error = fails_with(ErrorKind.PROTOCOL_ERROR, settings)
    assert "error: ." not in str(error)
    assert "is not IMAP" in str(error)
