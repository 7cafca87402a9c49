"""Large bodies of a message decoded straight into files, never held as text.

The email package's parser holds a message as text, as lines and as each
part's joined payload, and decoding a part adds one copy more: a 50 MB
attachment would cost several times its size. So before a large message is
parsed, :func:`substitute` replaces each long stretch of body lines with one
short placeholder line; the parser reads the small message that is left, and
a part whose payload holds placeholders is decoded from the raw bytes a slice
at a time, into a file for an attachment (its answer names the file) or into
memory for a text body.

The tree stays the parser's own. The parser ends a body, a preamble or an
epilogue only at a line that begins with ``--`` (a boundary) or, between the
blocks of a delivery report, at an empty line. A stretch holds neither kind of
line, and neither does its placeholder, so both are read the same way up to
the line after them. A stretch starts after an empty line, where the parser is
nearly always in a body; where it is not (the headers of an attached message,
a delivery report's fields, a preamble), the placeholder, which looks like a
header field, shows up outside a payload, :func:`bind` says so, and the
message is parsed whole instead.

Spooling happens only inside :func:`spooling` (the parse worker sets it, with
a directory of the caller's); parsing in this process is unchanged.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from email import errors
from email.message import Message
from pathlib import Path
from typing import IO

# Messages and stretches of body lines at least this long are spooled.
SPOOL_BYTES = 1024 * 1024
# Bytes of the raw message decoded at a time.
CHUNK_BYTES = 1024 * 1024
# A line ending followed by a line that may end a body: a boundary ("--") or
# an empty line. Found by its last character (an LF, or a CR with no LF after
# it), so that CRLF is never read as CR and an empty line; a match at the LF
# of a CRLF is moved back to its CR by _breaks. One character to look for
# makes the search run at the speed of a scan, not of a try at every byte.
_BREAK = re.compile(rb"\n(?=--|[\r\n])|\r(?=--|\r)")
_NOT_BLANK = re.compile(rb"[^\t\n\x0b\x0c\r\x1c-\x1f ]")
_UUENCODED = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})

_directory: str | None = None


@dataclass(frozen=True, slots=True)
class SpooledFile:
    """A part's decoded content, in a file of the spool directory."""

    path: str
    size: int
    sha256: str


@contextlib.contextmanager
def spooling(directory: str | None) -> Iterator[None]:
    """Spool the large parts of messages parsed in the block into ``directory``
    (None: hold everything in memory, as outside the block)."""
    global _directory
    previous, _directory = _directory, directory
    try:
        yield
    finally:
        _directory = previous


def spool_directory() -> str | None:
    return _directory


@dataclass(frozen=True, slots=True)
class Stretch:
    """Lines ``source[start:end]`` (without the last line's ending)."""

    start: int
    end: int


class Substituted:
    """A message with its long stretches of body lines replaced."""

    def __init__(self, source: bytes, small: bytes, nonce: str, stretches: list):
        self.source = source
        self.small = small
        self.nonce = nonce
        self.stretches: list[Stretch] = stretches
        self.token = re.compile(re.escape(f"X-Spooled-{nonce}-") + r"(\d+):")


