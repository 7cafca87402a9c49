"""The interface shared by the POP3 and IMAP clients.

A client is used as a context manager::

    with open_client(settings) as client:
        for listing in client.list_messages(): ...
        for message in client.fetch(ids): ...   # archive each, commit
        client.delete(archived_ids)

Entering connects, verifies TLS, logs in and (IMAP) opens the folder; leaving
always says goodbye and closes the socket. Every failure surfaces as a
``MailClientError`` whose ``kind`` is a short code and whose text tells an
administrator what to fix. Nothing here knows about Django.

A server is not trusted to be honest or quick. Every wait of a session is
bounded (``accounts.clients.deadline``), and no message is read past
``max_message_bytes``, whatever size the server announced: such a message is
yielded as too large, without its bytes, and stays on the server. When that
means hanging up in the middle of a message, the client opens a new session
by itself and carries on where it was.

"Raw" always means the message bytes exactly as the server transmitted them
(after undoing the protocol's own framing such as POP3 dot-stuffing). Servers
send CRLF line endings, so a message stored with LF on the server arrives with
CRLF; the archive keeps what arrived.
"""

from __future__ import annotations

import abc
import ast
import contextlib
import enum
import re
import select
import socket
import ssl
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from cryptography import x509

from accounts.clients.credentials import Credential, OAuth2Token, Password
from accounts.clients.deadline import (
    MIN_TRANSFER_RATE,
    Deadline,
    DeadlineExceededError,
)
from accounts.clients.protocols import (
    Protocol,
    protocol_get,
    protocol_names,
    protocols,
)

# OpenSSL verify codes for a certificate that does not name the host.
_NAME_MISMATCH_CODES = frozenset({62, 64})


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to reach one mail account. Validated on creation.

    ``credential`` is how the client signs in (``Password`` or
    ``OAuth2Token``); ``password`` alone is shorthand for a ``Password``.
    """

    protocol: str
    host: str
    port: int
    username: str
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    starttls: bool = False
    timeout: float = 30.0
    allowed_hosts: tuple[str, ...] = ()
    ca_file: str | None = None
    # Seconds one session may take in all (None: only per-read timeouts and
    # the per-command allowance apply).
    deadline: float | None = None
    # Messages larger than this are not read (None: no limit).
    max_message_bytes: int | None = None
    credential: Credential | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        names = protocol_names()
        if self.protocol not in names:
            raise ValueError(
                f"protocol must be one of {', '.join(names)}, not {self.protocol!r}"
            )
        if self.credential is None:
            object.__setattr__(self, "credential", Password(self.password))
        elif self.password:
            raise ValueError("give either a password or a credential, not both")
        if self.starttls and self.spec.implicit_tls:
            raise ValueError(f"{self.protocol} is TLS from the start; no STARTTLS")
        if not self.host.strip():
            raise ValueError("host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")
        if self.max_message_bytes is not None and self.max_message_bytes < 1:
            raise ValueError("max_message_bytes must be positive")

    @property
    def spec(self) -> Protocol:
        """The registry's entry for ``protocol``."""
        return protocol_get(self.protocol)

    @property
    def uses_implicit_tls(self) -> bool:
        return self.spec.implicit_tls

    @property
    def server_hostname(self) -> str:
        """The name the certificate must match: the host as the admin typed it."""
        return self.host.strip().strip("[]").rstrip(".")

    @property
    def where(self) -> str:
        host = self.server_hostname
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass(frozen=True)
class ServerListing:
    """A message on the server: its stable id and its size in bytes."""

    server_id: str
    size: int


@dataclass(frozen=True)
class ServerMessage:
    """A message fetched from the server, raw bytes as transmitted.

    ``raw`` is ``None`` when the message is larger than the settings'
    ``max_message_bytes``: it was not read (``size`` is then at least what the
    server announced or sent beyond the limit), and must stay on the server.
    """

    server_id: str
    size: int
    raw: bytes | None = field(repr=False)

    @property
    def too_large(self) -> bool:
        return self.raw is None


