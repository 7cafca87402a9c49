"""Turning bytes of mail text into ``str`` without mojibake.

Mail declares charsets with labels that Python does not know (``x-sjis``,
``ks_c_5601-1987``, ``iso-8859-8-i``), with labels that are lies (UTF-8 sent as
``us-ascii`` or ``iso-8859-1``), with subsets of what is really used (Shift_JIS
text with Windows extensions, ISO-2022-JP with NEC symbols) or with nothing at
all. :func:`decode_text` tries the declared charset, then the superset that mail
programs really meant, then UTF-8, then detection with charset-normalizer.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from charset_normalizer import from_bytes

# Labels that say "no idea" rather than naming a charset.
_UNDECLARED_LABELS = frozenset(
    {
        "",
        "unknown",
        "unknown-8bit",
        "x-unknown",
        "8bit",
        "7bit",
        "binary",
        "default",
        "x-user-defined",
        "none",
        "charset",
    }
)

# Labels seen in real mail that Python's codec registry does not resolve, or
# resolves to a narrower codec than the sending program used.
_LABEL_ALIASES = {
    "x-sjis": "cp932",
    "sjis": "cp932",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "x-shift-jis": "cp932",
    "windows-31j": "cp932",
    "x-ms-cp932": "cp932",
    "x-euc-jp": "euc_jp",
    "x-euc": "euc_jp",
    "cp51932": "euc_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "iso-2022-jp-ms": "iso2022_jp",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "x-windows-949": "cp949",
    "windows-949": "cp949",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-8-e": "iso8859_8",
    "iso_8859-8-i": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-6-e": "iso8859_6",
    "windows-874": "cp874",
    "x-windows-874": "cp874",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "gb2312": "gbk",
    "gb_2312-80": "gbk",
    "x-gbk": "gbk",
    "cn-gb": "gbk",
    "euc-cn": "gbk",
    "x-euc-cn": "gbk",
    "x-x-big5": "big5",
    "x-big5": "big5",
    "unicode-1-1-utf-7": "utf_7",
    "x-unicode-2-0-utf-7": "utf_7",
    "unicode": "utf_16",
    "x-unicode": "utf_16",
    "ucs-2": "utf_16_be",
    "iso-10646-ucs-2": "utf_16_be",
    "unicodefffe": "utf_16_be",
    "x-mac-roman": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ce": "mac_latin2",
    "x-mac-greek": "mac_greek",
    "x-mac-turkish": "mac_turkish",
    "x-mac-icelandic": "mac_iceland",
    "koi8-ru": "koi8_u",
    # WHATWG practice: mail labelled Latin-1 or ASCII is written on Windows.
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
}

# When the declared codec rejects the bytes, these supersets or siblings are
# what the sender most likely used. ``_iso2022jp_via_cp932`` stands in for the
# Windows code pages 50220-50222 that Python lacks.
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "cp932": ("shift_jis_2004", "shift_jisx0213"),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "euc_jp": ("euc_jis_2004", "euc_jisx0213"),
    "iso2022_jp": (
        "iso2022_jp_ext",
        "cp50220",
        "iso2022_jp_2",
        "iso2022_jp_2004",
        "iso2022_jp_3",
    ),
    "iso2022_jp_1": ("iso2022_jp_2", "cp50220"),
    "iso2022_jp_2": ("cp50220", "iso2022_jp_2004"),
    "iso2022_kr": ("cp949",),
    "gbk": ("gb18030",),
    "gb2312": ("gbk", "gb18030"),
    "hz": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "cp950": ("big5hkscs",),
    "euc_kr": ("cp949",),
    "cp1252": ("latin_1",),
    "cp1254": ("iso8859_9",),
    "cp874": ("iso8859_11",),
    "utf_16": ("utf_16_le",),
}


# Codecs in the registry that are not character encodings for mail text.
_NOT_MAIL_CODECS = frozenset(
    {
        "idna",
        "punycode",
        "unicode_escape",
        "raw_unicode_escape",
        "undefined",
        "mbcs",
        "oem",
        "charmap",
        "utf_16_internal",
        "utf_32_internal",
    }
)

# Enough text for charset-normalizer to decide; detecting on more costs time
# without changing the answer.
_DETECTION_SAMPLE = 64 * 1024


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Text decoded from bytes, and how sure the decoding was."""

    text: str
    guessed: bool = False  # decoded with something other than the declared label
    unknown_label: bool = False  # the declared label names no charset we know
    detected: bool = False  # charset-normalizer was asked


