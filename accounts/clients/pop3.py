"""POP3 and POP3S client over ``poplib``.

Server ids are the server's UIDLs. A server without UIDL gets ids of the form
``sha256:<hex digest of the raw message>``; computing them downloads every
message once while listing, and identical messages share one id (``delete``
then removes every copy, which is right because they are the same message).

Deletion in POP3 happens at QUIT: ``delete`` only marks messages, and the
server removes them when the session ends cleanly. Callers must treat a
delete as done only after the ``with`` block exits without an exception; a
session that breaks off leaves every message on the server.

A RETR cannot be stopped without closing the connection. When a message turns
out larger than ``max_message_bytes`` (whatever LIST announced), the client
reads no further, hangs up, logs in again, marks again what it had marked for
deletion, and yields the message as too large; it stays on the server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import poplib
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence

from accounts.clients.base import (
    ConnectionSettings,
    ErrorKind,
    MailClient,
    MailClientError,
    ServerListing,
    ServerMessage,
    answer_error,
    login_error,
    oauth2_unavailable_error,
    server_text,
    tls_context,
    unverified_context,
)
from accounts.clients.credentials import OAuth2Token, describe_sasl_error
from accounts.clients.deadline import Deadline
from accounts.clients.guard import check_destination
from accounts.clients.protocols import Protocol, register

# RETR is read in pieces of this size, so no line length limit applies.
_CHUNK = 1 << 20
_STATUS_LIMIT = 8192


class _MessageTooLargeError(Exception):
    """RETR was abandoned after ``received`` bytes; the connection is unusable."""

    def __init__(self, received: int) -> None:
        super().__init__(f"message larger than the limit ({received} bytes read)")
        self.received = received


class _POP3Connection(poplib.POP3):
    """``poplib.POP3`` connected to a vetted address, within a deadline.

    TLS (implicit or via STLS) is verified against ``host``, the name the admin
    typed, while the TCP connection goes to ``address``. TLS contexts passed
    in must be bound to ``deadline`` (``Deadline.bind``). ``check_port`` is
    called with a plain socket before the greeting is read.
    """

    def __init__(
        self,
        host: str,
        address: str,
        port: int,
        deadline: Deadline,
        implicit_tls: ssl.SSLContext | None,
        check_port: Callable[[socket.socket], None] | None = None,
    ) -> None:
        self._address = address
        self._deadline = deadline
        self._implicit_tls = implicit_tls
        self._check_port = check_port
        self._opened: socket.socket | None = None
        try:
            super().__init__(host, port, deadline.read_timeout)
        except BaseException:
            # poplib leaves the socket open when the greeting fails.
            if self._opened is not None:
                self._opened.close()
            raise

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = self._deadline.connect(self._address, self.port)
        self._opened = sock
        if self._implicit_tls is None:
            if self._check_port is not None:
                self._check_port(sock)
            return sock
        try:
            tls = self._implicit_tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._opened = tls
        return tls

    def _retr_chunks(self, which: int) -> Iterator[bytes]:
        """RETR a message and yield its bytes exactly as sent, un-dot-stuffed.

        ``poplib.retr`` splits lines and drops their endings; this keeps them.
        Stopping before the end leaves the connection in the middle of the
        message: it can only be closed then.
        """
        self.sock.sendall(b"RETR %d\r\n" % which)
        status = self.file.readline(_STATUS_LIMIT)
        if not status:
            raise poplib.error_proto("-ERR connection closed")
        if not status.startswith(b"+OK"):
            raise poplib.error_proto(status.rstrip(b"\r\n"))
        at_line_start = True
        while True:
            chunk = self.file.readline(_CHUNK)
            if not chunk:
                raise poplib.error_proto("-ERR connection closed during RETR")
            if at_line_start:
                if chunk in (b".\r\n", b".\n"):
                    return
                if chunk.startswith(b"."):
                    chunk = chunk[1:]
            at_line_start = chunk.endswith(b"\n")
            yield chunk

    def retr_raw(self, which: int, limit: int | None = None) -> bytes:
        """The message's bytes as sent; at most ``limit`` of them.

        Raises ``_MessageTooLargeError`` as soon as more than ``limit`` bytes
        arrived, without reading on; the connection must then be closed.
        """
        parts: list[bytes] = []
        received = 0
        for chunk in self._retr_chunks(which):
            received += len(chunk)
            if limit is not None and received > limit:
                raise _MessageTooLargeError(received)
            parts.append(chunk)
        return b"".join(parts)

    def retr_sha256(self, which: int) -> str:
        """The hex SHA-256 of the message's bytes, read without keeping them."""
        digest = hashlib.sha256()
        for chunk in self._retr_chunks(which):
            digest.update(chunk)
        return digest.hexdigest()


