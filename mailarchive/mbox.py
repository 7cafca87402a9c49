"""Streaming mbox reading and mboxrd writing, byte-exact and with bounded memory.

Teams bring years of mail in multi-gigabyte mbox files, so the reader works over
a binary file object in fixed-size chunks and never holds more than the current
message. Python's ``mailbox.mbox`` is not used: it builds a table of contents of
the whole file before handing out the first message, needs a real seekable file
(no gzip stream, no upload pipe), splits on every line that starts with
``From `` (so unquoted ``From `` lines in bodies cut messages in two), ignores
``Content-Length``, never reverses mboxrd quoting, and walks the file one line
at a time in Python.

Reading rules (``iter_mbox``):

* The file may start with a UTF-8 byte order mark and blank lines; neither is
  part of any message. Then it must start with a ``From `` line, otherwise
  ``MboxFormatError`` says what the first line is.
* A line starting with ``From `` separates messages when it follows a blank
  line, when it has the strict ``From <addr> <asctime date>`` shape, or when the
  lines after it form a header block (field lines up to a blank line): some
  writers put no blank line before ``From -`` separators.
* When a message's headers carry ``Content-Length`` and the length points
  exactly at a following ``From `` line (directly or after the separator's line
  ending) or at the end of the file, that ``From `` line ends the message and
  unquoted ``From `` lines inside the body stay in it (mboxcl/mboxcl2).
  Otherwise the From_-line rules above decide. Verifying a length holds the
  bytes up to where it points, so a length is only considered when it fits in
  ``max_message_bytes`` (``DEFAULT_CONTENT_LENGTH_LIMIT`` when there is none).
* A message's raw bytes are everything between its From_ line and the next
  separator, minus the one blank line that precedes the separator. Line endings
  are kept as they are: a CRLF file yields CRLF messages.
* Variants only decide how ``>From `` lines are read back. ``mboxrd``: every
  line matching ``^>+From `` loses one ``>``. ``mboxo``, ``mboxcl`` and
  ``mboxcl2``: nothing is unquoted, because an mboxo writer turns ``From `` into
  ``>From `` and leaves ``>From `` alone, so the original can no longer be told.
* ``auto`` reads as mboxrd, except a message that itself contains an unquoted
  ``From `` line: a writer that left one unquoted quoted none, so that
  message's ``>From `` lines are the sender's own. Why mboxrd by default: this
  product exports mboxrd and must re-import its exports byte-identical; a file
  without ``>From `` lines reads the same under both rules; and in mail a real
  line starting with ``From `` (quoted to ``>From `` by mutt or Thunderbird, which
  write mboxo) is far more common than a real line starting with ``>From ``
  (mail clients quote replies as ``> ``). The price: an mboxo file holding a
  genuine ``>From `` line imports that line with one ``>`` less.
* A message taking more than ``max_message_bytes`` in the file is not kept in
  memory: it is yielded with ``oversized=True``, empty ``raw`` and its ``size``,
  and the caller decides (the importer reports it as failed). Content-Length is
  not verified for such a message, since that would need its bytes.

Memory: the only large allocations are the current message (its bytes while
they are gathered, then the joined copy; about twice the message) and a buffer
of a few read chunks. The caller's own references to earlier entries come on top.

Writing (``write_mboxrd``, ``iter_mboxrd_chunks``): ``From <sender> <asctime in
UTC>``, then the message with every ``^>*From `` line given one more ``>``, then
a blank line. The message's own line endings are kept; the lines the writer adds
end in LF. For every ``raw`` that ends with LF, reading the export gives back
``raw`` byte for byte. A message that does not end with LF gets one on export;
re-imported it is ``raw + b"\\n"``, so the archive's content identity must
ignore trailing line endings for such a message to be recognised as the same.
"""

from __future__ import annotations

import errno
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple, cast

CHUNK_SIZE: Final = 1 << 20
VARIANTS: Final = frozenset({"auto", "mboxrd", "mboxo", "mboxcl", "mboxcl2"})

