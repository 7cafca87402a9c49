"""Time limits for a whole session with a mail server, kept by its sockets.

A timeout on every read does not stop a server that sends one byte every few
seconds: each read succeeds just in time. So every socket of a session asks
one ``Deadline`` before it waits, and waits at most

* the per-read timeout,
* what is left of the session's overall allowance (when it has one), and
* what is left of the current command's allowance: the per-read timeout plus
  one second for every ``MIN_TRANSFER_RATE`` bytes its answer brought so far.
  A healthy server sending a large message earns time as fast as it uses it;
  one that trickles runs out after about the per-read timeout.

Running out raises ``DeadlineExceededError``, a ``TimeoutError``, so protocol
libraries treat it like any other timeout. Plain and TLS sockets are both
covered, so poplib and imaplib need no changes: a session's TLS context hands
out sockets bound to its deadline (see ``Deadline.bind``).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

# Bytes a second an answer must average, once the per-read timeout of grace is
# used up. Far below any working connection, far above a deliberate trickle.
MIN_TRANSFER_RATE = 1024
# A timeout that fires this close to an allowance's end is that allowance's
# end (poll timers round to milliseconds).
_SLACK = 0.01


class DeadlineExceededError(TimeoutError):
    """A session or one of its commands ran out of time.

    ``whole_session`` tells the two apart: the session's overall allowance, or
    a command whose answer came too slowly.
    """

    def __init__(self, message: str, *, whole_session: bool) -> None:
        super().__init__(message)
        self.whole_session = whole_session


class Deadline:
    """The time allowances of one session (one client, any reconnections)."""

    def __init__(self, *, read_timeout: float, session_seconds: float | None) -> None:
        now = time.monotonic()
        self.read_timeout = read_timeout
        self.session_seconds = session_seconds
        self._session_ends = None if session_seconds is None else now + session_seconds
        self._command_started = now
        self._command_bytes = 0

    def command_sent(self) -> None:
        """Start the allowance of the answer to a command just sent."""
        self._command_started = time.monotonic()
        self._command_bytes = 0

    def received(self, count: int) -> None:
        self._command_bytes += count

    def _left(self, now: float) -> tuple[float, float | None]:
        command = (
            self._command_started
            + self.read_timeout
            + self._command_bytes / MIN_TRANSFER_RATE
            - now
        )
        session = None if self._session_ends is None else self._session_ends - now
        return command, session

    def check(self) -> None:
        """Raise ``DeadlineExceededError`` if an allowance is used up.

        A command whose answer has not begun after the per-read timeout is an
        ordinary ``TimeoutError``.
        """
        command, session = self._left(time.monotonic())
        if session is not None and session <= _SLACK:
            raise DeadlineExceededError(
                f"the session took more than its {self.session_seconds:g} seconds",
                whole_session=True,
            )
        if command <= _SLACK:
            if not self._command_bytes:
                # Silence all along: an ordinary timeout.
                raise TimeoutError("timed out")
            raise DeadlineExceededError(
                f"an answer came slower than {MIN_TRANSFER_RATE} bytes a second "
                f"after {self.read_timeout:g} seconds",
                whole_session=False,
            )

    def timeout(self) -> float:
        """The longest the next wait may take; raises when there is no time left."""
        # Called before every read of the socket: the common case is worked
        # out once, and check() only runs when an allowance is nearly used up.
        command, session = self._left(time.monotonic())
        longest = self.read_timeout if command > self.read_timeout else command
        if session is not None and session < longest:
            longest = session
        if longest <= _SLACK:
            self.check()
            return _SLACK
        return longest

    def connect(self, address: str, port: int) -> socket.socket:
        """Open a TCP connection whose every wait respects this deadline."""
        try:
            plain = socket.create_connection((address, port), self.timeout())
        except TimeoutError:
            self.check()
            raise
        sock = _DeadlineSocket(
            plain.family, plain.type, plain.proto, fileno=plain.detach()
        )
        sock.deadline = self
        # The server speaks first: its greeting is the first answer.
        self.command_sent()
        sock.settimeout(self.timeout())
        return sock

    def bind(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """Make ``context`` wrap sockets into ones that respect this deadline.

        The context must belong to this session alone. Returns ``context``.
        """
        context.sslsocket_class = type(
            "_SessionTLSSocket", (_DeadlineTLSSocket,), {"deadline": self}
        )
        return context


class _Waits:
    """The socket calls that wait, each bounded by the socket's deadline."""

    __slots__ = ()
    deadline: Deadline | None = None

    def _before_wait(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.timeout())  # type: ignore[attr-defined]

    def _timed_out(self) -> None:
        if self.deadline is not None:
            self.deadline.check()

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._before_wait()
        try:
            data = super().recv(*args, **kwargs)  # type: ignore[misc]
        except TimeoutError:
            self._timed_out()
            raise
        if self.deadline is not None:
            self.deadline.received(len(data))
        return data

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._before_wait()
        try:
            count = super().recv_into(*args, **kwargs)  # type: ignore[misc]
        except TimeoutError:
            self._timed_out()
            raise
        if self.deadline is not None:
            self.deadline.received(count)
        return count

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._before_wait()
        try:
            return super().send(*args, **kwargs)  # type: ignore[misc]
        except TimeoutError:
            self._timed_out()
            raise

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        if self.deadline is not None:
            # A new command: the time the session sat idle since the answer
            # to the last one (while the archive was busy) is not the
            # server's to answer for.
            self.deadline.command_sent()
        self._before_wait()
        try:
            super().sendall(*args, **kwargs)  # type: ignore[misc]
        except TimeoutError:
            self._timed_out()
            raise
        if self.deadline is not None:
            self.deadline.command_sent()


class _DeadlineSocket(_Waits, socket.socket):
    """A TCP socket bounded by a session's deadline."""


class _DeadlineTLSSocket(_Waits, ssl.SSLSocket):
    """A TLS socket bounded by a session's deadline (see ``Deadline.bind``)."""