class ErrorKind(enum.StrEnum):
    UNKNOWN_HOST = "unknown_host"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_FAILED = "connection_failed"
    TIMEOUT = "timeout"
    CERTIFICATE_UNTRUSTED = "certificate_untrusted"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    LOGIN_REJECTED = "login_rejected"
    FOLDER_MISSING = "folder_missing"
    BLOCKED_DESTINATION = "blocked_destination"
    TLS_UNAVAILABLE = "tls_unavailable"
    PROTOCOL_ERROR = "protocol_error"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INVALID_SETTING = "invalid_setting"
    # The server refused an OAuth2 access token, or offers no way to use one.
    TOKEN_REJECTED = "token_rejected"
    OAUTH2_UNAVAILABLE = "oauth2_unavailable"
    # The port speaks the protocol with TLS from the start while the account
    # expects plain text (STARTTLS or none), or the other way round.
    PORT_SPEAKS_TLS = "port_speaks_tls"
    PORT_SPEAKS_PLAIN = "port_speaks_plain"


class MailClientError(Exception):
    """A mail server could not be used; ``str()`` says what an admin can do.

    ``detail`` holds only the facts behind the kind that no sentence about the
    kind can know: the server's own words, the certificate it presented, the
    TLS library's reason. It carries no advice, so a sentence built from the
    kind (in the reader's language) plus the detail says each thing once.
    """

    def __init__(self, kind: ErrorKind, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


def tls_context(settings: ConnectionSettings) -> ssl.SSLContext:
    """Return a verifying TLS context: the system store plus ``ca_file``."""
    context = ssl.create_default_context()
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise MailClientError(
                ErrorKind.CERTIFICATE_UNTRUSTED,
                f"The CA bundle {settings.ca_file} cannot be loaded: {error}.",
                detail=f"{settings.ca_file}: {error}",
            ) from error
    return context


def unverified_context() -> ssl.SSLContext:
    """A context that accepts any certificate.

    Only for reading a rejected certificate so the error can describe it; no
    credentials or mail ever travel over such a connection.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def describe_certificate(der: bytes) -> str:
    """Summarise a DER certificate: subject, issuer, names and expiry."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [*san.value.get_values_for_type(x509.DNSName)] + [
            str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        names = []
    return (
        f"subject {cert.subject.rfc4514_string()}, "
        f"issuer {cert.issuer.rfc4514_string()}, "
        f"valid for {', '.join(names) or 'no alternative names'}, "
        f"expires {cert.not_valid_after_utc:%Y-%m-%d}"
    )


def network_error(
    error: BaseException,
    settings: ConnectionSettings,
    peer_certificate: Callable[[], bytes | None],
) -> MailClientError | None:
    """Translate a socket or TLS error; ``None`` if *error* is neither.

    ``peer_certificate`` is called only for certificate failures, to describe
    the certificate the server presented.
    """
    where = settings.where
    if isinstance(error, ssl.SSLCertVerificationError):
        der = peer_certificate()
        seen = describe_certificate(der) if der else "certificate not retrievable"
        if error.verify_code in _NAME_MISMATCH_CODES:
            return MailClientError(
                ErrorKind.HOSTNAME_MISMATCH,
                f"The certificate of {where} is not valid for the name "
                f"{settings.server_hostname!r} ({seen}). Use a host name the "
                "certificate covers.",
                detail=seen,
            )
        return MailClientError(
            ErrorKind.CERTIFICATE_UNTRUSTED,
            f"The certificate of {where} is not trusted: {error.verify_message} "
            f"({seen}). Install the issuing CA in the system trust store or the "
            "CA bundle named by SSL_CERT_FILE.",
            detail=f"{error.verify_message} ({seen})",
        )
    if isinstance(error, ssl.SSLError):
        return MailClientError(
            ErrorKind.PROTOCOL_ERROR,
            f"The TLS handshake with {where} failed ({error.reason or error}). "
            "Check that the protocol matches the port: IMAPS and POP3S speak TLS "
            "from the start, IMAP and POP3 use STARTTLS.",
            detail=str(error.reason or error),
        )
    if isinstance(error, DeadlineExceededError):
        if error.whole_session:
            why = (
                f"{where} did not finish within {settings.deadline:g} seconds, "
                "the most one session may take"
            )
        else:
            why = (
                f"{where} sent its answer too slowly: less than "
                f"{MIN_TRANSFER_RATE} bytes a second once {settings.timeout:g} "
                "seconds had passed"
            )
        return MailClientError(
            ErrorKind.DEADLINE_EXCEEDED,
            f"{why}, so the archive hung up. Check the mail server's load and "
            "the network in between.",
            detail=why,
        )
    if isinstance(error, ConnectionRefusedError):
        return MailClientError(
            ErrorKind.CONNECTION_REFUSED,
            f"{where} refused the connection. Check the host name and port and "
            "that the mail server is running.",
        )
    if isinstance(error, TimeoutError):
        return MailClientError(
            ErrorKind.TIMEOUT,
            f"{where} did not answer within {settings.timeout:g} seconds. Check "
            "the host name, the port and any firewall in between.",
        )
    if isinstance(error, socket.gaierror):
        return MailClientError(
            ErrorKind.UNKNOWN_HOST,
            f"The mail server name {settings.server_hostname!r} cannot be "
            f"resolved ({error.strerror}).",
        )
    if isinstance(error, OSError):
        return MailClientError(
            ErrorKind.CONNECTION_FAILED,
            f"The connection to {where} failed: {error.strerror or error}.",
            detail=str(error.strerror or error),
        )
    return None


def server_text(value: object) -> str:
    """Render a server response (often bytes, or text holding a bytes repr,
    as imaplib produces) as plain words for an error message."""
    if isinstance(value, BaseException) and value.args:
        value = value.args[0]
    if value is None:
        return ""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = _BYTES_REPR.sub(_unrepr, str(value))
    return text.strip().removeprefix("-ERR").strip().rstrip(".")


_BYTES_REPR = re.compile(r"(?<!\w)b'(?:[^'\\]|\\.)*'" r'|(?<!\w)b"(?:[^"\\]|\\.)*"')


def _unrepr(match: re.Match[str]) -> str:
    try:
        value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError):
        return match.group(0)
    return value.decode("utf-8", "replace")


