"""Content identity of a raw message, independent of how it was delivered."""

from __future__ import annotations

import hashlib
import re

# Headers that servers and mail programs add or rewrite per delivery or per
# mailbox: two copies of one message differ only in these. DKIM-Signature is
# kept on purpose: it is set by the sender and belongs to the content.
IGNORED_HEADERS = frozenset(
    {
        "received",
        "x-received",
        "return-path",
        "delivered-to",
        "x-original-to",
        "x-delivered-to",
        "envelope-to",
        "x-envelope-from",
        "x-envelope-to",
        "received-spf",
        "authentication-results",
        "x-original-authentication-results",
        "status",
        "x-status",
        "x-uid",
        "x-keywords",
        "content-length",
        "lines",
        "x-uidl",
        "x-antivirus",
        "x-antivirus-status",
    }
)
IGNORED_HEADER_PREFIXES = (
    "arc-",
    "x-spam-",
    "x-virus-",
    "x-mozilla-",
    "x-imap",
    "x-ms-exchange-organization-",
)

# mboxo and mboxrd quote body lines starting with "From " differently (">From "
# vs ">>From " round trips); dropping all leading ">" from such lines makes the
# copies agree. Matched with the line end before them, a literal the
# expression engine searches for quickly, where "^" is tried at every byte.
_FROM_QUOTING = re.compile(rb"\n>>*(?=From )")


def _keep(line: bytes) -> bool:
    name, colon, _value = line.partition(b":")
    if not colon:
        return True
    key = name.strip().lower().decode("latin-1")
    return key not in IGNORED_HEADERS and not key.startswith(IGNORED_HEADER_PREFIXES)


# One line end as the digest sees it: CRLF, a lone CR or a lone LF.
_LINE_END = re.compile(rb"\r\n|\r|\n")
# Two line ends in a row: where the header ends.
_BLANK_LINE = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")
_NEWLINE = re.compile(rb"\n")
_TRAILING = b"\r\n \t"
# The body is hashed in pieces of about this size, cut after a line end, so
# that a large message is never copied whole.
BODY_PIECE = 1024 * 1024


def _lines_normalized(data: bytes) -> bytes:
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def content_digest(raw: bytes | memoryview) -> str:
    """SHA-256 hex of a message's content for duplicate detection.

    Ignores per-delivery trace headers (see ``IGNORED_HEADERS``), line endings,
    header name case, whitespace folding in header values, trailing blank lines,
    a leading mbox "From " line and mbox From-quoting. Reads ``raw`` in pieces,
    so the memory it takes does not grow with the body. Pure; never raises.
    """
    view = memoryview(raw).cast("B")
    try:
        return _digest(view)
    except Exception:  # identity must exist even for garbage
        return hashlib.sha256(view).hexdigest()


def _body_end(view: memoryview, start: int) -> int:
    """Where the body ends once trailing blank lines and blanks are cut."""
    end = len(view)
    while end > start:
        tail = bytes(view[max(start, end - 65536) : end])
        kept = len(tail.rstrip(_TRAILING))
        if kept:
            return end - len(tail) + kept
        end -= len(tail)
    return start


def _digest(view: memoryview) -> str:
    start = 0
    if view[:5] == b"From ":
        line_end = _LINE_END.search(view)
        start = line_end.end() if line_end else len(view)
    blank = _BLANK_LINE.search(view, start)
    if blank is not None:
        head = _lines_normalized(bytes(view[start : blank.start()]))
        body_start = blank.end()
    else:
        text = _lines_normalized(bytes(view[start:]))
        if not text.endswith(b"\n") and b":" not in text.split(b"\n", 1)[0]:
            head, body_start = b"", start
        else:
            head, body_start = text, len(view)
    digest = hashlib.sha256()
    for field in _fields(head):
        if not _keep(field):
            continue
        name, colon, value = field.partition(b":")
        digest.update(name.strip().lower() + colon + b" ".join(value.split()) + b"\n")
    digest.update(b"\n")
    end = _body_end(view, body_start)
    while body_start < end:
        cut = end
        if end - body_start > BODY_PIECE:
            # Cut after a line end, so that no CRLF and no quoted "From "
            # line is split between two pieces.
            newline = _NEWLINE.search(view, body_start + BODY_PIECE, end)
            if newline is not None:
                cut = newline.end()
        piece = _lines_normalized(bytes(view[body_start:cut]))
        if b">From " in piece:
            # Every piece starts at the start of a line.
            piece = _FROM_QUOTING.sub(b"\n", b"\n" + piece)[1:]
        digest.update(piece)
        body_start = cut
    return digest.hexdigest()


def _fields(head: bytes) -> list[bytes]:
    """The header's fields, each with its folded lines joined."""
    # Folded lines are gathered for the field at hand and joined once:
    # appending to bytes line by line would copy a field with many
    # continuation lines again and again (quadratic in its length).
    fields: list[bytes] = []
    current: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and current:
            current.append(line.strip())
        elif line:
            if current:
                fields.append(b" ".join(current))
            current = [line]
    if current:
        fields.append(b" ".join(current))
    return fields