@lru_cache(maxsize=512)
def resolve_charset(label: str | None) -> str | None:
    """Map a charset label from a mail header to a Python text codec name.

    Returns None for missing, "unknown" or unrecognised labels. Pure and cached.
    """
    if not label:
        return None
    cleaned = label.strip().strip("\"'").strip().lower()
    # RFC 2231 allows "utf-8*en"; broken headers leave parameters attached.
    for separator in ("*", ";", " ", "\t"):
        cleaned = cleaned.split(separator, 1)[0]
    if cleaned in _UNDECLARED_LABELS:
        return None
    candidates = [cleaned, cleaned.replace("_", "-")]
    if cleaned.startswith("x-"):
        candidates.append(cleaned[2:])
    if cleaned.startswith(("cp-", "ibm-")):
        candidates.append(cleaned.replace("-", "", 1))
    for candidate in candidates:
        alias = _LABEL_ALIASES.get(candidate)
        if alias is not None:
            return alias
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError):
            continue
        name = info.name.replace("-", "_")
        if name in _NOT_MAIL_CODECS or not getattr(info, "_is_text_encoding", True):
            return None
        # Decode through the same superset table as an explicit alias would.
        return _LABEL_ALIASES.get(info.name, name)
    return None


@lru_cache(maxsize=256)
def _is_single_byte(codec: str) -> bool:
    # Single-byte charsets accept nearly any bytes, so a mislabel shows only as
    # "this is valid UTF-8"; multi-byte charsets reject most foreign text.
    try:
        decoded = bytes(range(0x80, 0x100)).decode(codec, errors="replace")
    except LookupError:
        return False
    return len(decoded) == 0x80 and decoded.count("\ufffd") < 0x40


@lru_cache(maxsize=256)
def _declares_ascii(label: str) -> bool:
    try:
        return codecs.lookup(label.strip().strip("\"'").strip()).name == "ascii"
    except (LookupError, ValueError):
        return False


def is_known_label(label: str | None) -> bool:
    """Whether ``label`` is empty/"unknown" or names a charset we can decode."""
    if not label:
        return True
    cleaned = label.strip().strip("\"'").strip().lower().split("*", 1)[0]
    return cleaned in _UNDECLARED_LABELS or resolve_charset(label) is not None


