"""Readers of documents: PDF, Word, Excel, PowerPoint, OpenDocument and RTF.

Each reader takes the file's bytes and a :class:`~.sink.TextSink`, adds the
text it finds in reading order, and raises :class:`~.guards.Refused` for a
file it will not read (encrypted, too large unpacked). Anything else a library
raises on a broken file is turned into a failure by the caller. The libraries
are imported on first use, so an extraction process loads only those its
files need.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .guards import Refused, check_document, open_zip
from .sink import Stop, TextSink

# Sheets of one workbook read at most; every cell (even an empty one a row
# pads with) counts as work for the sink.
MAX_SHEETS = 200
_WORD_PARTS = re.compile(
    r"^/word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml$"
)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def read_pdf(data: bytes, sink: TextSink) -> None:
    """The text of every page, in page order; an unreadable page is skipped."""
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (PdfReadError, ValueError, OSError) as error:
        raise Refused("unreadable", f"not a readable PDF: {error}") from error
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except (DependencyError, NotImplementedError, PdfReadError) as error:
            raise Refused(
                "encrypted", f"encrypted in a way not read: {error}"
            ) from error
        if opened == PasswordType.NOT_DECRYPTED:
            raise Refused("encrypted", "the PDF is encrypted with a password")
    for number, page in enumerate(_pages(reader), start=1):
        sink.tick()
        sink.check_clock()
        try:
            text = page.extract_text()
        except (Stop, MemoryError, RecursionError):
            raise
        except Exception as error:  # one broken page does not lose the others
            sink.note(f"page {number}: {type(error).__name__}")
            continue
        sink.add(text)


def _pages(reader: Any) -> Iterator[Any]:
    try:
        count = len(reader.pages)
    except (Stop, MemoryError, RecursionError):
        raise
    except Exception as error:  # a broken page tree
        raise Refused(
            "unreadable", f"the PDF's pages cannot be found: {error}"
        ) from error
    for index in range(count):
        try:
            yield reader.pages[index]
        except (Stop, MemoryError, RecursionError):
            raise
        except Exception:  # a page that cannot be found is skipped
            continue


def read_docx(data: bytes, sink: TextSink) -> None:
    """Paragraphs and table cells of the body, then headers, footers and notes."""
    import docx

    check_document(open_zip(data))
    document = docx.Document(io.BytesIO(data))
    parts = [document.part]
    parts += [
        part
        for part in document.part.package.iter_parts()
        if part is not document.part and _WORD_PARTS.match(str(part.partname))
    ]
    for part in parts:
        _word_paragraphs(part.element, sink)


def _word_paragraphs(root: Any, sink: TextSink) -> None:
    """Each ``w:p`` as one line; text boxes inside a paragraph as their own."""
    from lxml import etree

    line: list[str] = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag == _W + "t" and element.text:
                line.append(element.text)
            elif tag == _W + "tab":
                line.append("\t")
            elif tag in (_W + "br", _W + "cr"):
                line.append("\n")
            else:
                sink.tick()
        elif tag == _W + "p" and line:
            sink.add("".join(line))
            line.clear()


def read_xlsx(data: bytes, sink: TextSink) -> None:
    """Each sheet's name, then its rows with their cells separated by tabs.

    Opened read-only, so sheets are streamed; the sizes a sheet declares are
    ignored (they may claim a million rows).
    """
    import openpyxl

    check_document(open_zip(data), streamed_prefix="xl/worksheets/")
    workbook = openpyxl.load_workbook(
        io.BytesIO(data), read_only=True, data_only=True, keep_links=False
    )
    try:
        for number, sheet in enumerate(workbook.worksheets):
            if number >= MAX_SHEETS:
                sink.note(f"only the first {MAX_SHEETS} sheets were read")
                break
            rows = getattr(sheet, "iter_rows", None)
            if rows is None:
                continue
            sink.add(str(sheet.title))
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()
            for row in rows(values_only=True):
                sink.tick(1 + len(row))
                cells = [_cell(value) for value in row if value is not None]
                if cells:
                    sink.add("\t".join(cells))
    finally:
        workbook.close()


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_pptx(data: bytes, sink: TextSink) -> None:
    """Each slide's text frames and tables in order, then its notes."""
    from pptx import Presentation

    check_document(open_zip(data))
    presentation = Presentation(io.BytesIO(data))
    for slide in presentation.slides:
        sink.tick()
        _slide_shapes(slide.shapes, sink)
        if slide.has_notes_slide:
            frame = slide.notes_slide.notes_text_frame
            if frame is not None:
                _frame(frame, sink)


def _slide_shapes(shapes: Iterable[Any], sink: TextSink) -> None:
    pending = list(shapes)
    while pending:
        shape = pending.pop(0)
        sink.tick()
        inner = getattr(shape, "shapes", None)
        if inner is not None:
            # A group: its shapes come next, in their order.
            pending[:0] = list(inner)
            continue
        if getattr(shape, "has_text_frame", False):
            _frame(shape.text_frame, sink)
        if getattr(shape, "has_table", False):
            for row in shape.table.rows:
                sink.add("\t".join(cell.text for cell in row.cells))


def _frame(frame: Any, sink: TextSink) -> None:
    for paragraph in frame.paragraphs:
        sink.add(paragraph.text)


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_ODF_LINES = frozenset({(_ODF_TEXT, "p"), (_ODF_TEXT, "h")})
_ODF_BREAKS = {
    (_ODF_TEXT, "s"): " ",
    (_ODF_TEXT, "tab"): "\t",
    (_ODF_TEXT, "line-break"): "\n",
}


def read_odf(data: bytes, sink: TextSink) -> None:
    """Paragraphs and headings of a text, spreadsheet or presentation.

    Spreadsheet cells are paragraphs too; repeated empty cells are never
    expanded.
    """
    from odf.opendocument import load

    check_document(open_zip(data))
    document = load(io.BytesIO(data))
    line: list[str] = []
    # Walked with a stack of (node, leaving) pairs: documents nest deeply.
    stack: list[tuple[Any, bool]] = [(document.body, False)]
    while stack:
        node, leaving = stack.pop()
        sink.tick()
        if leaving:
            if line:
                sink.add("".join(line))
                line.clear()
            continue
        if node.nodeType == node.TEXT_NODE:
            line.append(str(node.data))
            continue
        qname = getattr(node, "qname", None)
        if qname in _ODF_BREAKS:
            line.append(_ODF_BREAKS[qname])
            continue
        if qname in _ODF_LINES or qname == (_ODF_TABLE, "table-cell"):
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.childNodes))
    if line:
        sink.add("".join(line))


def read_rtf(data: bytes, sink: TextSink) -> None:
    """The text of an RTF document (its code page taken from the file)."""
    from striprtf.striprtf import rtf_to_text

    # RTF is 7-bit with escapes; stray 8-bit bytes are kept as Latin-1.
    text = rtf_to_text(data.decode("latin-1"), errors="ignore")
    for line in text.splitlines():
        if line.strip():
            sink.add(line)