class POP3Client(MailClient):
    """A POP3/POP3S session; see the module docstring for ids and deletion."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._pop: _POP3Connection | None = None
        self._numbers: dict[str, list[int]] | None = None
        self._sizes: dict[str, int] = {}
        self._marked: set[int] = set()
        # The ids marked for deletion, to mark again after a reconnection.
        self._marked_ids: dict[str, None] = {}
        self.has_uidl: bool | None = None

    @property
    def _connection(self) -> _POP3Connection:
        if self._pop is None:
            raise RuntimeError("not connected; use the client in a with block")
        return self._pop

    def _open(self) -> None:
        # Message numbers and marks belong to one session only.
        self._numbers = None
        self._sizes = {}
        self._marked = set()
        self._marked_ids = {}
        settings = self.settings
        addresses = check_destination(
            settings.host, settings.port, settings.allowed_hosts
        )
        context = (
            self._deadline.bind(tls_context(settings))
            if settings.uses_implicit_tls or settings.starttls
            else None
        )

        def connect(address: str) -> None:
            self._pop = _POP3Connection(
                settings.server_hostname,
                address,
                settings.port,
                self._deadline,
                context if settings.uses_implicit_tls else None,
                None if settings.uses_implicit_tls else self._check_plain_port,
            )

        self._connect_each(addresses, connect)
        if settings.starttls:
            try:
                capabilities = self._connection.capa()
            except poplib.error_proto:
                capabilities = {}
            if "STLS" not in capabilities:
                raise MailClientError(
                    ErrorKind.TLS_UNAVAILABLE,
                    f"{settings.where} does not offer STARTTLS (STLS). Use POP3S "
                    "or ask the mail provider to enable TLS.",
                )
            self._connection.stls(context)
        credential = settings.credential
        try:
            if isinstance(credential, OAuth2Token):
                self._token_login(credential)
            else:
                self._connection.user(settings.username)
                self._connection.pass_(credential.secret)
        except poplib.error_proto as error:
            raise login_error(settings, error) from error

    def _token_login(self, token: OAuth2Token) -> None:
        """AUTH OAUTHBEARER or XOAUTH2 (RFC 5034), whichever the server offers.

        The token goes as the initial response. A server that refuses it
        answers with a continuation holding its reasons (JSON), which the
        client acknowledges before the final -ERR.
        """
        settings = self.settings
        pop = self._connection
        try:
            capabilities = pop.capa()
        except poplib.error_proto:
            capabilities = {}
        offered = {name.upper() for name in capabilities.get("SASL", [])}
        mechanism = token.mechanism_for(offered)
        if mechanism is None:
            raise oauth2_unavailable_error(settings)
        first = token.initial_response(
            mechanism,
            username=settings.username,
            host=settings.server_hostname,
            port=settings.port,
        )
        answer = pop._shortcmd(
            f"AUTH {mechanism} {base64.b64encode(first).decode('ascii')}"
        )
        if answer.startswith(b"+OK"):
            return
        # "+ <base64 JSON>": the server's reasons for refusing the token.
        said = describe_sasl_error(base64.b64decode(answer[1:].strip() or b""))
        try:
            pop._putcmd(
                base64.b64encode(token.failure_reply(mechanism)).decode("ascii")
            )
            pop._getresp()
        except poplib.error_proto as error:
            raise poplib.error_proto(f"{server_text(error)}; {said}") from error
        raise poplib.error_proto(f"-ERR {said}")

    def _logout(self) -> None:
        if self._pop is not None:
            self._pop.quit()
            self._pop = None

    def _abort(self) -> None:
        if self._pop is not None:
            pop, self._pop = self._pop, None
            with contextlib.suppress(OSError):
                pop.close()

    def _protocol_error(self, error: Exception) -> MailClientError | None:
        if isinstance(error, poplib.error_proto):
            return answer_error(self.settings, error)
        return None

    def _starttls_peer_certificate(self, address: str) -> bytes | None:
        settings = self.settings
        connection = _POP3Connection(
            settings.server_hostname, address, settings.port, self._new_deadline(), None
        )
        try:
            connection.stls(unverified_context())
            return connection.sock.getpeercert(binary_form=True)
        finally:
            connection.close()

    def message_count(self) -> int:
        """Return how many messages the maildrop holds (minus marked ones)."""
        with self._errors():
            count, _size = self._connection.stat()
        return count

    def list_messages(self) -> list[ServerListing]:
        """Return one listing per server id, in message-number order."""
        with self._errors():
            self._numbers = self._index()
        return [
            ServerListing(server_id=server_id, size=self._sizes[server_id])
            for server_id in self._numbers
        ]

    def _index(self) -> dict[str, list[int]]:
        pop = self._connection
        _response, lines, _octets = pop.list()
        sizes = {}
        for line in lines:
            number, size = line.split()[:2]
            sizes[int(number)] = int(size)
        uidls = self._uidls()
        numbers: dict[str, list[int]] = {}
        self._sizes = {}
        for number in sorted(sizes):
            if number in self._marked:
                continue
            if uidls is not None:
                server_id = uidls.get(number)
                if server_id is None:
                    continue
            else:
                server_id = "sha256:" + pop.retr_sha256(number)
            numbers.setdefault(server_id, []).append(number)
            self._sizes.setdefault(server_id, sizes[number])
        return numbers

    def _uidls(self) -> dict[int, str] | None:
        if self.has_uidl is False:
            return None
        try:
            _response, lines, _octets = self._connection.uidl()
        except poplib.error_proto:
            self.has_uidl = False
            return None
        self.has_uidl = True
        uidls = {}
        for line in lines:
            number, uidl = line.split()[:2]
            uidls[int(number)] = uidl.decode("latin-1")
        return uidls

    def _known_numbers(self) -> dict[str, list[int]]:
        if self._numbers is None:
            with self._errors():
                self._numbers = self._index()
        return self._numbers

    def fetch(self, server_ids: Sequence[str]) -> Iterator[ServerMessage]:
        """Yield each named message (RETR; POP3 has no read flag to disturb).

        Ids not in the maildrop, or already marked for deletion, are skipped.
        A message over ``max_message_bytes`` is yielded without its bytes
        (``too_large``); if that was only found out while reading it, the
        client has reconnected first (see the module docstring).
        """
        limit = self.settings.max_message_bytes
        for server_id in server_ids:
            candidates = [
                n
                for n in self._known_numbers().get(server_id, [])
                if n not in self._marked
            ]
            if not candidates:
                continue
            announced = self._sizes.get(server_id, 0)
            if limit is not None and announced > limit:
                yield ServerMessage(server_id=server_id, size=announced, raw=None)
                continue
            try:
                with self._errors():
                    raw = self._connection.retr_raw(candidates[0], limit)
            except _MessageTooLargeError as error:
                self._reopen()
                size = max(announced, error.received)
                yield ServerMessage(server_id=server_id, size=size, raw=None)
                continue
            yield ServerMessage(server_id=server_id, size=len(raw), raw=raw)

    def _reopen(self) -> None:
        """Reconnect and mark again what the abandoned session had marked."""
        marked = list(self._marked_ids)
        self._reconnect()
        self.delete(marked)

    def delete(self, server_ids: Sequence[str]) -> None:
        """Mark the named messages for deletion; the server removes them at QUIT.

        Safe to re-run: already marked and unknown ids are skipped.
        """
        numbers = self._known_numbers()
        for server_id in server_ids:
            for number in numbers.get(server_id, []):
                if number in self._marked:
                    continue
                with self._errors():
                    self._connection.dele(number)
                self._marked.add(number)
                self._marked_ids[server_id] = None


for _protocol in (
    Protocol(
        name="pop",
        label="POP",
        family="pop",
        default_port=110,
        implicit_tls=False,
        reads_folders=False,
        deletes_at_logout=True,
        client_class=POP3Client,
    ),
    Protocol(
        name="pops",
        label="POPS",
        family="pop",
        default_port=995,
        implicit_tls=True,
        reads_folders=False,
        deletes_at_logout=True,
        client_class=POP3Client,
    ),
):
    register(_protocol)