_BOM: Final = b"\xef\xbb\xbf"
_CANDIDATE: Final = b"\nFrom "
# Enough to see a From_ line and the header lines after it.
_LOOKAHEAD: Final = 8192
# Headers longer than this are not searched for Content-Length.
_HEADER_LIMIT: Final = 1 << 20
# The largest Content-Length verified when the caller sets no message limit.
DEFAULT_CONTENT_LENGTH_LIMIT: Final = 64 << 20
# Bytes kept in the buffer before the scan position, so the blank line before
# a separator and the separator itself are always in one piece.
_TAIL: Final = 8
_SNIFF_BYTES: Final = 1 << 16
# A From_ line is kept up to this length; the rest of a longer one is skipped.
MAX_FROM_LINE: Final = 1 << 16
_NEWLINES: Final = re.compile(rb"[\r\n]*+")
_LONE_CR: Final = re.compile(rb"\r(?!\n)")
_CR: Final = 0x0D
_SPACE: Final = 0x20
_TAB: Final = 0x09

_STRICT_FROM_LINE: Final = re.compile(
    rb"From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +"
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +"
    rb"\d{1,2}:\d{2}(?::\d{2})?(?: +(?:[A-Za-z]{1,5}|[+-]\d{4}))? +\d{4}(?!\S)"
)
_FIELD: Final = re.compile(rb"[!-9;-~]+:")
_HEADER_END: Final = re.compile(rb"\n(?:\r?\n|From )")
_CONTENT_LENGTH: Final = re.compile(
    rb"^Content-Length:[ \t]*(\d{1,15})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE
)
# Quoting is changed with one exact-size replace per ``>`` level; deeper than
# this, a regex does it (slower, and holding every piece of the message at once).
_MAX_PASSES: Final = 32
# These start with a literal newline, which the regex engine finds far faster
# than a multiline ``^``; the first line is handled on its own.
_QUOTED: Final = re.compile(rb"\n>(?=>*From )")
_QUOTED_FIRST: Final = re.compile(rb">+From ")
_QUOTABLE: Final = re.compile(rb"\n(?=>*From )")
_QUOTABLE_FIRST: Final = re.compile(rb">*From ")
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


class MboxFormatError(ValueError):
    """The input is not a readable mbox file or message; the text says why."""


@dataclass(frozen=True)
class MboxEntry:
    """One message of an mbox file.

    ``raw`` is the message as it was before mbox quoting; ``from_line`` the
    envelope line without its line ending; ``offset`` the position of that line
    in the (decompressed) file; ``index`` the 0-based position in the file.
    ``oversized`` entries exceeded the reader's limit: their ``raw`` is empty and
    ``size`` says how many bytes they took in the file. Otherwise ``size`` is
    ``len(raw)``.
    """

    raw: bytes
    from_line: bytes
    offset: int
    index: int
    oversized: bool = False
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "size", len(self.raw))


class _Scanned(NamedTuple):
    from_line: bytes
    offset: int
    raw: bytes | None
    size: int
    oversized: bool


class _Sink:
    """The content of the message being read, gathered or only counted."""

    def __init__(self, *, keep: bool, limit: int | None) -> None:
        self.keep = keep
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.oversized = False

    def take(self, data: bytearray | memoryview) -> None:
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            self.oversized = True
            self.parts.clear()
        if self.keep and not self.oversized:
            self.parts.append(bytes(data))


