"""Decoding header values: encoded words, addresses, message ids, dates, params.

The email parser keeps each header value as it arrived (8-bit bytes as surrogate
escapes). Decoding starts from that raw value rather than from the modern
policy's header objects, because those replace undeclared 8-bit text and
unknown charsets with U+FFFD; here they go through :mod:`.charsets` instead.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email import policy as email_policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime, parsedate_tz

from .charsets import DecodedText, decode_text, surrogates_to_text
from .results import ParsedAddress

# RFC 2047 encoded word. Encoded text may not hold "?"; spaces inside are
# tolerated because some mailers put them there.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BASE64_JUNK = re.compile(r"[^A-Za-z0-9+/]")
_MESSAGE_ID = re.compile(r"<([^<>]*)>")
_COMMENT = re.compile(r"\([^()]*\)")
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC|UT)\s*([+-])\s*(\d{1,2}):?(\d{2})?\b", re.I)
# One piece of an address list: a quoted string, a comment, an address in
# angle brackets, other text, or a comma. An unclosed one runs to the end.
_ADDRESS_PIECE = re.compile(
    r'"(?:[^"\\]|\\.)*+"?|\((?:[^()\\]|\\.)*+\)?|<[^>]*+>?|[^,"(<]++|,',
    re.DOTALL,
)
# Characters that end an unquoted display name.
_PHRASE_SPECIALS = frozenset(',"<>()')
_CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")

# C0 and C1 controls and DEL become spaces: CR/LF in a decoded header must not
# be able to start a new header line anywhere the value is written out again.
_CONTROL_TO_SPACE = {code: " " for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
# The noncharacters no web page or XML document may carry.
_CONTROL_TO_SPACE |= {0xFFFE: "\ufffd", 0xFFFF: "\ufffd"}

MAX_MESSAGE_ID = 998
# Charset detections per message; past them undeclared 8-bit text that is not
# UTF-8 (or the body's charset) is read as cp1252.
MAX_DETECTIONS = 64
MAX_REFERENCES = 50
MAX_ADDRESSES = 1000
# Longer single addresses are cut (a line may hold 998 characters).
MAX_ADDRESS_LENGTH = 2048
# Address-list text read for one header (all its fields together).
MAX_ADDRESS_LIST = 256 * 1024


class HeaderContext:
    """Collects problem codes while decoding the headers of one message.

    Also holds the message's budget of charset detections
    (``MAX_DETECTIONS``): each costs a millisecond or more, and a message can
    ask for one per header, parameter and part.
    """

    __slots__ = ("_detections", "hint", "problems")

    def __init__(self, hint: str | None = None) -> None:
        self.hint = hint
        self.problems: dict[str, None] = {}
        self._detections = [MAX_DETECTIONS]

    def quiet(self) -> HeaderContext:
        """A context for look-ups whose problems do not count, sharing this
        one's hint and detection budget."""
        other = HeaderContext(self.hint)
        other._detections = self._detections
        return other

    def flag(self, code: str) -> None:
        """Record a problem code once, keeping first-seen order."""
        self.problems[code] = None

    def _spend(self, decoded: DecodedText) -> None:
        if decoded.detected:
            self._detections[0] -= 1

    def bytes_to_text(self, data: bytes, label: str | None) -> str:
        """Decode bytes declared as ``label``, recording charset problems."""
        decoded = decode_text(
            data, label, hint=self.hint, detect=self._detections[0] > 0
        )
        self._spend(decoded)
        if decoded.guessed:
            self.flag("charset-guessed")
        if decoded.unknown_label:
            self.flag("charset-unknown")
        return decoded.text

    def raw_to_text(self, value: str) -> str:
        """Unfold a raw header value and decode its undeclared 8-bit bytes."""
        value = value.replace("\r", "").replace("\n", "")
        if value.isascii():
            return value
        decoded = surrogates_to_text(
            value, hint=self.hint, detect=self._detections[0] > 0
        )
        self._spend(decoded)
        if decoded.guessed:
            self.flag("charset-guessed")
        return decoded.text


def clean_text(value: str) -> str:
    """Neutralise control characters (and the noncharacters U+FFFE, U+FFFF)
    and fold runs of whitespace to one space."""
    return " ".join(value.translate(_CONTROL_TO_SPACE).split())


