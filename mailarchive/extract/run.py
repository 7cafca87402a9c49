"""Reading one attachment, and the files inside it: the extraction target.

:func:`extract_request` is what an extraction process runs for each request
(``mailarchive.extract:extract_request``, see :mod:`mailarchive.parsing.pool`):
it picks the reader for the file, reads under the limits the request carries
and answers with an :class:`~.request.ExtractResult`; it never raises for what
a file does to a reader, except running out of memory, which the worker turns
into an over-budget answer.

Files inside files are read too, within the same limits: the members of a ZIP
archive (one level: an archive inside an archive is not opened), the body and
attachments of an attached message, and the files and RTF body of a TNEF
stream (``winmail.dat``). Each is introduced by its name in brackets.
"""

from __future__ import annotations

import logging
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from ..parsing import body_text_for_search, parse_message, tnef
from ..parsing.charsets import decode_text
from ..parsing.text import html_to_text
from . import documents, plain
from .guards import (
    ARCHIVE_MAX_MEMBER_BYTES,
    ARCHIVE_MAX_MEMBERS,
    ARCHIVE_MAX_TOTAL_BYTES,
    Refused,
    is_bomb,
    open_zip,
)
from .kinds import Kind, kind_of
from .request import (
    EMPTY,
    FAILED,
    OK,
    UNSUPPORTED,
    ExtractRequest,
    ExtractResult,
    decode_request,
)
from .sink import Stop, TextSink

# How deep files inside files are read: an attachment (0), a file in it (1), a
# file in that (2), e.g. a PDF in a ZIP archive attached to an attached message.
MAX_DEPTH = 2
SNIFF_BYTES = 1024
CONTAINERS = frozenset({Kind.ZIP, Kind.MESSAGE, Kind.TNEF})
# Members looked at to tell an office document from an archive.
DOCUMENT_PROBE = 10_000
_OOXML_MARKERS = (
    ("word/document.xml", Kind.DOCX),
    ("xl/workbook.xml", Kind.XLSX),
    ("ppt/presentation.xml", Kind.PPTX),
)

# Libraries that log every oddity of a broken file; the result says enough.
for _noisy in ("pypdf", "openpyxl", "pptx", "docx", "tnefparse", "compressed_rtf"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)


@dataclass(frozen=True, slots=True)
class Item:
    """A file to read: the attachment itself or a file inside it."""

    name: str
    content_type: str
    data: bytes
    charset: str | None = None
    depth: int = 0
    in_archive: bool = False


def extract_request(frame: bytes) -> ExtractResult:
    """Read the file a request frame carries; the extraction target. Pure."""
    try:
        request = decode_request(frame)
    except ValueError as error:
        return ExtractResult(FAILED, reason="bad-request", detail=str(error))
    return extract(request)


def extract(request: ExtractRequest) -> ExtractResult:
    """Read ``request``'s file under its limits (see :func:`extract_request`)."""
    item = Item(
        name=request.filename,
        content_type=request.content_type,
        data=request.data,
        charset=request.charset,
    )
    kind = kind_of(item.content_type, item.name, item.data[:SNIFF_BYTES])
    if kind is None:
        return ExtractResult(UNSUPPORTED, reason="type")
    sink = TextSink(
        max_chars=request.max_chars,
        deadline=time.monotonic() + request.soft_seconds,
        max_steps=request.max_steps,
    )
    stopped = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            READERS[kind](item, sink)
        except Stop as stop:
            stopped = stop.reason
        except Refused as refused:
            return ExtractResult(
                FAILED,
                reason=refused.reason,
                detail=refused.detail,
                problems=tuple(sink.problems),
            )
        except RecursionError:
            return ExtractResult(
                FAILED, reason="too-complex", detail="nested too deeply to read"
            )
        except MemoryError:
            raise
        except Exception as error:  # whatever a library raises on a broken file
            return ExtractResult(
                FAILED,
                reason="unreadable",
                detail=f"{type(error).__name__}: {error}"[:500],
                problems=tuple(sink.problems),
            )
    text = _clean(sink.text())
    if not text.strip():
        return ExtractResult(EMPTY, reason=stopped, problems=tuple(sink.problems))
    return ExtractResult(
        OK,
        text=text,
        reason=stopped,
        truncated=bool(stopped),
        problems=tuple(sink.problems),
    )


