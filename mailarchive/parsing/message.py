"""``parse_message``: raw bytes to a :class:`ParsedMessage`, in one tree walk.

The structure comes from the email package's parser, within the limits of
:mod:`.structure` (parts, depth, header and parameter length). Header values,
parameters and body text are decoded from the raw values with the charset
logic of :mod:`.charsets` (see :mod:`.headers` for why); the tree itself is
walked by :mod:`.walk`.
"""

from __future__ import annotations

import itertools
import re

from . import spool
from .headers import (
    HeaderContext,
    decode_addresses,
    decode_date,
    decode_in_reply_to,
    decode_message_id,
    decode_received_date,
    decode_references,
    decode_unstructured,
    first_address,
)
from .results import ParsedMessage
from .structure import parse_structure
from .text import html_to_text
from .walk import MAX_DEPTH, MAX_PARTS, Placement, Walker

__all__ = ["MAX_DEPTH", "MAX_PARTS", "body_text_for_search", "parse_message"]

MAX_HEADERS = 500
MAX_HEADER_VALUE = 10 * 1024
# Header fields of the message handed to the parser; past these only the
# first field of each name that is read for the message (_READ_HEADERS,
# Content-*) is kept.
MAX_HEADER_FIELDS = 1000

_CHARSET_HINT = re.compile(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:+-]+)", re.I)

# The email parser's own test for a header line (email.feedparser.headerRE).
_HEADER_LINE = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BOM = b"\xef\xbb\xbf"


def _prepare(raw: bytes, context: HeaderContext) -> bytes:
    """Bytes for the parser: without a BOM or leading blank lines, with stray
    non-header lines inside the header block turned into continuation lines,
    and at most ``MAX_HEADER_FIELDS`` header fields.

    Some servers break a long header without indenting the continuation; the
    parser would end the headers there and read the rest, Content-Type and all,
    as body text. Only lines followed by further header lines are touched.
    Past the field limit only the first field of each name that is read for
    the message (Subject, From, Content-Type…) is kept.
    """
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    raw = raw.lstrip(b"\r\n")
    end_match = _HEADER_END.search(raw)
    end = end_match.start() if end_match else len(raw)
    lines = raw[:end].split(b"\n")
    if not lines or not _HEADER_LINE.match(lines[0]):
        return raw
    valid = [bool(_HEADER_LINE.match(line)) for line in lines]
    last_valid = max(index for index, ok in enumerate(valid) if ok)
    starts = [
        index
        for index, (line, ok) in enumerate(zip(lines, valid, strict=True))
        if ok and line[:1] not in (b" ", b"\t")
    ]
    if all(valid[: last_valid + 1]) and len(starts) <= MAX_HEADER_FIELDS:
        return raw
    repaired = [
        line if ok or index > last_valid else b" " + line
        for index, (line, ok) in enumerate(zip(lines, valid, strict=True))
    ]
    if len(starts) > MAX_HEADER_FIELDS:
        context.flag("truncated-headers")
        repaired = _first_fields(repaired, starts)
    return b"\n".join(repaired) + raw[end:]


def _first_fields(lines: list[bytes], starts: list[int]) -> list[bytes]:
    """The first ``MAX_HEADER_FIELDS`` fields, then the first of each read name."""
    kept = lines[: starts[MAX_HEADER_FIELDS]]
    seen: set[bytes] = set()
    bounds = [*starts[MAX_HEADER_FIELDS:], len(lines)]
    for start, stop in itertools.pairwise(bounds):
        name = lines[start].split(b":", 1)[0].strip().lower()
        if name in seen or not (name in _READ_HEADERS or name.startswith(b"content-")):
            continue
        seen.add(name)
        kept += lines[start:stop]
    return kept


def unparseable_message(problems: list[str]) -> ParsedMessage:
    """What is stored of a message nothing could be read from: only its
    problems; its raw bytes are the message."""
    return ParsedMessage(
        message_id=None,
        in_reply_to=None,
        references=[],
        subject="",
        from_=None,
        sender=None,
        to=[],
        cc=[],
        reply_to=[],
        date=None,
        date_offset_minutes=None,
        text_body="",
        html_body="",
        attachments=[],
        headers=[],
        problems=problems,
        parseable=False,
    )