def answer_error(settings: ConnectionSettings, error: object) -> MailClientError:
    """The error for a server answer the protocol library refused."""
    text = server_text(error)
    if text:
        message = f"{settings.where} answered with an error: {text}."
    else:
        message = (
            f"{settings.where} answered with something that is not "
            f"{settings.spec.label}. Check that the port is the "
            f"{settings.spec.label} port (usually {settings.spec.default_port})."
        )
    return MailClientError(ErrorKind.PROTOCOL_ERROR, message, detail=text)


# Response codes (RFC 3206 for POP3, RFC 5530 for IMAP) saying a login failed
# for a passing reason, not because of the credentials.
_TEMPORARY_CODES = ("[IN-USE]", "[SYS/TEMP]", "[UNAVAILABLE]", "[INUSE]")


def login_error(settings: ConnectionSettings, error: Exception) -> MailClientError:
    """The error for a refused login, telling bad credentials from a busy server."""
    text = server_text(error)
    if any(code in text.upper() for code in _TEMPORARY_CODES):
        return MailClientError(
            ErrorKind.PROTOCOL_ERROR,
            f"{settings.where} cannot open the mailbox of {settings.username!r} "
            f"right now ({text}). This is usually temporary, for example while "
            "another session holds the mailbox; the next poll tries again.",
            detail=text,
        )
    if isinstance(settings.credential, OAuth2Token):
        return MailClientError(
            ErrorKind.TOKEN_REJECTED,
            f"{settings.where} refused the OAuth2 access token for "
            f"{settings.username!r} ({text}). Check that the mailbox allows IMAP "
            "or POP access and that the app was granted the mail scopes.",
            detail=text,
        )
    return MailClientError(
        ErrorKind.LOGIN_REJECTED,
        f"{settings.where} rejected the login of {settings.username!r} "
        f"({text}). Check the user name and password.",
        detail=text,
    )


def oauth2_unavailable_error(settings: ConnectionSettings) -> MailClientError:
    """The error for a server that offers neither OAUTHBEARER nor XOAUTH2."""
    return MailClientError(
        ErrorKind.OAUTH2_UNAVAILABLE,
        f"{settings.where} offers no OAuth2 sign-in (neither SASL OAUTHBEARER "
        "nor XOAUTH2). Sign in with a password, or use the provider's own "
        "mail server name.",
    )


def has_control_character(text: str) -> bool:
    """Whether *text* holds a C0 or C1 control character or DEL.

    A line break in a user name would reach the server as a second command;
    the other control characters have no business in a command either.
    """
    return any(unicodedata.category(char) == "Cc" for char in text)


def unsafe_setting_error(settings: ConnectionSettings) -> MailClientError | None:
    """The error for settings that must not be sent to a server, else ``None``."""
    credential = settings.credential
    secret_label = "password" if isinstance(credential, Password) else "access token"
    fields = [
        ("host name", settings.host),
        ("user name", settings.username),
        ("folder", settings.folder),
    ]
    if credential is not None:
        fields += [(secret_label, secret) for secret in credential.secrets]
    for label, value in fields:
        if has_control_character(value):
            return MailClientError(
                ErrorKind.INVALID_SETTING,
                f"The {label} for {settings.where} contains a control character "
                "(such as a line break), which the server would read as part of "
                "another command; nothing was sent. Enter it again without one.",
            )
    return None


