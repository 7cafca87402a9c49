"""Which reader a file needs, from its declared type, its name and its first bytes.

Mail programs label attachments loosely: a PDF often comes as
``application/octet-stream``, a CSV as ``text/plain`` or as
``application/vnd.ms-excel``. The declared type decides when it names a kind
this module reads; otherwise the file name's extension, then the first bytes.
Pure functions, cheap enough to call in the indexing process before anything
is handed to an extraction process.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    ODF = "odf"
    RTF = "rtf"
    HTML = "html"
    TEXT = "text"
    CSV = "csv"
    ZIP = "zip"
    MESSAGE = "message"
    TNEF = "tnef"


_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."

BY_TYPE: dict[str, Kind] = {
    "application/pdf": Kind.PDF,
    "application/x-pdf": Kind.PDF,
    _OOXML + "wordprocessingml.document": Kind.DOCX,
    _OOXML + "wordprocessingml.template": Kind.DOCX,
    "application/vnd.ms-word.document.macroenabled.12": Kind.DOCX,
    _OOXML + "spreadsheetml.sheet": Kind.XLSX,
    _OOXML + "spreadsheetml.template": Kind.XLSX,
    "application/vnd.ms-excel.sheet.macroenabled.12": Kind.XLSX,
    _OOXML + "presentationml.presentation": Kind.PPTX,
    _OOXML + "presentationml.slideshow": Kind.PPTX,
    "application/vnd.ms-powerpoint.presentation.macroenabled.12": Kind.PPTX,
    _ODF + "text": Kind.ODF,
    _ODF + "spreadsheet": Kind.ODF,
    _ODF + "presentation": Kind.ODF,
    "application/rtf": Kind.RTF,
    "application/x-rtf": Kind.RTF,
    "text/rtf": Kind.RTF,
    "text/richtext": Kind.RTF,
    "text/html": Kind.HTML,
    "application/xhtml+xml": Kind.HTML,
    "text/csv": Kind.CSV,
    "text/tab-separated-values": Kind.CSV,
    "application/csv": Kind.CSV,
    "application/zip": Kind.ZIP,
    "application/x-zip": Kind.ZIP,
    "application/x-zip-compressed": Kind.ZIP,
    "message/rfc822": Kind.MESSAGE,
    "message/global": Kind.MESSAGE,
    "message/news": Kind.MESSAGE,
    "application/ms-tnef": Kind.TNEF,
    "application/vnd.ms-tnef": Kind.TNEF,
}

BY_EXTENSION: dict[str, Kind] = {
    ".pdf": Kind.PDF,
    ".docx": Kind.DOCX,
    ".docm": Kind.DOCX,
    ".dotx": Kind.DOCX,
    ".xlsx": Kind.XLSX,
    ".xlsm": Kind.XLSX,
    ".xltx": Kind.XLSX,
    ".pptx": Kind.PPTX,
    ".pptm": Kind.PPTX,
    ".ppsx": Kind.PPTX,
    ".odt": Kind.ODF,
    ".ods": Kind.ODF,
    ".odp": Kind.ODF,
    ".rtf": Kind.RTF,
    ".html": Kind.HTML,
    ".htm": Kind.HTML,
    ".xhtml": Kind.HTML,
    ".txt": Kind.TEXT,
    ".text": Kind.TEXT,
    ".md": Kind.TEXT,
    ".log": Kind.TEXT,
    ".ini": Kind.TEXT,
    ".json": Kind.TEXT,
    ".xml": Kind.TEXT,
    ".ics": Kind.TEXT,
    ".vcf": Kind.TEXT,
    ".csv": Kind.CSV,
    ".tsv": Kind.CSV,
    ".zip": Kind.ZIP,
    ".eml": Kind.MESSAGE,
}

# Text types that are data for programs rather than prose: never worth reading.
_NOT_TEXT = frozenset({"text/x-vcard-binary"})


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def kind_of(content_type: str, filename: str, head: bytes = b"") -> Kind | None:
    """The reader for a file, or None when no reader applies.

    ``head`` is the first bytes of the content (a few hundred are plenty).
    """
    declared = content_type.strip().lower()
    known = BY_TYPE.get(declared)
    if known is not None:
        return known
    name = filename.strip().lower()
    if name == "winmail.dat":
        return Kind.TNEF
    by_name = BY_EXTENSION.get(_extension(name))
    if by_name is not None:
        return by_name
    by_content = _sniff(head)
    if by_content is not None:
        return by_content
    if declared.startswith("text/") and declared not in _NOT_TEXT:
        return Kind.TEXT
    return None


def _sniff(head: bytes) -> Kind | None:
    """What the first bytes say the file is; None when they say nothing."""
    stripped = head.lstrip()
    if head.startswith(b"%PDF-") or head[:1024].find(b"%PDF-") >= 0:
        return Kind.PDF
    if stripped.startswith(b"{\\rtf"):
        return Kind.RTF
    if head.startswith(b"PK\x03\x04"):
        # Office documents are ZIP files; which one is decided inside.
        return Kind.ZIP
    if head.startswith(b"\x78\x9f\x3e\x22"):
        return Kind.TNEF
    return None