_SINGLE_HEADERS = (
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "from",
    "sender",
    "date",
)
_LIST_HEADERS = ("to", "cc", "reply-to", "received")
_READ_HEADERS = frozenset(
    name.encode() for name in (*_SINGLE_HEADERS, *_LIST_HEADERS, "mime-version")
)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw message bytes into what the archive stores and shows.

    Never raises: input that is not a message at all gives ``parseable=False``
    and the problem ``unparseable``. Pure function; safe to re-run.
    """
    try:
        return _parse(bytes(raw))
    except Exception:  # the raw bytes are archived regardless
        return unparseable_message(["unparseable"])


def _parse(raw: bytes, spool_large: bool = True) -> ParsedMessage:
    hint_match = _CHARSET_HINT.search(raw, 0, 64 * 1024)
    hint = hint_match.group(1).decode("ascii") if hint_match else None
    context = HeaderContext(hint)
    prepared = _prepare(raw, context)
    substituted = (
        spool.substitute(prepared)
        if spool_large and spool.spool_directory() is not None
        else None
    )
    spooled = None
    if substituted is None:
        message, walkable = parse_structure(prepared, context)
    else:
        # Large bodies stay in the raw bytes (see .spool); the parser reads
        # the rest.
        message, walkable = parse_structure(substituted.small, context)
        if message is not None and walkable:
            spooled = spool.bind(substituted, message)
            if spooled is None:
                return _parse(raw, spool_large=False)
    if message is None:
        return unparseable_message(["unparseable"])
    raw_headers = list(message.raw_items())
    if not raw_headers:
        return unparseable_message(["unparseable", *context.problems])
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    headers: list[tuple[str, str]] = []
    for index, (name, value) in enumerate(raw_headers):
        key = name.strip().lower()
        if key in _LIST_HEADERS:
            lists.setdefault(key, []).append(value)
        elif key in _SINGLE_HEADERS:
            single.setdefault(key, value)
        if index >= MAX_HEADERS:
            context.flag("truncated-headers")
            continue
        decoded = decode_unstructured(value[: 4 * MAX_HEADER_VALUE], context)
        if len(value) > 4 * MAX_HEADER_VALUE or len(decoded) > MAX_HEADER_VALUE:
            context.flag("truncated-headers")
            decoded = decoded[:MAX_HEADER_VALUE]
        headers.append((decode_unstructured(name, context), decoded))

    message_id = decode_message_id(single.get("message-id"), context)
    if message_id is None:
        context.flag("missing-message-id")
    date, offset = decode_date(single.get("date"), context)
    if date is None:
        # A message without a (readable) Date was still dated by every server
        # it passed through; their earliest stamp beats the archive's clock.
        date, offset = decode_received_date(lists.get("received", []), context)
    if message.defects:
        context.flag("defects")

    linesep = "\r\n" if b"\r\n" in raw[: raw.find(b"\n") + 1] else "\n"
    walker = Walker(context, linesep, spooled)
    if walkable:
        where = Placement(
            depth=0,
            text_ok=True,
            html_ok=True,
            related=False,
            body=walker.body,
            collect=True,
        )
        walker.visit(message, where)
    text_body, html_body, attachments, embedded_text = walker.finish()
    in_reply_to = decode_in_reply_to(single.get("in-reply-to"), context)
    references = decode_references(single.get("references"), context)
    subject = decode_unstructured(single.get("subject", ""), context)
    from_ = first_address(single.get("from"), context)
    sender = first_address(single.get("sender"), context)
    to = decode_addresses(", ".join(lists.get("to", [])), context)
    cc = decode_addresses(", ".join(lists.get("cc", [])), context)
    reply_to = decode_addresses(", ".join(lists.get("reply-to", [])), context)

    return ParsedMessage(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        from_=from_,
        sender=sender,
        to=to,
        cc=cc,
        reply_to=reply_to,
        date=date,
        date_offset_minutes=offset,
        text_body=text_body,
        html_body=html_body,
        attachments=attachments,
        headers=headers,
        problems=list(context.problems),
        parseable=True,
        embedded_text=embedded_text,
    )


def body_text_for_search(parsed: ParsedMessage) -> str:
    """Text to index: the text body, else the HTML body as plain text.

    The text of attached messages follows. Pure function.
    """
    own = (
        parsed.text_body if parsed.text_body.strip() else html_to_text(parsed.html_body)
    )
    if parsed.embedded_text:
        return f"{own}\n\n{parsed.embedded_text}" if own else parsed.embedded_text
    return own