class _Scanner:
    """Finds message boundaries in a binary stream, one chunk at a time."""

    def __init__(
        self, fp: BinaryIO, *, keep: bool, limit: int | None, chunk_size: int
    ) -> None:
        self._fp = fp
        self._keep = keep
        self._limit = limit
        self._chunk = chunk_size
        self._flush_at = max(4 * chunk_size, 2 * _LOOKAHEAD)
        self._buf = bytearray()
        self._base = 0
        self._eof = False

    @property
    def _end(self) -> int:
        return self._base + len(self._buf)

    def _fill(self) -> bool:
        """Append one chunk to the buffer; False at the end of the stream."""
        if self._eof:
            return False
        data = self._fp.read(self._chunk)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _ensure(self, end: int) -> None:
        while self._end < end and self._fill():
            pass

    def _drop(self, upto: int) -> None:
        """Forget the buffered bytes before the absolute offset ``upto``."""
        del self._buf[: upto - self._base]
        self._base = upto

    def _first_line(self, start: int) -> str:
        self._ensure(start + 200)
        rel = start - self._base
        line = bytes(self._buf[rel : rel + 200]).split(b"\n", 1)[0].rstrip(b"\r")
        text = line.decode("utf-8", "replace")
        return text if len(text) <= 80 else text[:80] + "…"

    def _start(self) -> int:
        """The offset of the first From_ line; raises for anything else.

        Blank lines before it are skipped a chunk at a time and forgotten.
        """
        self._ensure(len(_BOM))
        if self._buf.startswith(_BOM):
            self._drop(self._base + len(_BOM))
        while True:
            self._ensure(self._base + 5)
            skipped = _NEWLINES.match(self._buf).end()
            if skipped == len(self._buf) and not self._eof:
                # A CR at the end of the buffer may be half of a CRLF.
                skipped -= self._buf.endswith(b"\r")
            # Only LF and CRLF are blank lines; a lone CR is not.
            lone = _LONE_CR.search(self._buf, 0, skipped)
            if lone is not None:
                skipped = lone.start()
            if not skipped:
                break
            self._drop(self._base + skipped)
        if not self._buf:
            raise MboxFormatError("empty file")
        if not self._buf.startswith(b"From "):
            raise MboxFormatError(
                f"not an mbox file (first line is {self._first_line(self._base)!r})"
            )
        return self._base

    def messages(self) -> Iterator[_Scanned]:
        self._drop(self._start())
        while self._buf:
            yield self._message()

    def _message(self) -> _Scanned:
        """Read the message whose From_ line starts the buffer, and drop it."""
        offset = self._base
        searched = 0
        # The start of a From_ line longer than the limit; the rest is skipped.
        head: bytes | None = None
        while (nl := self._buf.find(b"\n", searched)) < 0:
            if head is None and len(self._buf) > MAX_FROM_LINE:
                head = bytes(self._buf[:MAX_FROM_LINE])
            if head is not None:
                self._drop(self._end)
            searched = len(self._buf)
            if not self._fill():
                break
        from_end = self._base + nl if nl >= 0 else self._end
        from_line = bytes(self._buf[: from_end - self._base]) if head is None else head
        from_line = from_line[:MAX_FROM_LINE].removesuffix(b"\r")
        content = min(from_end + 1, self._end)
        sink = _Sink(keep=self._keep, limit=self._limit)

        separator: int | None
        target = self._content_length_target(content)
        verified = False
        if target is not None:
            verified, separator = self._verify_target(target)
        if not verified:
            separator = self._scan(content, sink)

        end = separator if separator is not None else self._end
        rel = end - self._base
        if end - 2 >= content and self._buf[rel - 2 : rel] == b"\n\n":
            end -= 1
        elif end - 3 >= content and self._buf[rel - 3 : rel] == b"\n\r\n":
            end -= 2
        start = max(content, self._base)
        if end > start:
            with memoryview(self._buf)[start - self._base : end - self._base] as part:
                sink.take(part)
        self._drop(separator if separator is not None else self._end)

        raw = None
        if self._keep and not sink.oversized:
            raw = b"".join(sink.parts)
        sink.parts.clear()
        return _Scanned(from_line, offset, raw, sink.size, sink.oversized)

    def _content_length_target(self, content: int) -> int | None:
        """Where the message's Content-Length points, if it may be trusted."""
        search = content - 1
        while (match := _HEADER_END.search(self._buf, search - self._base)) is None:
            if self._end - content > _HEADER_LIMIT:
                return None
            search = max(content - 1, self._end - 5)
            if not self._fill():
                return None
        if match.group().endswith(b"From "):
            return None
        headers = self._buf[content - self._base : match.start()]
        length = _CONTENT_LENGTH.search(headers)
        if length is None:
            return None
        body = self._base + match.end()
        target = body + int(length.group(1))
        limit = self._limit if self._limit is not None else DEFAULT_CONTENT_LENGTH_LIMIT
        if target - content > limit:
            return None
        return target

    def _verify_target(self, target: int) -> tuple[bool, int | None]:
        """Whether a From_ line or the end of the file is at ``target``."""
        self._ensure(target + 7)
        if target > self._end:
            return False, None
        rel = target - self._base
        rest = bytes(self._buf[rel : rel + 7])
        if not rest or (self._eof and rest in (b"\n", b"\r\n")):
            return True, None
        if rest.startswith(b"From ") and self._buf[rel - 1 : rel] == b"\n":
            return True, target
        if rest.startswith(b"\nFrom "):
            return True, target + 1
        if rest.startswith(b"\r\nFrom "):
            return True, target + 2
        return False, None

    def _scan(self, content: int, sink: _Sink) -> int | None:
        """The start of the next separator line, or None at the end of the file."""
        search = content - 1
        while True:
            found = self._buf.find(_CANDIDATE, search - self._base)
            if found < 0:
                if self._eof:
                    return None
                search = max(content - 1, self._end - len(_CANDIDATE) + 1)
                if len(self._buf) > self._flush_at:
                    self._flush(content, search - _TAIL, sink)
                self._fill()
                continue
            line = self._base + found + 1
            self._ensure(line + _LOOKAHEAD)
            if self._is_separator(line):
                return line
            search = line

    def _flush(self, content: int, upto: int, sink: _Sink) -> None:
        """Move the message's bytes before ``upto`` from the buffer to the sink."""
        if upto <= self._base:
            return
        start = max(content, self._base)
        if upto > start:
            with memoryview(self._buf)[start - self._base : upto - self._base] as part:
                sink.take(part)
        self._drop(upto)

    def _is_separator(self, line: int) -> bool:
        """Whether the ``From `` line starting at ``line`` begins a message.

        Reads the buffer in place: a file of short ``From `` lines has one
        candidate per line.
        """
        buf = self._buf
        rel = line - self._base
        if buf[rel - 2 : rel] == b"\n\n" or buf[rel - 3 : rel] == b"\n\r\n":
            return True
        end = min(len(buf), rel + _LOOKAHEAD)
        newline = buf.find(b"\n", rel, end)
        if _STRICT_FROM_LINE.match(buf, rel, newline if newline >= 0 else end):
            return True
        return newline >= 0 and _starts_header_block(buf, newline + 1, end)