def decode_words(text: str, context: HeaderContext) -> str:
    """Decode RFC 2047 encoded words in ``text`` in a single pass.

    Whitespace between adjacent encoded words is dropped, and adjacent words in
    the same charset are joined before decoding so a character split across
    them survives. Decoded text is never decoded again, so an encoded word that
    decodes to ``=?...?=`` stays literal. Malformed words stay as they are.
    """
    if "=?" not in text:
        return text
    pieces: list[str] = []
    pending_charset: str | None = None
    pending = bytearray()
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            pieces.append(context.bytes_to_text(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        charset, encoding, payload = match.groups()
        data = _decode_word_payload(encoding, payload)
        if data is None:
            context.flag("bad-encoded-word")
            continue
        between = text[position : match.start()]
        charset = charset.split("*", 1)[0].lower()
        adjacent = pending_charset is not None and not between.strip(" \t")
        if not (adjacent and charset == pending_charset):
            flush()
            if not adjacent:
                pieces.append(between)
            pending_charset = charset
        pending += data
        position = match.end()
    flush()
    pieces.append(text[position:])
    return "".join(pieces)


def _decode_word_payload(encoding: str, payload: str) -> bytes | None:
    if encoding in "qQ":
        try:
            return binascii.a2b_qp(payload.encode("ascii"), header=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
    cleaned = _BASE64_JUNK.sub("", payload)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except binascii.Error:
        return None


def decode_unstructured(raw: str, context: HeaderContext) -> str:
    """Decode a free-text header (Subject, Comments, any header for display)."""
    return clean_text(decode_words(context.raw_to_text(raw), context))


def _address(name: str, address: str, context: HeaderContext) -> ParsedAddress:
    name = clean_text(decode_words(name, context))
    address = clean_text(decode_words(address, context)).replace(" ", "")
    local, at, domain = address.rpartition("@")
    if at:
        address = f"{local}@{domain.lower()}"
    return ParsedAddress(name=name, address=address)


def decode_addresses(raw: str, context: HeaderContext) -> list[ParsedAddress]:
    """Parse an address-list header into decoded names and addresses.

    The list is split at commas outside quotes, comments and angle brackets in
    one pass, and each address goes to ``email.utils.getaddresses`` on its
    own: its cost grows faster than the text it reads (groups, colons), so it
    only ever reads one address of at most ``MAX_ADDRESS_LENGTH``. It works on
    the still-encoded text, so names are decoded by our charset logic; what it
    cannot read goes to the modern policy's address parser. At most
    ``MAX_ADDRESSES`` addresses from the first ``MAX_ADDRESS_LIST`` characters.
    """
    text = context.raw_to_text(raw)
    if len(text) > MAX_ADDRESS_LIST:
        context.flag("truncated-headers")
        text = text[:MAX_ADDRESS_LIST]
    result: list[ParsedAddress] = []
    for item in _address_items(text, context):
        if "<" in item and item.count("@") > 1:
            item = _quote_bare_at_phrase(item)
        try:
            pairs = getaddresses([item])
        except (RecursionError, IndexError, ValueError, TypeError, AttributeError):
            pairs = _modern_addresses(item, context)
        for name, address in pairs:
            if not address and not name:
                continue
            parsed = _address(name, address, context)
            if parsed.address or parsed.name:
                result.append(parsed)
            if len(result) >= MAX_ADDRESSES:
                context.flag("truncated-headers")
                return result
    return result


def _address_items(text: str, context: HeaderContext) -> Iterator[str]:
    """The comma-separated items of an address list, each cut to the limit."""
    pieces: list[str] = []
    length = 0
    for match in _ADDRESS_PIECE.finditer(text):
        piece = match.group()
        if piece == ",":
            if length and not "".join(pieces).isspace():
                yield "".join(pieces)
            pieces, length = [], 0
        elif length < MAX_ADDRESS_LENGTH:
            piece = piece[: MAX_ADDRESS_LENGTH - length]
            pieces.append(piece)
            length += len(piece)
            if length >= MAX_ADDRESS_LENGTH:
                context.flag("truncated-headers")
    if length and not "".join(pieces).isspace():
        yield "".join(pieces)


def _quote_bare_at_phrase(item: str) -> str:
    """Quote an unquoted display name holding "@" before ``<``.

    Outlook writes ``a@b <a@b>``, which both of the email package's address
    parsers read as two addresses.
    """
    bracket = item.find("<")
    phrase = item[:bracket].strip()
    if (
        not phrase
        or phrase[0] == "@"
        or "@" not in phrase
        or any(character in _PHRASE_SPECIALS for character in phrase)
    ):
        return item
    leading = item[: len(item) - len(item.lstrip())]
    trailing = item[len(leading) + len(phrase) : bracket]
    escaped = phrase.replace("\\", "\\\\")
    return f'{leading}"{escaped}"{trailing}{item[bracket:]}'


def _modern_addresses(text: str, context: HeaderContext) -> list[tuple[str, str]]:
    try:
        header = email_policy.default.header_factory("to", text)
        return [
            (address.display_name, address.addr_spec) for address in header.addresses
        ]
    except Exception:  # a header nobody can parse is a problem code
        context.flag("defects")
        return []


def first_address(raw: str | None, context: HeaderContext) -> ParsedAddress | None:
    """The first address of a From/Sender header, or None."""
    if raw is None:
        return None
    addresses = decode_addresses(raw, context)
    return addresses[0] if addresses else None


def _clean_id(value: str) -> str:
    return "".join(value.split())[:MAX_MESSAGE_ID]


def decode_message_id(raw: str | None, context: HeaderContext) -> str | None:
    """The id in a Message-ID header without ``<>``; None when missing or empty."""
    if raw is None:
        return None
    text = clean_text(context.raw_to_text(raw))
    match = _MESSAGE_ID.search(text)
    cleaned = _clean_id(match.group(1) if match else text)
    return cleaned or None


def decode_in_reply_to(raw: str | None, context: HeaderContext) -> str | None:
    """The first message id in In-Reply-To; free text without one gives None."""
    if raw is None:
        return None
    text = clean_text(context.raw_to_text(raw))
    match = _MESSAGE_ID.search(text)
    if match:
        return _clean_id(match.group(1)) or None
    tokens = [token for token in text.split() if "@" in token]
    return _clean_id(tokens[0]) if tokens else None


def decode_references(raw: str | None, context: HeaderContext) -> list[str]:
    """Message ids of References in order, deduplicated, at most 50.

    When there are more, the first (the thread root) and the last 49 (the
    nearest ancestors) are kept: both matter for threading.
    """
    if raw is None:
        return []
    text = clean_text(context.raw_to_text(raw))
    found = _MESSAGE_ID.findall(text) or text.split()
    seen: dict[str, None] = {}
    for value in found:
        cleaned = _clean_id(value)
        if cleaned:
            seen.setdefault(cleaned, None)
    ids = list(seen)
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ids


def decode_date(
    raw: str | None, context: HeaderContext
) -> tuple[datetime | None, int | None]:
    """Parse a Date header into (aware UTC datetime, original offset in minutes).

    A date without a usable zone is taken as UTC with offset None and flagged
    ``date-without-timezone``; an unreadable one gives (None, None) and
    ``bad-date``. Tolerates comments, ``GMT+0200``, two-digit years and ISO 8601.
    """
    if raw is None:
        context.flag("missing-date")
        return None, None
    text = clean_text(context.raw_to_text(raw))
    for _ in range(3):
        text, count = _COMMENT.subn(" ", text)
        if not count:
            break
    text = _GMT_OFFSET.sub(_gmt_offset_to_numeric, text)
    text = " ".join(text.split())
    parsed = _parse_rfc5322_date(text) or _parse_iso_date(text)
    if parsed is None:
        context.flag("bad-date")
        return None, None
    moment, offset_minutes = parsed
    if offset_minutes is None:
        context.flag("date-without-timezone")
    return moment, offset_minutes


# A Received date before this is a clock that was never set, not a date.
_EARLIEST_PLAUSIBLE = datetime(1980, 1, 1, tzinfo=UTC)
# Only so many trace headers are read: a message can carry thousands.
MAX_RECEIVED = 100


def decode_received_date(
    values: list[str], context: HeaderContext
) -> tuple[datetime | None, int | None]:
    """The earliest trustworthy date of the ``Received:`` headers, for mail
    without a readable Date header.

    Trustworthy: the date after a header's last ``;`` parses, names its zone,
    and is not before 1980. Flags ``date-from-received`` when one is used.
    Pure; safe to re-run.
    """
    found: list[tuple[datetime, int | None]] = []
    for raw in values[:MAX_RECEIVED]:
        text = clean_text(context.raw_to_text(raw))
        if ";" not in text:
            continue
        stamp = text.rsplit(";", 1)[1]
        for _ in range(3):
            stamp, count = _COMMENT.subn(" ", stamp)
            if not count:
                break
        parsed = _parse_rfc5322_date(" ".join(stamp.split()))
        if parsed is None or parsed[1] is None or parsed[0] < _EARLIEST_PLAUSIBLE:
            continue
        found.append(parsed)
    if not found:
        return None, None
    context.flag("date-from-received")
    return min(found, key=lambda item: item[0])


def _gmt_offset_to_numeric(match: re.Match[str]) -> str:
    sign, hours, minutes = match.groups()
    return f"{sign}{int(hours):02d}{minutes or '00'}"


def _parse_rfc5322_date(text: str) -> tuple[datetime, int | None] | None:
    try:
        moment = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        moment = None
    if moment is not None:
        offset = moment.utcoffset()
        seconds = None if offset is None else int(offset.total_seconds())
        return _to_utc(moment.replace(tzinfo=None), seconds)
    # parsedate_to_datetime also refuses offsets of a day or more; the local
    # time is still good, so keep it and drop the offset.
    try:
        fields = parsedate_tz(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if fields is None:
        return None
    year, month, day, hour, minute, second = fields[:6]
    try:
        local = datetime(year, month, day, hour, minute, min(second, 59))
    except (ValueError, OverflowError):
        return None
    return _to_utc(local, None)


def _parse_iso_date(text: str) -> tuple[datetime, int | None] | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = moment.utcoffset()
    seconds = None if offset is None else int(offset.total_seconds())
    return _to_utc(moment.replace(tzinfo=None), seconds)


def _to_utc(
    local: datetime, offset_seconds: int | None
) -> tuple[datetime, int | None] | None:
    if offset_seconds is not None and abs(offset_seconds) >= 24 * 3600:
        offset_seconds = None
    zone = (
        UTC if offset_seconds is None else timezone(timedelta(seconds=offset_seconds))
    )
    try:
        moment = local.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    minutes = None if offset_seconds is None else offset_seconds // 60
    return moment, minutes


def decode_params(
    raw: str | None, context: HeaderContext
) -> tuple[str, dict[str, str]]:
    """Split a Content-Type or Content-Disposition value into value and params.

    Parameter names are lower-cased; values are decoded from RFC 2231 (with our
    charset logic) and, where mailers put them, RFC 2047 encoded words.
    """
    if raw is None:
        return "", {}
    text = context.raw_to_text(raw)
    # compat32's parameter parser handles quoting and RFC 2231 continuations on
    # plain strings; the header was already decoded to text above.
    holder = Message()
    holder["Content-Type"] = text
    main = clean_text(text.split(";", 1)[0]).lower()
    params: dict[str, str] = {}
    extended: set[str] = set()
    try:
        pairs = holder.get_params(failobj=[], header="content-type")[1:]
    except (ValueError, IndexError, TypeError, UnicodeError):
        context.flag("defects")
        pairs = []
    for name, value in pairs:
        key = name.strip().lower()
        if isinstance(value, tuple):
            charset, _language, encoded = value
            try:
                data = encoded.encode("latin-1")
            except UnicodeEncodeError:
                data = encoded.encode("utf-8", "surrogateescape")
            params[key] = context.bytes_to_text(data, charset or None)
            extended.add(key)
        elif key not in extended:
            params[key] = decode_words(value, context)
    return main, params


def decode_content_type(
    raw: str | None, default: str, context: HeaderContext
) -> tuple[str, dict[str, str], bool]:
    """(lower-case type/subtype, params, whether the declared type was valid)."""
    main, params = decode_params(raw, context)
    if not main:
        return default, params, True
    if _CONTENT_TYPE.match(main):
        return main, params, True
    context.flag("bad-content-type")
    return "text/plain", params, False


def decode_content_id(raw: str | None, context: HeaderContext) -> str | None:
    """A Content-ID without ``<>`` or whitespace; None when empty."""
    if raw is None:
        return None
    text = clean_text(context.raw_to_text(raw))
    match = _MESSAGE_ID.search(text)
    cleaned = _clean_id(match.group(1) if match else text)
    return cleaned or None


_BIDI_AND_INVISIBLE = dict.fromkeys(
    (0x061C, 0x200B, 0x200E, 0x200F, 0xFEFF, *range(0x202A, 0x202F))
    + tuple(range(0x2066, 0x206A))
)
MAX_FILENAME = 200
MAX_EXTENSION = 16


def safe_filename(name: str, fallback_extension: str) -> str:
    """Make a decoded attachment name safe to show and to offer for download.

    Drops directories, control characters (CR/LF become spaces), bidi overrides
    that disguise extensions, leading dots and trailing dots/spaces; bounds the
    length keeping the extension; falls back to ``attachment`` + extension.
    """
    name = unicodedata.normalize("NFC", name)
    name = clean_text(name).translate(_BIDI_AND_INVISIBLE)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.strip().lstrip(".").rstrip(". ").strip()
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= MAX_EXTENSION:
            keep = MAX_FILENAME - len(extension) - 1
            name = f"{stem[:keep].rstrip('. ')}.{extension}"
        else:
            name = name[:MAX_FILENAME].rstrip(". ")
    return name or f"attachment{fallback_extension}"
