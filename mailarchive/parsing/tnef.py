"""Expanding Outlook's TNEF (``winmail.dat``) into ordinary attachments."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tnefparse import TNEF

from .charsets import decode_text

logger = logging.getLogger(__name__)

TNEF_CONTENT_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})

# tnefparse copies the rest of the buffer for every object it reads, so the
# work grows with objects x size. Real TNEF has a few objects per attachment;
# a file built from thousands of tiny objects is kept as it is instead.
_COPY_BUDGET_FACTOR = 256
_COPY_BUDGET_FLOOR = 64 * 1024 * 1024
_OBJECT_HEADER = 12
_SIGNATURE_LENGTH = 6
# Names of files past this many in one stream are not given to charset
# detection (a millisecond or more each) when their codepage fails.
_NAME_DETECTIONS = 16


@dataclass(frozen=True, slots=True)
class TnefFile:
    """One file carried inside a TNEF stream."""

    name: str
    content: bytes
    is_embedded_message: bool


@dataclass(slots=True)
class TnefContents:
    """What a TNEF stream held: files and the message bodies Outlook put in it."""

    files: list[TnefFile] = field(default_factory=list)
    text_body: str | bytes | None = None
    html_body: str | bytes | None = None
    codepage: str | None = None
    # The RTF body, decompressed; read only when asked for (see expand).
    rtf_body: bytes | None = None


def is_tnef(content_type: str, filename: str) -> bool:
    """Whether a part is a TNEF stream, by type or by Outlook's file name."""
    return content_type in TNEF_CONTENT_TYPES or filename.lower() == "winmail.dat"


def within_budget(data: bytes) -> bool:
    """Whether tnefparse can read ``data`` without quadratic copying.

    Walks the object lengths the way tnefparse does and adds up the bytes it
    would copy. Pure, linear in the number of objects it visits.
    """
    size = len(data)
    budget = max(_COPY_BUDGET_FLOOR, _COPY_BUDGET_FACTOR * size)
    offset = _SIGNATURE_LENGTH
    copied = 0
    while offset + _OBJECT_HEADER < size:
        declared = int.from_bytes(data[offset + 5 : offset + 9], "little")
        copied += size - offset
        if copied > budget:
            return False
        offset += min(size - offset, declared + 11)
    return True


def expand(data: bytes, *, with_rtf: bool = False) -> TnefContents | None:
    """Read a TNEF stream; None when it is not TNEF or cannot be read.

    ``with_rtf`` also decompresses the RTF body (Outlook's compressed RTF),
    which only text extraction needs. Never raises: tnefparse errors of any
    kind mean "keep the file as it is".
    """
    try:
        parsed = TNEF(data, do_checksum=False)
        contents = TnefContents(
            text_body=parsed.body,
            html_body=parsed.htmlbody,
            codepage=parsed.codepage,
            rtf_body=_rtf_body(parsed) if with_rtf else None,
        )
        for index, attachment in enumerate(parsed.attachments):
            contents.files.append(
                TnefFile(
                    name=_attachment_name(
                        attachment, parsed.codepage, detect=index < _NAME_DETECTIONS
                    ),
                    content=bytes(attachment.data or b""),
                    is_embedded_message=hasattr(attachment, "embed"),
                )
            )
    except Exception:  # tnefparse raises anything on bad input
        logger.debug("TNEF stream could not be read", exc_info=True)
        return None
    return contents


def _rtf_body(parsed: TNEF) -> bytes | None:
    """The decompressed RTF body, or None (none, or it does not decompress)."""
    try:
        value = parsed.rtfbody
    except Exception:  # compressed_rtf raises anything on bad input
        return None
    # Without the decompressor tnefparse hands back the compressed bytes.
    if isinstance(value, bytes) and value.lstrip()[:5] == b"{\\rtf":
        return value
    return None


def _attachment_name(attachment: object, codepage: str | None, *, detect: bool) -> str:
    for reader in ("long_filename", "name"):
        try:
            value = getattr(attachment, reader)
            if callable(value):
                value = value()
        except (UnicodeDecodeError, AttributeError, IndexError, ValueError):
            continue
        if isinstance(value, bytes):
            value = decode_text(value.rstrip(b"\x00"), codepage, detect=detect).text
        if isinstance(value, str) and value.strip("\x00 "):
            return value.strip("\x00 ")
    return ""