def _try_decode(data: bytes, codec: str) -> str | None:
    if codec == "cp50220":
        return _iso2022jp_via_cp932(data)
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf8_or_none(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _detect(data: bytes) -> str | None:
    sample = data[:_DETECTION_SAMPLE]
    try:
        best = from_bytes(sample).best()
    except Exception:  # detection is best effort, never fatal
        return None
    if best is None or not best.encoding:
        return None
    codec = resolve_charset(best.encoding)
    if codec is None:
        return None
    decoded = _try_decode(data, codec)
    if decoded is None:
        # The sample decided the charset; a stray byte later is replaced rather
        # than throwing away a correct guess for the whole text.
        decoded = data.decode(codec, errors="replace")
    return decoded


def decode_text(
    data: bytes,
    label: str | None = None,
    *,
    hint: str | None = None,
    detect: bool = True,
) -> DecodedText:
    """Decode mail text declared as ``label`` (``hint``: a charset to try next).

    ``detect=False`` skips charset-normalizer (a millisecond or more per call)
    and falls back to cp1252 directly. Never raises; the result never
    contains undecoded surrogates. Pure function.
    """
    if not data:
        return DecodedText("", unknown_label=not is_known_label(label))
    codec = resolve_charset(label)
    unknown = codec is None and not is_known_label(label)
    if codec is not None:
        if _is_single_byte(codec) and not data.isascii():
            as_utf8 = _utf8_or_none(data)
            if as_utf8 is not None:
                return DecodedText(as_utf8, guessed=True)
        for candidate in (codec, *_FALLBACKS.get(codec, ())):
            text = _try_decode(data, candidate)
            if text is not None:
                lied = label is not None and _declares_ascii(label)
                return DecodedText(text, guessed=lied and not data.isascii())
    if data.isascii():
        return DecodedText(data.decode("ascii"), unknown_label=unknown)
    declared = codec is not None or unknown
    as_utf8 = _utf8_or_none(data)
    if as_utf8 is not None:
        # Undeclared UTF-8 is what RFC 6532 permits; only a contradicted
        # declaration counts as a guess.
        return DecodedText(as_utf8, guessed=declared, unknown_label=unknown)
    # A body declared as ASCII says nothing about 8-bit header bytes.
    hinted = None if not hint or _declares_ascii(hint) else resolve_charset(hint)
    if hinted is not None:
        for candidate in (hinted, *_FALLBACKS.get(hinted, ())):
            text = _try_decode(data, candidate)
            if text is not None:
                return DecodedText(text, guessed=True, unknown_label=unknown)
    detected = _detect(data) if detect else None
    if detected is not None:
        return DecodedText(detected, guessed=True, unknown_label=unknown, detected=True)
    # cp1252 with Latin-1 for its five holes decodes every byte string.
    text = _try_decode(data, "cp1252") or data.decode("latin_1")
    return DecodedText(text, guessed=True, unknown_label=unknown, detected=detect)


def surrogates_to_text(
    value: str, *, hint: str | None = None, detect: bool = True
) -> DecodedText:
    """Decode raw 8-bit bytes that the email package kept as surrogate escapes.

    ``value`` is a header or parameter value as stored by the email parser;
    characters that are already text are kept. ``detect`` as for
    :func:`decode_text`. Pure function.
    """
    if value.isascii():
        return DecodedText(value)
    data = value.encode("utf-8", "surrogateescape")
    decoded = decode_text(data, None, hint=hint, detect=detect)
    if not _is_utf8(data):
        decoded = _most_plausible_header(data, decoded, hint=hint)
    # Raw UTF-8 in headers is RFC 6532; only other charsets are guesses.
    return DecodedText(
        decoded.text,
        guessed=decoded.guessed or not _is_utf8(data),
        detected=decoded.detected,
    )


# Legacy charsets that undeclared 8-bit header bytes are commonly in, tried
# against what the body's charset or the detector made of a short header.
_HEADER_CANDIDATES = ("cp1251", "koi8_r", "cp1252", "cp1250", "iso8859_7", "cp1253")


_HEBREW_FINALS = frozenset("ךםןףץ")
# Japanese, Chinese and Korean words mix these freely.
_EAST_ASIAN_SCRIPTS = frozenset(
    {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "FULLWIDTH", "HALFWIDTH", "IDEOGRAPHIC"}
)


def _word_plausible(word: str) -> bool:
    """Whether a word reads as text rather than as bytes in the wrong charset:
    letters of one script, no mark before the first letter, no Hebrew final
    letter inside a word, no run of three accented Latin letters (mojibake of
    another script), no capital right after a small letter."""
    scripts = set()
    accented = 0
    previous_lower = False
    for index, char in enumerate(word):
        if not char.isalpha():
            if index == 0 and unicodedata.category(char).startswith("M"):
                return False
            accented, previous_lower = 0, False
            continue
        if char in _HEBREW_FINALS and index + 1 < len(word):
            return False
        name = unicodedata.name(char, "")
        script = name.split(" ", 1)[0]
        scripts.add("CJK" if script in _EAST_ASIAN_SCRIPTS else script)
        if name.startswith("LATIN") and not char.isascii():
            accented += 1
            if accented >= 3:
                return False
        else:
            accented = 0
        if char.isupper() and previous_lower:
            return False
        previous_lower = char.islower()
    return len(scripts) <= 1


def _plausibility(text: str) -> int:
    """Words of ``text`` that read as text minus those that do not."""
    score = 0
    for word in text.split():
        core = word.strip(".,;:!?\"'()[]«»-–—/")
        if core and not core.isascii():
            score += 1 if _word_plausible(core) else -1
    return score


def _has_controls(text: str) -> bool:
    """Whether ``text`` holds control characters, which no subject is written in."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def hint_is_multibyte(hint: str | None) -> bool:
    """Whether ``hint`` names a charset of more than one byte per character."""
    codec = resolve_charset(hint)
    return codec is not None and not _is_single_byte(codec)


def _most_plausible_header(
    data: bytes, first: DecodedText, *, hint: str | None
) -> DecodedText:
    """``first`` (the body's charset or the detector's guess), or a common
    legacy charset whose reading of undeclared header bytes is more plausible.

    A header is a few words: too short for the detector to be sure, and the
    body's charset often differs from the one the sending program used for
    the subject. Pure function.
    """
    if not first.detected and hint_is_multibyte(hint):
        # A multi-byte charset that decodes the bytes at all is no accident.
        return first
    best, best_score = first, _plausibility(first.text)
    for codec in _HEADER_CANDIDATES:
        text = _try_decode(data, codec)
        if text is None or text == best.text or _has_controls(text):
            continue
        score = _plausibility(text)
        if score > best_score:
            best = DecodedText(text, guessed=True, detected=first.detected)
            best_score = score
    return best


def _is_utf8(data: bytes) -> bool:
    return _utf8_or_none(data) is not None


# JIS X 0208 modes: ESC $ @ (1978) and ESC $ B (1983/1990).
_ESC = 0x1B


def _iso2022jp_via_cp932(data: bytes) -> str | None:
    """Decode ISO-2022-JP as Windows does (code page 50220-50222).

    Windows encodes NEC and IBM extensions (circled digits, Roman numerals) in
    JIS X 0208 rows that Python's ISO-2022-JP codecs reject. Each two-byte JIS
    code maps arithmetically onto Shift_JIS, which cp932 decodes with those
    extensions. Returns None when the bytes use an escape we do not handle.
    """
    out = bytearray()
    mode = "ascii"
    shifted = False
    index = 0
    length = len(data)
    while index < length:
        byte = data[index]
        if byte == _ESC:
            sequence = data[index + 1 : index + 3]
            if sequence in (b"(B", b"(J"):
                mode = "ascii"
            elif sequence == b"(I":
                mode = "katakana"
            elif sequence in (b"$@", b"$B"):
                mode = "jis"
            elif sequence == b"&@" and data[index + 3 : index + 6] == b"\x1b$B":
                index += 3
                mode = "jis"
            else:
                return None
            index += 3
            continue
        if byte == 0x0E:  # SO: half-width katakana (code page 50222)
            shifted = True
            index += 1
            continue
        if byte == 0x0F:
            shifted = False
            index += 1
            continue
        if byte in (0x0A, 0x0D):
            out.append(byte)
            index += 1
            continue
        if shifted or mode == "katakana":
            if 0x21 <= byte <= 0x5F:
                out.append(byte + 0x80)
            else:
                out.append(byte)
            index += 1
            continue
        if mode == "jis":
            if index + 1 >= length:
                return None
            high, low = byte, data[index + 1]
            if not (0x21 <= high <= 0x7E and 0x21 <= low <= 0x7E):
                return None
            out += _jis_to_sjis(high, low)
            index += 2
            continue
        if 0xA1 <= byte <= 0xDF:
            # Raw 8-bit half-width katakana, as some Windows programs send.
            out.append(byte)
        elif byte >= 0x80:
            return None
        else:
            out.append(byte)
        index += 1
    try:
        return bytes(out).decode("cp932")
    except UnicodeDecodeError:
        return None


def _jis_to_sjis(high: int, low: int) -> bytes:
    if high % 2:
        first = (high + 1) // 2 + 0x70
        second = low + 0x1F
        if second >= 0x7F:
            second += 1
    else:
        first = high // 2 + 0x70
        second = low + 0x7E
    if first >= 0xA0:
        first += 0x40
    return bytes((first, second))