def _breaks(source: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each line ending that :data:`_BREAK` describes."""
    for found in _BREAK.finditer(source):
        start = found.start()
        if start and source[start - 1] == 13 and source[start] == 10:
            start -= 1
        yield start, found.end()


def substitute(source: bytes) -> Substituted | None:
    """``source`` with each stretch of at least ``SPOOL_BYTES`` of non-empty
    lines, none beginning with ``--``, that follows an empty line replaced by
    a placeholder line; None when there is no such stretch. Linear."""
    if len(source) < SPOOL_BYTES:
        return None
    nonce = secrets.token_hex(8)
    while nonce.encode() in source:
        nonce = secrets.token_hex(8)
    stretches: list[Stretch] = []
    pieces: list[bytes] = []
    copied = 0
    after_empty: int | None = None  # where the line after an empty line starts
    for found_start, found_end in _breaks(source):
        if after_empty is not None:
            start, end = after_empty, found_start
            if end - start >= SPOOL_BYTES and _NOT_BLANK.search(source, start, end):
                pieces.append(source[copied:start])
                pieces.append(f"X-Spooled-{nonce}-{len(stretches)}:".encode())
                stretches.append(Stretch(start, end))
                copied = end
            after_empty = None
        line = found_end
        if source[line : line + 1] in (b"\r", b"\n"):
            ending = 2 if source[line : line + 2] == b"\r\n" else 1
            after_empty = line + ending
    if after_empty is not None:
        # The last line's ending stays, as the parser may take it away.
        start, end = after_empty, len(source)
        if source.endswith(b"\r\n"):
            end -= 2
        elif source.endswith((b"\n", b"\r")):
            end -= 1
        if end - start >= SPOOL_BYTES and _NOT_BLANK.search(source, start, end):
            pieces.append(source[copied:start])
            pieces.append(f"X-Spooled-{nonce}-{len(stretches)}:".encode())
            stretches.append(Stretch(start, end))
            copied = end
    if not stretches:
        return None
    pieces.append(source[copied:])
    return Substituted(source, b"".join(pieces), nonce, stretches)


class Spooled:
    """The parts of a parsed small message that stand for stretches of the
    raw one, and how to decode them."""

    def __init__(self, substituted: Substituted, parts: dict[int, Message]) -> None:
        self._substituted = substituted
        self._parts = parts

    def holds(self, part: Message) -> bool:
        return id(part) in self._parts

    def _pieces(self, part: Message) -> Iterator[bytes]:
        """The bytes of the payload the parser would have given ``part``."""
        payload = part._payload  # type: ignore[attr-defined]
        source = self._substituted.source
        at = 0
        for found in self._substituted.token.finditer(payload):
            if found.start() > at:
                yield payload[at : found.start()].encode("ascii", "surrogateescape")
            stretch = self._substituted.stretches[int(found.group(1))]
            for offset in range(stretch.start, stretch.end, CHUNK_BYTES):
                yield source[offset : min(offset + CHUNK_BYTES, stretch.end)]
            at = found.end()
        if at < len(payload):
            yield payload[at:].encode("ascii", "surrogateescape")

    def restore(self, part: Message) -> None:
        """Give ``part`` and the parts under it the payloads the parser would
        have given them (for code that needs the parser's whole tree)."""
        stack = [part]
        while stack:
            current = stack.pop()
            payload = current._payload  # type: ignore[attr-defined]
            if isinstance(payload, list):
                stack.extend(payload)
            elif self._parts.pop(id(current), None) is not None:
                current._payload = b"".join(self._pieces(current)).decode(  # type: ignore[attr-defined]
                    "ascii", "surrogateescape"
                )

    def decode(self, part: Message, out: IO[bytes]) -> bool:
        """Write ``part``'s payload, decoded as ``get_payload(decode=True)``
        would, to ``out``. Returns False, with ``out`` left empty and the
        part's payload restored, when only the parser's own decoder gives the
        same answer (a damaged base64 body, uuencode); the caller then asks
        the part."""
        cte = str(part.get("content-transfer-encoding", "")).lower()
        if cte in _UUENCODED:
            self.restore(part)
            return False
        if cte == "base64":
            decoder: _Decoder = _Base64(out)
        elif cte == "quoted-printable":
            decoder = _QuotedPrintable(out)
        else:
            decoder = _Decoder(out)
        try:
            for piece in self._pieces(part):
                decoder.feed(piece)
            decoder.finish()
        except binascii.Error:
            out.seek(0)
            out.truncate()
            self.restore(part)
            return False
        if decoder.padding_defect:
            part.policy.handle_defect(part, errors.InvalidBase64PaddingDefect())
        self._parts.pop(id(part), None)
        return True

    def decode_to_file(self, part: Message) -> SpooledFile | None:
        """Decode ``part`` into a new file of the spool directory (see
        :meth:`decode`); None when the part must be decoded by the parser."""
        directory = spool_directory()
        if directory is None:
            raise RuntimeError("spooling outside a spool directory")
        fd, path = tempfile.mkstemp(dir=directory, prefix="part-")
        try:
            with os.fdopen(fd, "w+b") as out:
                hashing = _Hashing(out)
                if not self.decode(part, hashing):  # type: ignore[arg-type]
                    Path(path).unlink()
                    return None
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        return SpooledFile(path=path, size=hashing.size, sha256=hashing.hexdigest())


def bind(substituted: Substituted, message: Message) -> Spooled | None:
    """The parts of ``message`` (parsed from ``substituted.small``) whose
    payloads hold placeholders; None if a placeholder is anywhere else, in
    which case the message must be parsed whole."""
    nonce = substituted.nonce
    parts: dict[int, Message] = {}
    stack = [message]
    while stack:
        part = stack.pop()
        for name, value in part.raw_items():
            if nonce in name or nonce in str(value):
                return None
        for extra in (part.preamble, part.epilogue):
            if extra and nonce in extra:
                return None
        payload = part._payload  # type: ignore[attr-defined]
        if isinstance(payload, list):
            stack.extend(payload)
        elif isinstance(payload, str) and nonce in payload:
            parts[id(part)] = part
    return Spooled(substituted, parts)


class _Hashing:
    """A file that counts and hashes what is written to it."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._hash.update(data)
        self.size += len(data)

    def seek(self, offset: int) -> None:
        self._out.seek(offset)

    def truncate(self) -> None:
        self._out.truncate()
        self._hash = hashlib.sha256()
        self.size = 0

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _Decoder:
    """7bit, 8bit, binary and any other encoding: the bytes as they are."""

    padding_defect = False

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def feed(self, data: bytes) -> None:
        self.out.write(data)

    def finish(self) -> None:
        pass


class _QuotedPrintable(_Decoder):
    """``quopri.decodestring``, a line at a time: the decoder keeps no state
    across a line feed."""

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        self._pending = b""

    def feed(self, data: bytes) -> None:
        data = self._pending + data
        cut = data.rfind(b"\n") + 1
        if cut:
            self.out.write(binascii.a2b_qp(data[:cut], header=False))
        self._pending = data[cut:]

    def finish(self) -> None:
        if self._pending:
            self.out.write(binascii.a2b_qp(self._pending, header=False))


class _Base64(_Decoder):
    """The email package's base64 decoding (``decode_b`` of the payload's lines
    joined), four characters at a time; raises binascii.Error where it would
    fall back to its lenient decoding."""

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        self._carry = b""
        self._padding: bytes | None = None
        self._length = 0

    def feed(self, data: bytes) -> None:
        data = data.replace(b"\r", b"").replace(b"\n", b"")
        self._length += len(data)
        if self._padding is not None:
            self._padding += data
            if len(self._padding) > 4:
                raise binascii.Error("data after padding")
            return
        equals = data.find(b"=")
        if equals >= 0:
            self._padding = data[equals:]
            data = data[:equals]
            if len(self._padding) > 4:
                raise binascii.Error("data after padding")
        data = self._carry + data
        whole = len(data) - len(data) % 4
        self.out.write(binascii.a2b_base64(data[:whole], strict_mode=True))
        self._carry = data[whole:]

    def finish(self) -> None:
        missing = self._length % 4
        self.padding_defect = bool(missing)
        tail = self._carry + (self._padding or b"")
        if missing:
            tail += b"==="[: 4 - missing]
        self.out.write(binascii.a2b_base64(tail, strict_mode=True))
