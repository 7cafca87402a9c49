"""Fixtures for the protocol client tests: settings for the real Dovecot,
corpus messages, and tiny scripted servers for what Dovecot cannot be made to
do (a POP3 server without UIDL or STLS, an IMAP server without STARTTLS).
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from accounts.clients import ConnectionSettings
from tests.dovecot import DovecotServer, MailUser

# (protocol, starttls) for every way the clients can talk to a server.
VARIANTS = {
    "imap": ("imap", False),
    "imaps": ("imaps", False),
    "imap+starttls": ("imap", True),
    "pop": ("pop", False),
    "pops": ("pops", False),
    "pop+starttls": ("pop", True),
}
# Generous bound so a hung server fails the test instead of blocking it.
TEST_TIMEOUT = 20.0

MakeSettings = Callable[..., ConnectionSettings]


def as_transmitted(raw: bytes, protocol: str) -> bytes:
    """What a server sends for a stored message: CRLF line endings.

    POP3 also ends the message with a line break before its terminating dot,
    so a message without a final newline gains one over POP3 (IMAP sends the
    exact octet count and adds nothing).
    """
    crlf = re.sub(rb"\r?\n", b"\r\n", raw)
    if protocol.startswith("pop") and not crlf.endswith(b"\r\n"):
        crlf += b"\r\n"
    return crlf


def port_for(dovecot: DovecotServer, protocol: str) -> int:
    return {
        "imap": dovecot.imap_port,
        "imaps": dovecot.imaps_port,
        "pop": dovecot.pop3_port,
        "pops": dovecot.pop3s_port,
    }[protocol]


@pytest.fixture
def make_settings(dovecot: DovecotServer, mail_user: MailUser) -> MakeSettings:
    """Build settings for ``mail_user`` on the test Dovecot; keywords override."""

    def make(
        protocol: str = "imaps", *, starttls: bool = False, **overrides: Any
    ) -> ConnectionSettings:
        values: dict[str, Any] = {
            "protocol": protocol,
            "host": dovecot.host,
            "port": port_for(dovecot, protocol),
            "username": mail_user.username,
            "password": mail_user.password,
            "starttls": starttls,
            "timeout": TEST_TIMEOUT,
            "allowed_hosts": (dovecot.host,),
            "ca_file": dovecot.ca_file,
        }
        values.update(overrides)
        return ConnectionSettings(**values)

    return make


@pytest.fixture(scope="session")
def corpus_messages(corpus_dir: Path) -> list[bytes]:
    """Every single-message file of the shared corpus, in name order."""
    paths = sorted((corpus_dir / "mimekit" / "messages").iterdir())
    messages = [path.read_bytes() for path in paths if path.is_file()]
    if not messages:
        pytest.fail(f"no messages in {corpus_dir / 'mimekit' / 'messages'}")
    return messages


@pytest.fixture
def static_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Make a host name resolve to a fixed address (others resolve normally)."""
    names: dict[str, str] = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower() in names:
            host = names[host.lower()]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def add(name: str, address: str) -> None:
        names[name.lower()] = address

    return add


@dataclass
class ScriptedServer:
    """A loopback TCP server that answers line commands from a handler."""

    port: int
    received: list[str] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    server: _ThreadingServer

    def handle(self) -> None:
        self.server.script(self.rfile, self.wfile, self.server.record.received)


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    script: Callable[[Any, Any, list[str]], None]
    record: ScriptedServer


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """Start servers running ``script(rfile, wfile, received)`` per connection."""
    servers: list[_ThreadingServer] = []

    def start(script: Callable[[Any, Any, list[str]], None]) -> ScriptedServer:
        server = _ThreadingServer(("127.0.0.1", 0), _Handler)
        server.script = script
        server.record = ScriptedServer(port=server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def pop3_without_uidl(
    messages: list[bytes], *, pass_response: bytes = b"+OK"
) -> Callable[[Any, Any, list[str]], None]:
    """A POP3 script with USER/PASS, STAT, LIST, RETR, DELE, QUIT; no UIDL/STLS.

    ``messages`` must use CRLF line endings; deletions apply at QUIT. PASS is
    answered with ``pass_response``.
    """

    def script(rfile: Any, wfile: Any, received: list[str]) -> None:
        deleted: set[int] = set()

        def send(text: bytes) -> None:
            wfile.write(text)
            wfile.flush()

        send(b"+OK fake POP3 ready\r\n")
        while line := rfile.readline():
            command = line.decode().strip()
            received.append(command)
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            live = [n for n in range(1, len(messages) + 1) if n not in deleted]
            if verb == "PASS":
                send(pass_response + b"\r\n")
            elif verb in ("USER", "NOOP", "RSET"):
                send(b"+OK\r\n")
            elif verb == "CAPA":
                send(b"+OK\r\nUSER\r\n.\r\n")
            elif verb == "STAT":
                total = sum(len(messages[n - 1]) for n in live)
                send(b"+OK %d %d\r\n" % (len(live), total))
            elif verb == "LIST":
                body = b"".join(b"%d %d\r\n" % (n, len(messages[n - 1])) for n in live)
                send(b"+OK\r\n" + body + b".\r\n")
            elif verb == "RETR":
                raw = messages[int(argument) - 1]
                stuffed = re.sub(rb"(?m)^\.", b"..", raw)
                send(b"+OK\r\n" + stuffed + b".\r\n")
            elif verb == "DELE":
                deleted.add(int(argument))
                send(b"+OK\r\n")
            elif verb == "QUIT":
                for number in sorted(deleted, reverse=True):
                    del messages[number - 1]
                send(b"+OK bye\r\n")
                return
            else:
                send(b"-ERR unknown command\r\n")

    return script


def imap_greeting(capability: bytes) -> Callable[[Any, Any, list[str]], None]:
    """An IMAP script announcing *capability* that answers only CAPABILITY and
    LOGOUT (any other command gets a bare OK); it never offers STARTTLS."""

    def script(rfile: Any, wfile: Any, received: list[str]) -> None:
        wfile.write(b"* OK [CAPABILITY " + capability + b"] fake IMAP ready\r\n")
        wfile.flush()
        while line := rfile.readline():
            command = line.decode().strip()
            received.append(command)
            tag, _, rest = command.partition(" ")
            verb = rest.split(" ")[0].upper()
            if verb == "CAPABILITY":
                wfile.write(b"* CAPABILITY " + capability + b"\r\n")
            elif verb == "LOGOUT":
                wfile.write(b"* BYE\r\n")
            wfile.write(tag.encode() + b" OK done\r\n")
            wfile.flush()
            if verb == "LOGOUT":
                return

    return script


imap_without_starttls = imap_greeting(b"IMAP4rev1 AUTH=PLAIN")