def peer_certificate_implicit_tls(address: str, port: int, timeout: float) -> bytes:
    """Return the DER certificate a TLS-from-the-start server presents."""
    with (
        socket.create_connection((address, port), timeout=timeout) as sock,
        unverified_context().wrap_socket(sock) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("no peer certificate")
    return der


# How long a plain connection waits for the server's greeting before asking,
# over a second connection, whether the port speaks TLS instead. The greeting
# itself is still awaited for the whole timeout when the port does not.
GREETING_WAIT = 2.0
# Greetings that give a plain-text protocol family away.
_PLAIN_GREETINGS = {
    "imap": (b"* OK", b"* PREAUTH", b"* BYE"),
    "pop": (b"+OK", b"-ERR"),
}
_TLS_HANDSHAKE_RECORD = 0x16


def greeting_wait(settings: ConnectionSettings) -> float:
    """Seconds to wait for a greeting before suspecting the port speaks TLS."""
    return min(GREETING_WAIT, settings.timeout / 4)


def counterpart(spec: Protocol) -> Protocol:
    """The protocol of the same family on the other side of TLS (IMAP: IMAPS)."""
    for other in protocols():
        if other.family == spec.family and other.implicit_tls != spec.implicit_tls:
            return other
    raise KeyError(spec.name)


def port_mismatch_error(
    settings: ConnectionSettings, *, speaks_tls: bool, greeting: str = ""
) -> MailClientError:
    """The error for a port that speaks the account's protocol on the other side
    of TLS: IMAPS where IMAP was expected, IMAP where IMAPS was, and so on."""
    spec = settings.spec
    other = counterpart(spec)
    return MailClientError(
        ErrorKind.PORT_SPEAKS_TLS if speaks_tls else ErrorKind.PORT_SPEAKS_PLAIN,
        f"Port {settings.port} of {settings.server_hostname} speaks {other.label}, "
        f"not {spec.label}. Choose {other.label} as the protocol, or enter the "
        f"{spec.label} port (usually {spec.default_port}).",
        detail=greeting,
    )


def speaks_tls(address: str, port: int, timeout: float) -> bool:
    """Whether a TLS handshake with *address* succeeds (nothing is verified,
    nothing but the handshake is sent)."""
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as sock,
            unverified_context().wrap_socket(sock),
        ):
            return True
    except OSError:
        return False