def _starts_header_block(buf: bytearray, pos: int, end: int) -> bool:
    """Whether the complete lines in ``buf[pos:end]`` are header fields up to a
    blank line."""
    first = True
    while (newline := buf.find(b"\n", pos, end)) >= 0:
        if newline == pos or (newline == pos + 1 and buf[pos] == _CR):
            return not first
        continuation = not first and buf[pos] in (_SPACE, _TAB)
        if not continuation and not _FIELD.match(buf, pos, newline):
            return False
        first = False
        pos = newline + 1
    return not first


def _check_options(variant: str, max_message_bytes: int | None, chunk: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown mbox variant {variant!r}: use one of {VARIANTS}")
    if max_message_bytes is not None and max_message_bytes < 0:
        raise ValueError("max_message_bytes must not be negative")
    if chunk < 1:
        raise ValueError("chunk_size must be positive")


def iter_mbox(
    fp: BinaryIO,
    *,
    variant: str = "auto",
    max_message_bytes: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[MboxEntry]:
    """Yield the messages of an mbox stream in file order.

    Reads ``fp`` forward from its current position, ``chunk_size`` bytes at a
    time; changes nothing else. Re-running needs a fresh or rewound stream.
    Raises ``MboxFormatError`` before the first entry when the stream is empty
    or does not start with a From_ line, and whenever the stream itself fails
    (e.g. a truncated gzip file).
    """
    _check_options(variant, max_message_bytes, chunk_size)
    scanner = _Scanner(fp, keep=True, limit=max_message_bytes, chunk_size=chunk_size)
    # A plain counter: enumerate() would keep the previous message alive.
    index = -1
    for scanned in scanner.messages():
        index += 1
        from_line, offset, raw, size, oversized = scanned
        # Only the entry handed out may hold the message while the next is read.
        del scanned
        if oversized or raw is None:
            yield MboxEntry(b"", from_line, offset, index, True, size)
            continue
        if variant == "mboxrd" or (variant == "auto" and not _has_from_line(raw)):
            raw = unquote_mboxrd(raw)
        yield MboxEntry(raw, from_line, offset, index)
        del raw


def _has_from_line(raw: bytes) -> bool:
    return raw.startswith(b"From ") or _CANDIDATE in raw


def count_messages(
    fp: BinaryIO, *, max_message_bytes: int | None = None, chunk_size: int = CHUNK_SIZE
) -> int:
    """Count the messages ``iter_mbox`` would yield, without keeping any of them.

    For progress reporting before an import. Consumes ``fp`` like ``iter_mbox``
    (pass the same ``max_message_bytes`` for the same count) and changes nothing
    else; safe to re-run on a fresh stream.
    """
    _check_options("auto", max_message_bytes, chunk_size)
    scanner = _Scanner(fp, keep=False, limit=max_message_bytes, chunk_size=chunk_size)
    return sum(1 for _ in scanner.messages())


def iter_eml(
    fp: BinaryIO,
    *,
    max_message_bytes: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[MboxEntry]:
    """Yield a single-message file (``.eml``) as one entry.

    The bytes are kept as they are, except a UTF-8 byte order mark at the very
    start (an editor's mark, not part of the message). Reads ``fp`` to its end
    and changes nothing else. Raises ``MboxFormatError`` for an empty file.
    """
    _check_options("auto", max_message_bytes, chunk_size)
    first = fp.read(chunk_size)
    while 0 < len(first) < len(_BOM) and (more := fp.read(chunk_size)):
        first += more
    offset = len(_BOM) if first.startswith(_BOM) else 0
    sink = _Sink(keep=True, limit=max_message_bytes)
    with memoryview(first) as view:
        sink.take(view[offset:])
    del first
    while chunk := fp.read(chunk_size):
        sink.take(memoryview(chunk))
    if sink.size == 0:
        raise MboxFormatError("empty file")
    if sink.oversized:
        yield MboxEntry(b"", b"", offset, 0, True, sink.size)
        return
    raw = b"".join(sink.parts)
    sink.parts.clear()
    yield MboxEntry(raw, b"", offset, 0)


def _peek(fp: BinaryIO, size: int) -> bytes:
    seekable = getattr(fp, "seekable", None)
    if seekable is not None and seekable():
        position = fp.tell()
        try:
            return fp.read(size)
        finally:
            fp.seek(position)
    peek = getattr(fp, "peek", None)
    if peek is None:
        raise TypeError("sniffing needs a seekable stream or one with peek()")
    return bytes(peek(size)[:size])


def sniff_source(fp: BinaryIO) -> str:
    """Say whether ``fp`` holds an mbox file (``"mbox"``) or one message (``"eml"``).

    An mbox starts with a From_ line; a message with a header line (both after
    an optional byte order mark and blank lines). Leaves the stream where it was
    (by seeking back, or by ``peek`` on a buffered stream); safe to re-run.
    Raises ``MboxFormatError`` for an empty file or anything else.
    """
    head = _peek(fp, _SNIFF_BYTES)
    text = head.removeprefix(_BOM).lstrip(b"\r\n")
    if not text:
        raise MboxFormatError("empty file")
    if text.startswith(b"From "):
        return "mbox"
    if _FIELD.match(text):
        return "eml"
    line = text.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    line = line if len(line) <= 80 else line[:80] + "…"
    raise MboxFormatError(
        f"not an mbox file or e-mail message (first line is {line!r})"
    )


class _GzipSource(io.RawIOBase):
    """A gzip stream whose failures read as ``MboxFormatError``."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._gzip = gzip.GzipFile(fileobj=file, mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        try:
            return self._gzip.readinto(buffer)
        except EOFError as e:
            raise MboxFormatError("truncated gzip file") from e
        except (gzip.BadGzipFile, zlib.error) as e:
            raise MboxFormatError(f"corrupt gzip file: {e}") from e

    def close(self) -> None:
        if not self.closed:
            self._gzip.close()
            self._file.close()
        super().close()


def open_mbox_source(path: Path) -> BinaryIO:
    """Open an mbox or message file for reading, decompressing gzip transparently.

    Gzip is recognised by its magic bytes, not by the file name. The caller
    closes the returned stream. Changes nothing; safe to re-run. Raises
    ``PermissionError`` when the file may not be read and ``MboxFormatError``
    for a directory or an empty file.
    """
    path = Path(path)
    if path.is_dir():
        raise MboxFormatError(f"{path} is a directory, not an mbox file")
    try:
        file = path.open("rb")
    except PermissionError as e:
        raise PermissionError(
            errno.EACCES, "permission denied: cannot read the mail file", str(path)
        ) from e
    try:
        magic = file.read(2)
        if not magic:
            raise MboxFormatError("empty file")
        file.seek(0)
    except BaseException:
        file.close()
        raise
    if magic == b"\x1f\x8b":
        reader = io.BufferedReader(_GzipSource(file), buffer_size=CHUNK_SIZE)
        return cast(BinaryIO, reader)
    return file


def unquote_mboxrd(raw: bytes) -> bytes:
    """Remove one ``>`` from every line matching ``^>+From ``; pure function."""
    depth = _from_depth(raw, 1)
    if depth > _MAX_PASSES:
        raw = _QUOTED.sub(b"\n", raw)
    else:
        # Shallowest first, so that no line is changed twice.
        for level in range(1, depth + 1):
            quoted = b">" * level + b"From "
            raw = raw.replace(b"\n" + quoted, b"\n" + quoted[1:])
    return raw[1:] if _QUOTED_FIRST.match(raw) else raw


def quote_mboxrd(raw: bytes) -> bytes:
    """Add one ``>`` to every line matching ``^>*From ``; pure function."""
    depth = _from_depth(raw, 0)
    if depth > _MAX_PASSES:
        raw = _QUOTABLE.sub(b"\n>", raw)
    else:
        # Deepest first, so that no line is changed twice.
        for level in range(depth, -1, -1):
            quoted = b">" * level + b"From "
            raw = raw.replace(b"\n" + quoted, b"\n>" + quoted)
    return b">" + raw if _QUOTABLE_FIRST.match(raw) else raw


def _from_depth(raw: bytes, least: int) -> int:
    """The most ``>`` before any ``From `` in ``raw`` (``least - 1`` if none)."""
    depth = least - 1
    while depth <= _MAX_PASSES and b">" * (depth + 1) + b"From " in raw:
        depth += 1
    return depth


def _asctime(date: datetime) -> str:
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("the envelope date must be timezone-aware")
    d = date.astimezone(UTC)
    day, month = _DAYS[d.weekday()], _MONTHS[d.month - 1]
    return f"{day} {month} {d.day:2d} {d:%H:%M:%S} {d.year:04d}"


def _envelope_sender(sender: str) -> bytes:
    # The From_ line is split on whitespace by readers, so an address that
    # cannot stand there as one token is replaced, as MTAs do for bounces.
    address = sender.strip().removeprefix("<").removesuffix(">")
    if not address or any(c.isspace() or not c.isprintable() for c in address):
        return b"MAILER-DAEMON"
    try:
        return address.encode("utf-8")
    except UnicodeEncodeError:
        return b"MAILER-DAEMON"


def _mboxrd_pieces(
    raw: bytes, envelope_sender: str, date: datetime | None
) -> tuple[bytes, bytes, bytes]:
    when = _asctime(date if date is not None else datetime.now(UTC))
    envelope = b"From " + _envelope_sender(envelope_sender) + b" " + when.encode()
    ending = b"\n" if raw.endswith(b"\n") else b"\n\n"
    return envelope + b"\n", quote_mboxrd(raw), ending


def write_mboxrd(
    out: BinaryIO,
    raw: bytes,
    *,
    envelope_sender: str = "MAILER-DAEMON",
    date: datetime | None = None,
) -> None:
    """Append one message to ``out`` in mboxrd form.

    ``date`` (timezone-aware; now when None) goes into the From_ line in UTC;
    a sender that is empty or contains whitespace becomes ``MAILER-DAEMON``.
    Writes to ``out`` only; running it twice appends the message twice.
    """
    for piece in _mboxrd_pieces(raw, envelope_sender, date):
        out.write(piece)


def iter_mboxrd_chunks(
    messages: Iterable[tuple[bytes, str, datetime | None]],
) -> Iterator[bytes]:
    """Yield an mboxrd file, one chunk per ``(raw, envelope_sender, date)``.

    For streaming responses: consumes ``messages`` lazily and holds one message
    at a time. The chunks concatenated equal ``write_mboxrd`` of each message.
    """
    for raw, envelope_sender, date in messages:
        yield b"".join(_mboxrd_pieces(raw, envelope_sender, date))
