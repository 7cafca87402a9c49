"""IMAP and IMAPS client over ``imapclient``.

Server ids are ``"<uidvalidity>:<uid>"`` of the configured folder. When the
server changes the folder's UIDVALIDITY every id changes with it; ids of an
older generation are never fetched or deleted (they might name other
messages now).

Messages are fetched with ``BODY.PEEK[]`` so they stay unread, and deletion
expunges exactly the named UIDs: with UIDPLUS through ``UID EXPUNGE``; without
it, messages someone else had flagged ``\\Deleted`` are unflagged for the
moment of the EXPUNGE and flagged again afterwards. The folder is never
CLOSEd, which would expunge every flagged message.

With ``max_message_bytes`` set, bodies are fetched as ``BODY.PEEK[]<0.N>``
with N one byte over the limit, so a message that fills it is known to be too
large whatever RFC822.SIZE said, and no more of it is sent. A server that
answers with more than asked (a literal over N, or more than one FETCH's worth
in all) is refused before the bytes are read: the client hangs up, logs in
again and fetches the rest of that FETCH one message at a time, so the
message that did it is found and reported as too large.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from imapclient import DELETED, IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from accounts.clients.base import (
    ConnectionSettings,
    ErrorKind,
    MailClient,
    MailClientError,
    ServerListing,
    ServerMessage,
    answer_error,
    login_error,
    network_error,
    oauth2_unavailable_error,
    server_text,
    tls_context,
    unverified_context,
)
from accounts.clients.credentials import OAuth2Token, describe_sasl_error
from accounts.clients.deadline import Deadline
from accounts.clients.guard import check_destination
from accounts.clients.protocols import Protocol, register

# Bounds for one FETCH: few enough bytes to hold in memory, few enough UIDs
# to stay far below servers' command line limits.
FETCH_MAX_MESSAGES = 50
FETCH_MAX_BYTES = 16 * 1024 * 1024
UID_CHUNK = 500
_BODY = b"BODY[]"
_PARTIAL_BODY = b"BODY[]<0>"
_SIZE = b"RFC822.SIZE"


class _ResponseTooLargeError(Exception):
    """The server announced more literal bytes than the client will read.

    Raised before reading them, in the middle of a response: the connection
    cannot be used any more.
    """


class _IMAP4(imaplib.IMAP4):
    """``imaplib.IMAP4`` connected to a vetted address, within a deadline.

    ``host`` stays the typed name, which STARTTLS verifies the certificate
    against; the TCP connection goes to ``address``. With ``max_literal`` set,
    a literal larger than that, or literals adding up to more than
    ``max_response`` in the answer to one command, raise
    ``_ResponseTooLargeError`` before imaplib reads (or allocates) them.
    ``check_port`` is called with the plain socket before the greeting is read.
    """

    def __init__(
        self,
        host: str,
        address: str,
        port: int,
        deadline: Deadline,
        max_literal: int | None = None,
        check_port: Callable[[socket.socket], None] | None = None,
    ) -> None:
        self._address = address
        self._deadline = deadline
        self._check_port = check_port
        self._max_literal = max_literal
        self._max_response = (
            None if max_literal is None else max_literal + FETCH_MAX_BYTES
        )
        self._literal_bytes = 0
        super().__init__(host, port, deadline.read_timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = self._deadline.connect(self._address, self.port)
        if self._check_port is not None:
            try:
                self._check_port(sock)
            except BaseException:
                sock.close()
                raise
        return sock

    def send(self, data: bytes) -> None:
        self._literal_bytes = 0
        super().send(data)

    def read(self, size: int) -> bytes:
        if self._max_literal is not None and self._max_response is not None:
            self._literal_bytes += size
            if size > self._max_literal or self._literal_bytes > self._max_response:
                raise _ResponseTooLargeError(size)
        return super().read(size)


class _IMAP4TLS(_IMAP4):
    """``_IMAP4`` with TLS from the start, verified against ``host``."""

    def __init__(
        self,
        host: str,
        address: str,
        port: int,
        deadline: Deadline,
        max_literal: int | None,
        context: ssl.SSLContext,
    ) -> None:
        self._context = context
        super().__init__(host, address, port, deadline, max_literal)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = super()._create_socket(timeout)
        try:
            return self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class _IMAPClient(IMAPClient):
    """``IMAPClient`` whose transport connects to a vetted address.

    ``context`` must be bound to ``deadline`` (``Deadline.bind``).
    """

    def __init__(
        self,
        host: str,
        address: str,
        port: int,
        implicit_tls: bool,
        context: ssl.SSLContext | None,
        deadline: Deadline,
        max_literal: int | None,
        check_port: Callable[[socket.socket], None] | None = None,
    ) -> None:
        self._address = address
        self._deadline = deadline
        self._max_literal = max_literal
        self._check_port = check_port
        super().__init__(
            host,
            port=port,
            ssl=implicit_tls,
            ssl_context=context,
            timeout=deadline.read_timeout,
        )
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            # imapclient turns on imaplib's trace, which formats every
            # response, a message's literal included, before the logger drops
            # it: a message's size twice over, for nothing.
            self._imap.debug = 0

    def _create_IMAP4(self) -> imaplib.IMAP4:
        if self.ssl:
            return _IMAP4TLS(
                self.host,
                self._address,
                self.port,
                self._deadline,
                self._max_literal,
                self.ssl_context,
            )
        return _IMAP4(
            self.host,
            self._address,
            self.port,
            self._deadline,
            self._max_literal,
            self._check_port,
        )


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class IMAPMailClient(MailClient):
    """An IMAP/IMAPS session on one folder; see the module docstring."""

    def __init__(self, settings: ConnectionSettings) -> None:
        super().__init__(settings)
        self._client: _IMAPClient | None = None
        self._sizes: dict[int, int] = {}
        self.uidvalidity: int | None = None

    @property
    def _connection(self) -> _IMAPClient:
        if self._client is None:
            raise RuntimeError("not connected; use the client in a with block")
        return self._client

    def _open(self) -> None:
        self._sizes = {}
        self.uidvalidity = None
        settings = self.settings
        addresses = check_destination(
            settings.host, settings.port, settings.allowed_hosts
        )
        context = (
            self._deadline.bind(tls_context(settings))
            if settings.uses_implicit_tls or settings.starttls
            else None
        )
        limit = settings.max_message_bytes

        def connect(address: str) -> None:
            self._client = _IMAPClient(
                settings.server_hostname,
                address,
                settings.port,
                settings.uses_implicit_tls,
                context,
                self._deadline,
                None if limit is None else limit + 1,
                None if settings.uses_implicit_tls else self._check_plain_port,
            )

        self._connect_each(addresses, connect)
        client = self._connection
        if settings.starttls:
            if not client.has_capability("STARTTLS"):
                raise MailClientError(
                    ErrorKind.TLS_UNAVAILABLE,
                    f"{settings.where} does not offer STARTTLS. Use IMAPS or ask "
                    "the mail provider to enable TLS.",
                )
            client.starttls(context)
        try:
            self._login(client)
        except LoginError as error:
            raise login_error(settings, error) from error
        try:
            selected = client.select_folder(settings.folder)
        except IMAPClientError as error:
            if isinstance(error, IMAPClientAbortError) or client.folder_exists(
                settings.folder
            ):
                raise
            raise MailClientError(
                ErrorKind.FOLDER_MISSING,
                f"The folder {settings.folder!r} does not exist for "
                f"{settings.username!r} on {settings.where}.",
            ) from error
        self.uidvalidity = int(selected[b"UIDVALIDITY"])

    def _login(self, client: _IMAPClient) -> None:
        """Sign in with the settings' credential.

        A password goes with LOGIN, or AUTHENTICATE PLAIN when it is not ASCII:
        LOGIN can only carry ASCII here (imaplib encodes commands as ASCII),
        while SASL PLAIN carries UTF-8 (RFC 4616), so a password such as
        "pässwort" needs the server to offer AUTH=PLAIN. An OAuth2 token goes
        with AUTHENTICATE OAUTHBEARER or XOAUTH2, whichever the server offers.
        """
        settings = self.settings
        credential = settings.credential
        if isinstance(credential, OAuth2Token):
            self._token_login(client, credential)
            return
        password = credential.secret
        if settings.username.isascii() and password.isascii():
            client.login(settings.username, password)
            return
        if not client.has_capability("AUTH=PLAIN"):
            raise MailClientError(
                ErrorKind.LOGIN_REJECTED,
                f"The user name or password for {settings.where} contains "
                "non-ASCII characters, which IMAP LOGIN cannot carry, and the "
                "server does not offer AUTH=PLAIN. Use an ASCII-only password.",
            )
        client.plain_login(settings.username, password)

    def _token_login(self, client: _IMAPClient, token: OAuth2Token) -> None:
        settings = self.settings
        offered = {
            capability.decode("ascii", "replace").upper().removeprefix("AUTH=")
            for capability in client.capabilities()
            if capability.upper().startswith(b"AUTH=")
        }
        mechanism = token.mechanism_for(offered)
        if mechanism is None:
            raise oauth2_unavailable_error(settings)
        first = token.initial_response(
            mechanism,
            username=settings.username,
            host=settings.server_hostname,
            port=settings.port,
        )
        challenges: list[bytes] = []

        def respond(challenge: bytes) -> bytes:
            # The first continuation is empty (IMAP has no initial response
            # here); a later one carries the server's error as JSON.
            if not challenges and not challenge:
                challenges.append(b"")
                return first
            challenges.append(challenge)
            return token.failure_reply(mechanism)

        try:
            client.sasl_login(mechanism, respond)
        except LoginError as error:
            said = [describe_sasl_error(c) for c in challenges if c]
            if said:
                raise login_error(
                    settings, LoginError(f"{server_text(error)}; {said[-1]}")
                ) from error
            raise

    def _logout(self) -> None:
        if self._client is not None:
            # LOGOUT, never CLOSE: CLOSE would expunge every \Deleted message.
            self._client.logout()
            self._client = None

    def _abort(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                client.shutdown()

    def _protocol_error(self, error: Exception) -> MailClientError | None:
        if isinstance(error, _ResponseTooLargeError):
            return MailClientError(
                ErrorKind.PROTOCOL_ERROR,
                f"{self.settings.where} sent more in answer to one command than "
                "the archive reads (MAILARCHIVE_MAX_MESSAGE_BYTES), so it hung up.",
            )
        if not isinstance(error, IMAPClientError):
            return None
        # imaplib reports socket failures while sending as "abort" errors.
        cause = error.__cause__ or error.__context__
        if isinstance(error, IMAPClientAbortError) and cause is not None:
            translated = network_error(cause, self.settings, lambda: None)
            if translated is not None:
                return translated
        return answer_error(self.settings, error)

    def _starttls_peer_certificate(self, address: str) -> bytes | None:
        settings = self.settings
        connection = _IMAP4(
            settings.server_hostname, address, settings.port, self._new_deadline()
        )
        try:
            connection.starttls(unverified_context())
            return connection.sock.getpeercert(binary_form=True)
        finally:
            connection.shutdown()

    def _own_uids(self, server_ids: Sequence[str]) -> list[int]:
        """UIDs of the ids that belong to the current UIDVALIDITY, in order."""
        uids: list[int] = []
        for server_id in server_ids:
            validity, separator, uid = server_id.partition(":")
            if not separator or not validity.isdigit() or not uid.isdigit():
                raise ValueError(f"not an IMAP server id: {server_id!r}")
            if int(validity) == self.uidvalidity and int(uid) not in uids:
                uids.append(int(uid))
        return uids

    def _server_id(self, uid: int) -> str:
        return f"{self.uidvalidity}:{uid}"

    def message_count(self) -> int:
        """Return how many messages the folder holds now."""
        with self._errors():
            status: dict[bytes, Any] = self._connection.folder_status(
                self.settings.folder, [b"MESSAGES"]
            )
        return int(status[b"MESSAGES"])

    def list_messages(self) -> list[ServerListing]:
        """Return every message in the folder in UID order."""
        with self._errors():
            uids = self._connection.search("ALL")
            self._sizes = {}
            for chunk in _chunks(sorted(uids), UID_CHUNK):
                response = self._connection.fetch(chunk, [_SIZE])
                for uid, data in response.items():
                    if _SIZE in data:
                        self._sizes[int(uid)] = int(data[_SIZE])
        return [
            ServerListing(server_id=self._server_id(uid), size=size)
            for uid, size in sorted(self._sizes.items())
        ]

    def _announced_too_large(self, uid: int) -> bool:
        limit = self.settings.max_message_bytes
        return limit is not None and self._sizes.get(uid, 0) > limit

    def _fetch_groups(self, uids: list[int]) -> Iterator[list[int]]:
        """Consecutive groups for one FETCH each; too large ones alone."""
        group: list[int] = []
        group_bytes = 0
        for uid in uids:
            size = self._sizes.get(uid, FETCH_MAX_BYTES)
            if self._announced_too_large(uid):
                if group:
                    yield group
                    group, group_bytes = [], 0
                yield [uid]
                continue
            if group and (
                len(group) >= FETCH_MAX_MESSAGES or group_bytes + size > FETCH_MAX_BYTES
            ):
                yield group
                group, group_bytes = [], 0
            group.append(uid)
            group_bytes += size
        if group:
            yield group

    def _too_large(self, uid: int, seen: int) -> ServerMessage:
        size = max(self._sizes.get(uid, 0), seen)
        return ServerMessage(server_id=self._server_id(uid), size=size, raw=None)

    def _reopen(self) -> None:
        sizes = self._sizes
        self._reconnect()
        self._sizes = sizes

    def _fetch_bodies(self, group: list[int], item: str) -> dict[int, Any] | None:
        """FETCH ``item`` of ``group``; ``None`` if the server sent more than
        asked, which leaves the connection unusable."""
        with self._errors():
            try:
                return self._connection.fetch(group, [item])
            except _ResponseTooLargeError:
                return None

    def fetch(self, server_ids: Sequence[str]) -> Iterator[ServerMessage]:
        """Yield the named messages in the order given, leaving them unread.

        Several small messages share one FETCH command; at most one command's
        worth is held in memory. Ids of another UIDVALIDITY or no longer on the
        server are skipped. A message over ``max_message_bytes`` is yielded
        without its bytes (``too_large``), after a reconnection if the server
        sent more than asked (see the module docstring). Raises ``ValueError``
        for a malformed id.
        """
        limit = self.settings.max_message_bytes
        if limit is None:
            item, keys = "BODY.PEEK[]", (_BODY,)
        else:
            item, keys = f"BODY.PEEK[]<0.{limit + 1}>", (_PARTIAL_BODY, _BODY)
        pending = list(self._fetch_groups(self._own_uids(server_ids)))
        while pending:
            group = pending.pop(0)
            if len(group) == 1 and self._announced_too_large(group[0]):
                yield self._too_large(group[0], 0)
                continue
            response = self._fetch_bodies(group, item)
            if response is None:
                uidvalidity = self.uidvalidity
                self._reopen()
                if self.uidvalidity != uidvalidity:
                    return  # the remaining ids name nothing any more
                if len(group) == 1:
                    yield self._too_large(group[0], (limit or 0) + 1)
                else:
                    pending[:0] = [[uid] for uid in group]
                continue
            for uid in group:
                data = response.get(uid) or {}
                body = next((data[key] for key in keys if key in data), None)
                if body is None:
                    continue
                raw = bytes(body)
                if limit is not None and len(raw) > limit:
                    yield self._too_large(uid, len(raw))
                    continue
                yield ServerMessage(
                    server_id=self._server_id(uid), size=len(raw), raw=raw
                )

    def delete(self, server_ids: Sequence[str]) -> None:
        """Flag the named messages ``\\Deleted`` and expunge exactly those.

        Safe to re-run: unknown ids and ids of another UIDVALIDITY are skipped.
        """
        uids = self._own_uids(server_ids)
        if not uids:
            return
        client = self._connection
        with self._errors():
            for chunk in _chunks(uids, UID_CHUNK):
                client.add_flags(chunk, [DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                for chunk in _chunks(uids, UID_CHUNK):
                    client.uid_expunge(chunk)
                return
            self._expunge_without_uidplus(set(uids))

    def _expunge_without_uidplus(self, uids: set[int]) -> None:
        # A plain EXPUNGE removes every \Deleted message, so messages flagged
        # by someone else are unflagged around it. Another client flagging a
        # message during these few commands can still lose it; servers with
        # UIDPLUS are not affected.
        client = self._connection
        others = sorted(set(client.search(["DELETED"])) - uids)
        for chunk in _chunks(others, UID_CHUNK):
            client.remove_flags(chunk, [DELETED], silent=True)
        try:
            client.expunge()
        finally:
            for chunk in _chunks(others, UID_CHUNK):
                client.add_flags(chunk, [DELETED], silent=True)


for _protocol in (
    Protocol(
        name="imap",
        label="IMAP",
        family="imap",
        default_port=143,
        implicit_tls=False,
        reads_folders=True,
        deletes_at_logout=False,
        client_class=IMAPMailClient,
    ),
    Protocol(
        name="imaps",
        label="IMAPS",
        family="imap",
        default_port=993,
        implicit_tls=True,
        reads_folders=True,
        deletes_at_logout=False,
        client_class=IMAPMailClient,
    ),
):
    register(_protocol)