def plain_greeting(address: str, port: int, timeout: float, family: str) -> str:
    """The first line *address* sends unasked, if it is a greeting of the
    protocol *family* in plain text; empty otherwise."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            first = sock.recv(512)
    except OSError:
        return ""
    if not first.startswith(_PLAIN_GREETINGS.get(family, ())):
        return ""
    line = first.split(b"\n", 1)[0].decode("ascii", "replace")
    return "".join(c for c in line if c.isprintable()).strip()[:200]


def plain_port_check(sock: socket.socket, settings: ConnectionSettings) -> None:
    """Raise ``port_speaks_tls`` if the server on this plain connection speaks
    TLS. Consumes nothing the greeting is made of.

    A TLS server says nothing until the client's handshake, so a port that
    stays silent for ``greeting_wait`` is asked over a second connection
    whether it speaks TLS; if not, the caller goes on waiting for the greeting.
    """
    wait = greeting_wait(settings)
    readable, _, _ = select.select([sock], [], [], wait)
    if readable:
        try:
            first = socket.socket.recv(sock, 1, socket.MSG_PEEK)
        except OSError:
            return
        if first and first[0] == _TLS_HANDSHAKE_RECORD:
            raise port_mismatch_error(settings, speaks_tls=True)
        return
    if speaks_tls(sock.getpeername()[0], settings.port, wait):
        raise port_mismatch_error(settings, speaks_tls=True)


class MailClient(abc.ABC):
    """One logged-in session with a mail server (POP3 or IMAP).

    Server ids are stable across sessions: POP3 UIDLs, IMAP
    ``"<uidvalidity>:<uid>"``. Ids the server does not (or no longer) hold are
    skipped by ``fetch`` and ``delete``.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._address: str | None = None
        # Set once the connection is in an unknown state; then the session is
        # closed without a goodbye, which could only wait for another timeout.
        self._broken = False
        self._deadline = self._new_deadline()

    def _new_deadline(self) -> Deadline:
        return Deadline(
            read_timeout=self.settings.timeout,
            session_seconds=self.settings.deadline,
        )

    def __enter__(self) -> Self:
        self._broken = False
        self._address = None
        unsafe = unsafe_setting_error(self.settings)
        if unsafe is not None:
            raise unsafe
        self._deadline = self._new_deadline()
        try:
            with self._errors():
                self._open()
        except BaseException:
            self._abort()
            raise
        return self

    def _reconnect(self) -> None:
        """Hang up and open a new session, within the same deadline.

        For a connection left in the middle of an answer the client refused to
        read to its end. Raises ``MailClientError`` if the server cannot be
        reached or logged in to again; the client is then closed.
        """
        self._abort()
        self._broken = False
        try:
            with self._errors():
                self._open()
        except BaseException:
            self._abort()
            self._broken = True
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Log out and close; raise ``MailClientError`` if a clean goodbye failed.

        After an error inside the block the goodbye is still attempted (POP3
        commits deletions only then) but its own failure is not raised.
        """
        try:
            if not self._broken:
                if exc_type is None:
                    with self._errors():
                        self._logout()
                else:
                    with contextlib.suppress(Exception):
                        self._logout()
        finally:
            self._abort()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn library and socket errors into ``MailClientError``."""
        try:
            yield
        except MailClientError:
            raise
        except Exception as error:
            translated = network_error(error, self.settings, self._peer_certificate)
            if translated is None:
                translated = self._protocol_error(error)
            if translated is None:
                raise
            if translated.kind not in (
                ErrorKind.LOGIN_REJECTED,
                ErrorKind.TOKEN_REJECTED,
                ErrorKind.OAUTH2_UNAVAILABLE,
                ErrorKind.FOLDER_MISSING,
            ):
                self._broken = True
            raise translated from error

    def _connect_each(
        self, addresses: Sequence[str], connect: Callable[[str], None]
    ) -> None:
        """Call *connect* with each address (already vetted) until one works."""
        for index, address in enumerate(addresses):
            self._address = address
            try:
                connect(address)
                return
            except ssl.SSLCertVerificationError:
                raise
            except ssl.SSLError as error:
                if self.settings.uses_implicit_tls:
                    # A plain-text greeting where the handshake was expected.
                    greeting = plain_greeting(
                        address,
                        self.settings.port,
                        greeting_wait(self.settings),
                        self.settings.spec.family,
                    )
                    if greeting:
                        raise port_mismatch_error(
                            self.settings, speaks_tls=False, greeting=greeting
                        ) from error
                raise
            except OSError:
                # Another address of the same name may be reachable.
                if index == len(addresses) - 1:
                    raise

    def _check_plain_port(self, sock: socket.socket) -> None:
        """Called on each plain connection before its greeting is read."""
        plain_port_check(sock, self.settings)

    def _peer_certificate(self) -> bytes | None:
        if self._address is None:
            return None
        try:
            if self.settings.uses_implicit_tls:
                return peer_certificate_implicit_tls(
                    self._address, self.settings.port, self.settings.timeout
                )
            return self._starttls_peer_certificate(self._address)
        except Exception:
            return None

    @abc.abstractmethod
    def _open(self) -> None:
        """Forget any earlier session, then connect, secure the connection,
        log in and open the mailbox."""

    @abc.abstractmethod
    def _logout(self) -> None:
        """Say goodbye to the server (POP3 QUIT commits deletions)."""

    @abc.abstractmethod
    def _abort(self) -> None:
        """Close the socket without a word. Safe to call repeatedly."""

    @abc.abstractmethod
    def _protocol_error(self, error: Exception) -> MailClientError | None:
        """Translate an error of the protocol library, ``None`` if unknown."""

    @abc.abstractmethod
    def _starttls_peer_certificate(self, address: str) -> bytes | None:
        """Read the certificate offered after STARTTLS, without verifying it."""

    @abc.abstractmethod
    def message_count(self) -> int:
        """Return how many messages the mailbox holds now."""

    @abc.abstractmethod
    def list_messages(self) -> list[ServerListing]:
        """Return every message in the mailbox, oldest first."""

    @abc.abstractmethod
    def fetch(self, server_ids: Sequence[str]) -> Iterator[ServerMessage]:
        """Yield the named messages one at a time, without marking them read."""

    @abc.abstractmethod
    def delete(self, server_ids: Sequence[str]) -> None:
        """Delete exactly the named messages from the server."""
