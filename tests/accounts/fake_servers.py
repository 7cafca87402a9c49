"""POP3 and IMAP servers on loopback that lie about sizes or send slowly.

A real server cannot be made to announce 100 bytes and send 200 MB, or to
send one byte a second, so these small fakes do (threads and sockets, one
thread per connection). They speak just enough of each protocol for the
clients in ``accounts.clients``, keep one mailbox across connections (so a
client that reconnects sees the same mail), and record every command and how
many message bytes they managed to send before the client hung up.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

_LINE = b"x" * 78 + b"\r\n"
_BLOCK = _LINE * 800  # 64,000 bytes, made once


def lazy_message(total: int) -> Iterator[bytes]:
    """Exactly ``total`` bytes of a plain message, made as they are sent."""
    head = b"Subject: bigger than announced\r\n\r\n"
    yield head[:total]
    left = total - len(head)
    while left > 0:
        chunk = _BLOCK if left >= len(_BLOCK) else _BLOCK[:left]
        yield chunk
        left -= len(chunk)


@dataclass
class FakeMessage:
    """A message on a fake server.

    ``announced`` is what LIST or RFC822.SIZE say (by default the true size);
    ``streamed`` makes the server send that many bytes instead of ``raw``.
    """

    raw: bytes = b""
    announced: int | None = None
    streamed: int = 0
    uid: int = 0

    @property
    def listed_size(self) -> int:
        return len(self.raw) if self.announced is None else self.announced

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """The bytes the server sends, at most ``limit`` of them."""
        source = lazy_message(self.streamed) if self.streamed else iter([self.raw])
        left = limit
        for chunk in source:
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            if chunk:
                yield chunk
            if left == 0:
                return

    def size_sent(self, limit: int | None = None) -> int:
        size = self.streamed or len(self.raw)
        return size if limit is None else min(size, limit)


@dataclass
class Mailbox:
    """The mail a fake server holds; shared by all its connections."""

    messages: list[FakeMessage]
    uidvalidity: int = 7
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for number, message in enumerate(self.messages, start=1):
            message.uid = message.uid or number


class Peer:
    """One client connection as the fake server sees it."""

    def __init__(self, conn: socket.socket, server: FakeServer, number: int) -> None:
        self.conn = conn
        self.server = server
        self.number = number
        self._file = conn.makefile("rb")

    def readline(self) -> bytes:
        return self._file.readline(65536)

    def record(self, command: str) -> None:
        with self.server.lock:
            self.server.commands.append((self.number, command))

    def send(self, data: bytes, *, interval: float = 0.0) -> None:
        """Send ``data``; with ``interval``, one byte at a time."""
        if not interval:
            self.conn.sendall(data)
            return
        for index in range(len(data)):
            self.conn.sendall(data[index : index + 1])
            time.sleep(interval)

    def send_message(self, chunks: Iterator[bytes], *, interval: float = 0.0) -> None:
        """Send message bytes, counting them as they go out."""
        for chunk in chunks:
            self.send(chunk, interval=interval)
            with self.server.lock:
                self.server.message_bytes_sent += len(chunk)

    def close(self) -> None:
        for closing in (self._file.close, self.conn.close):
            with contextlib.suppress(OSError):
                closing()


Session = Callable[[Peer], None]


class FakeServer:
    """A loopback TCP server running ``session(peer)`` for each connection."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lock = threading.Lock()
        self.commands: list[tuple[int, str]] = []
        self.connections = 0
        self.message_bytes_sent = 0
        self._peers: list[Peer] = []
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self.lock:
                self.connections += 1
                peer = Peer(conn, self, self.connections)
                self._peers.append(peer)
            threading.Thread(target=self._serve, args=(peer,), daemon=True).start()

    def _serve(self, peer: Peer) -> None:
        # The client hanging up mid-answer is what some tests want.
        with contextlib.suppress(OSError):
            self.session(peer)
        peer.close()

    def verbs(self, connection: int | None = None) -> list[str]:
        """The commands received (on one connection, or all), as sent."""
        with self.lock:
            return [c for n, c in self.commands if connection in (None, n)]

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self.lock:
            peers = list(self._peers)
        for peer in peers:
            peer.close()