def _clean(text: str) -> str:
    """Text a database accepts: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


def read_inner(item: Item, sink: TextSink) -> None:
    """Read a file found inside another one, introduced by its name.

    What cannot be read is noted on the sink and skipped; only the limits
    (:class:`Stop`) and running out of memory end the outer file's reading.
    """
    kind = kind_of(item.content_type, item.name, item.data[:SNIFF_BYTES])
    if kind is None:
        return
    if kind in CONTAINERS and (item.depth > MAX_DEPTH or item.in_archive):
        if kind is Kind.ZIP:
            sink.note(f"{item.name}: an archive inside an archive is not opened")
        return
    mark = sink.mark()
    sink.add(f"[{item.name}]")
    try:
        READERS[kind](item, sink)
    except (Stop, MemoryError):
        raise
    except Refused as refused:
        sink.note(f"{item.name}: {refused.reason}")
    except RecursionError:
        sink.note(f"{item.name}: too-complex")
    except Exception as error:  # a broken inner file loses only itself
        sink.note(f"{item.name}: unreadable ({type(error).__name__})")
    sink.drop_if_alone(mark)


def _read_zip(item: Item, sink: TextSink) -> None:
    archive = open_zip(item.data)
    document = _document_kind(archive)
    if document is not None:
        READERS[document](item, sink)
        return
    total = 0
    refused = 0
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > ARCHIVE_MAX_MEMBERS:
        sink.note(f"only the first {ARCHIVE_MAX_MEMBERS} of {len(members)} files")
        members = members[:ARCHIVE_MAX_MEMBERS]
    for info in members:
        sink.tick()
        name = _member_name(info)
        if info.flag_bits & 0x1:
            sink.note(f"{name}: encrypted")
            continue
        if kind_of("", name) is None:
            continue
        if is_bomb(info) or info.file_size > ARCHIVE_MAX_MEMBER_BYTES:
            refused += 1
            sink.note(f"{name}: unpacks to {info.file_size} bytes, not read")
            continue
        if total + info.file_size > ARCHIVE_MAX_TOTAL_BYTES:
            refused += 1
            sink.note(f"{name}: the archive unpacks to too much, not read")
            break
        try:
            with archive.open(info) as member:
                # zipfile never unpacks more than the size the entry declares.
                data = member.read(ARCHIVE_MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            sink.note(f"{name}: unreadable ({type(error).__name__})")
            continue
        except NotImplementedError:
            sink.note(f"{name}: packed in a way that is not read")
            continue
        total += len(data)
        read_inner(
            Item(
                name=name,
                content_type="",
                data=data,
                depth=item.depth + 1,
                in_archive=True,
            ),
            sink,
        )
    if refused and not sink.pieces:
        raise Refused("zip-bomb", "; ".join(sink.problems[:5]))


def _document_kind(archive: zipfile.ZipFile) -> Kind | None:
    """The office document a ZIP file is, if it is one."""
    names = set(archive.namelist()[:DOCUMENT_PROBE])
    if "[Content_Types].xml" in names:
        for marker, kind in _OOXML_MARKERS:
            if marker in names:
                return kind
    if "mimetype" in names:
        info = archive.getinfo("mimetype")
        if info.file_size < 200:
            with archive.open(info) as member:
                declared = member.read(200)
            if declared.startswith(b"application/vnd.oasis.opendocument."):
                return Kind.ODF
    return None


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name; names without the UTF-8 flag are in the sender's
    local charset (Shift_JIS on Japanese Windows), not really in CP437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    return decode_text(raw).text


def _read_message(item: Item, sink: TextSink) -> None:
    """An attached message: its sender, subject, text and attachments."""
    parsed = parse_message(item.data)
    for name, value in (
        ("From", parsed.from_.address if parsed.from_ else ""),
        ("Subject", parsed.subject),
    ):
        if value:
            sink.add(f"{name}: {value}")
    plain.add_text(body_text_for_search(parsed), sink)
    for attachment in parsed.attachments:
        if attachment.inline:
            continue
        read_inner(
            Item(
                name=attachment.filename,
                content_type=attachment.content_type,
                data=attachment.content,
                charset=attachment.charset,
                depth=item.depth + 1,
                in_archive=item.in_archive,
            ),
            sink,
        )


def _read_tnef(item: Item, sink: TextSink) -> None:
    """Outlook's winmail.dat: its bodies (text, HTML or RTF), then its files."""
    if not tnef.within_budget(item.data):
        raise Refused("too-complex", "the TNEF stream is built to be slow to read")
    contents = tnef.expand(item.data, with_rtf=True)
    if contents is None:
        raise Refused("unreadable", "not a readable TNEF stream")
    if contents.text_body:
        plain.add_text(_tnef_text(contents.text_body, contents.codepage), sink)
    elif contents.html_body:
        html = _tnef_text(contents.html_body, contents.codepage)
        plain.add_text(html_to_text(html), sink)
    elif contents.rtf_body:
        documents.read_rtf(contents.rtf_body, sink)
    for file in contents.files:
        read_inner(
            Item(
                name=file.name or "attachment",
                content_type="application/ms-tnef" if file.is_embedded_message else "",
                data=file.content,
                depth=item.depth + 1,
                in_archive=item.in_archive,
            ),
            sink,
        )


def _tnef_text(value: str | bytes, codepage: str | None) -> str:
    if isinstance(value, bytes):
        return plain.decoded(value.rstrip(b"\x00"), codepage)
    return value.rstrip("\x00")


READERS: dict[Kind, Callable[[Item, TextSink], None]] = {
    Kind.PDF: lambda item, sink: documents.read_pdf(item.data, sink),
    Kind.DOCX: lambda item, sink: documents.read_docx(item.data, sink),
    Kind.XLSX: lambda item, sink: documents.read_xlsx(item.data, sink),
    Kind.PPTX: lambda item, sink: documents.read_pptx(item.data, sink),
    Kind.ODF: lambda item, sink: documents.read_odf(item.data, sink),
    Kind.RTF: lambda item, sink: documents.read_rtf(item.data, sink),
    Kind.HTML: lambda item, sink: plain.read_html(item.data, item.charset, sink),
    Kind.TEXT: lambda item, sink: plain.read_text(item.data, item.charset, sink),
    Kind.CSV: lambda item, sink: plain.read_text(item.data, item.charset, sink),
    Kind.ZIP: _read_zip,
    Kind.MESSAGE: _read_message,
    Kind.TNEF: _read_tnef,
}