def pop3_session(
    mailbox: Mailbox, *, greeting_interval: float = 0.0, retr_interval: float = 0.0
) -> Session:
    """A POP3 server with UIDL; deletions apply at QUIT, as RFC 1939 says.

    ``greeting_interval`` and ``retr_interval`` send the greeting or message
    bytes one byte at a time, that many seconds apart.
    """

    def session(peer: Peer) -> None:
        with mailbox.lock:
            messages = list(mailbox.messages)  # numbers are fixed per session
        deleted: set[int] = set()
        peer.send(b"+OK fake POP3 ready\r\n", interval=greeting_interval)
        while line := peer.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            peer.record(command)
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            live = [n for n in range(1, len(messages) + 1) if n not in deleted]
            if verb in ("USER", "PASS", "NOOP", "RSET"):
                peer.send(b"+OK\r\n")
            elif verb == "CAPA":
                peer.send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n")
            elif verb == "STAT":
                total = sum(messages[n - 1].listed_size for n in live)
                peer.send(b"+OK %d %d\r\n" % (len(live), total))
            elif verb == "LIST":
                lines = b"".join(
                    b"%d %d\r\n" % (n, messages[n - 1].listed_size) for n in live
                )
                peer.send(b"+OK\r\n" + lines + b".\r\n")
            elif verb == "UIDL":
                lines = b"".join(
                    b"%d uid-%d\r\n" % (n, messages[n - 1].uid) for n in live
                )
                peer.send(b"+OK\r\n" + lines + b".\r\n")
            elif verb == "RETR":
                message = messages[int(argument) - 1]
                peer.send(b"+OK\r\n")
                stuffed = (re.sub(rb"(?m)^\.", b"..", c) for c in message.chunks())
                peer.send_message(stuffed, interval=retr_interval)
                peer.send(b".\r\n")
            elif verb == "DELE":
                deleted.add(int(argument))
                peer.send(b"+OK\r\n")
            elif verb == "QUIT":
                gone = [messages[n - 1] for n in deleted]
                with mailbox.lock:
                    mailbox.messages = [m for m in mailbox.messages if m not in gone]
                peer.send(b"+OK bye\r\n")
                return
            else:
                peer.send(b"-ERR unknown command\r\n")

    return session


def _uid_set(text: str) -> set[int]:
    uids: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition(":")
        uids.update(range(int(first), int(last or first) + 1))
    return uids


def imap_session(
    mailbox: Mailbox,
    *,
    greeting_interval: float = 0.0,
    body_interval: float = 0.0,
    ignore_partial: bool = False,
) -> Session:
    """An IMAP server with UIDPLUS for one folder, INBOX.

    It answers ``BODY.PEEK[]<0.N>`` with at most N bytes, unless
    ``ignore_partial``: then it announces and sends every byte it has.
    """
    capability = b"IMAP4rev1 UIDPLUS"

    def session(peer: Peer) -> None:
        peer.send(b"* OK fake IMAP ready\r\n", interval=greeting_interval)
        flagged: set[int] = set()
        while line := peer.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = command.partition(" ")
            peer.record(rest)
            words = rest.split(" ")
            verb = words[0].upper()
            if verb == "UID":
                verb, words = words[1].upper(), words[1:]
            with mailbox.lock:
                messages = list(mailbox.messages)
            ok = tag.encode() + b" OK done\r\n"
            if verb == "CAPABILITY":
                peer.send(b"* CAPABILITY " + capability + b"\r\n" + ok)
            elif verb in ("LOGIN", "NOOP"):
                peer.send(ok)
            elif verb in ("SELECT", "EXAMINE"):
                next_uid = max((m.uid for m in messages), default=0) + 1
                peer.send(
                    b"* %d EXISTS\r\n* OK [UIDVALIDITY %d] ok\r\n"
                    b"* OK [UIDNEXT %d] ok\r\n* FLAGS (\\Deleted \\Seen)\r\n"
                    % (len(messages), mailbox.uidvalidity, next_uid)
                    + tag.encode()
                    + b" OK [READ-WRITE] done\r\n"
                )
            elif verb == "STATUS":
                peer.send(b"* STATUS INBOX (MESSAGES %d)\r\n" % len(messages) + ok)
            elif verb == "SEARCH":
                uids = b" ".join(b"%d" % m.uid for m in messages)
                peer.send(b"* SEARCH " + uids + b"\r\n" + ok)
            elif verb == "FETCH":
                wanted = _uid_set(words[1])
                items = " ".join(words[2:]).upper()
                partial = re.search(r"BODY\.PEEK\[\]<0\.(\d+)>", items)
                for seq, message in enumerate(messages, start=1):
                    if message.uid not in wanted:
                        continue
                    head = b"* %d FETCH (UID %d" % (seq, message.uid)
                    if "RFC822.SIZE" in items:
                        peer.send(head + b" RFC822.SIZE %d)\r\n" % message.listed_size)
                        continue
                    limit = None
                    if partial and not ignore_partial:
                        limit = int(partial.group(1))
                    name = b"BODY[]<0>" if partial else b"BODY[]"
                    size = message.size_sent(limit)
                    peer.send(head + b" " + name + b" {%d}\r\n" % size)
                    peer.send_message(message.chunks(limit), interval=body_interval)
                    peer.send(b")\r\n")
                peer.send(ok)
            elif verb == "STORE":
                flagged |= _uid_set(words[1])
                peer.send(ok)
            elif verb == "EXPUNGE":
                gone = flagged & _uid_set(words[1]) if len(words) > 1 else flagged
                lines = b"".join(
                    b"* %d EXPUNGE\r\n" % seq
                    for seq, m in reversed(list(enumerate(messages, start=1)))
                    if m.uid in gone
                )
                with mailbox.lock:
                    mailbox.messages = [
                        m for m in mailbox.messages if m.uid not in gone
                    ]
                flagged -= gone
                peer.send(lines + ok)
            elif verb == "LOGOUT":
                peer.send(b"* BYE\r\n" + ok)
                return
            else:
                peer.send(tag.encode() + b" BAD unknown command\r\n")

    return session
