"""Documents made for the tests with the libraries that write each format.

Each maker returns the bytes of a real file holding ``word`` (and a sentence
around it), so a test can find the file by a word only its content holds.
The hostile makers build what anyone could attach: a PDF that takes far
longer to read than allowed, a ZIP bomb, a spreadsheet that unpacks to
500 MB, an encrypted PDF, a damaged Word file.
"""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from urllib.parse import quote

OOXML = "application/vnd.openxmlformats-officedocument."
DOCX_TYPE = OOXML + "wordprocessingml.document"
XLSX_TYPE = OOXML + "spreadsheetml.sheet"
PPTX_TYPE = OOXML + "presentationml.presentation"
ODT_TYPE = "application/vnd.oasis.opendocument.text"


@dataclass(frozen=True)
class Document:
    """A file to attach: its name, declared type and bytes."""

    filename: str
    content_type: str
    data: bytes


def pdf(lines: list[str], *, japanese: bool = False) -> bytes:
    """A one-page PDF with ``lines``; Japanese through a CID font (no files)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    if japanese:
        pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
        page.setFont("HeiseiMin-W3", 12)
    else:
        page.setFont("Helvetica", 12)
    for number, line in enumerate(lines):
        page.drawString(72, 720 - 18 * number, line)
    page.showPage()
    page.save()
    return buffer.getvalue()


def pdf_english(word: str) -> Document:
    return Document(
        "quotation.pdf",
        "application/pdf",
        pdf([f"Quotation for the {word} project", "Total: 1,200 EUR"]),
    )


def pdf_japanese(word: str) -> Document:
    return Document(
        "見積書.pdf",
        "application/pdf",
        pdf([f"御見積書：{word}の件", "合計金額は百二十万円です。"], japanese=True),
    )


def docx(word: str) -> Document:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Service agreement", level=1)
    document.add_paragraph(f"The {word} clause applies to both parties.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Term"
    table.cell(0, 1).text = "12 months"
    buffer = io.BytesIO()
    document.save(buffer)
    return Document("contract.docx", DOCX_TYPE, buffer.getvalue())


def xlsx(word: str) -> Document:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    sheet.append(["Item", "Price"])
    sheet.append([word, 12.5])
    sheet.append(["価格表", 3])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Document("prices.xlsx", XLSX_TYPE, buffer.getvalue())


def pptx(word: str) -> Document:
    from pptx import Presentation

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Roadmap"
    slide.placeholders[1].text = f"Next quarter: {word} launch"
    buffer = io.BytesIO()
    presentation.save(buffer)
    return Document("roadmap.pptx", PPTX_TYPE, buffer.getvalue())


def odt(word: str) -> Document:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Minutes"))
    document.text.addElement(P(text=f"We agreed on the {word} plan."))
    buffer = io.BytesIO()
    document.save(buffer)
    return Document("minutes.odt", ODT_TYPE, buffer.getvalue())


def rtf(word: str) -> Document:
    body = (
        r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}\f0 "
        rf"Memo about the \b {word}\b0  budget\par Second line\par}}"
    )
    return Document("memo.rtf", "application/rtf", body.encode("ascii"))


def csv_shift_jis(word: str) -> Document:
    """A CSV in Shift_JIS, declared as nothing more than ``text/csv``."""
    text = f"品名,価格\n{word},100\nりんご,200\n"
    return Document("価格.csv", "text/csv", text.encode("cp932"))


def zip_with_pdf(word: str) -> Document:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/quotation.pdf", pdf_english(word).data)
        archive.writestr("photo.jpg", b"\xff\xd8\xff\xe0 not really a picture")
    return Document("documents.zip", "application/zip", buffer.getvalue())


def message_with_docx(word: str) -> Document:
    """A message (as an attached message) that carries a Word document."""
    inner = EmailMessage()
    inner["From"] = "Dana <dana@example.org>"
    inner["To"] = "legal@example.org"
    inner["Subject"] = "Draft for review"
    inner.set_content("See the attached draft.\n")
    contract = docx(word)
    inner.add_attachment(
        contract.data,
        maintype="application",
        subtype=contract.content_type.split("/", 1)[1],
        filename=contract.filename,
    )
    return Document("Draft for review.eml", "message/rfc822", bytes(inner))


def tnef_from_corpus(corpus_dir: Path, name: str) -> Document:
    data = (corpus_dir / "mimekit" / "tnef" / name).read_bytes()
    return Document("winmail.dat", "application/ms-tnef", data)


# -- hostile -------------------------------------------------------------


def _pdf_with_content(content: bytes) -> bytes:
    """A one-page PDF whose page draws ``content`` (Flate-compressed)."""
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
        + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref)
    )
    return out.getvalue()


def slow_pdf() -> Document:
    """A few kilobytes of PDF whose one page takes many seconds to read: a
    million characters each drawn by its own operator."""
    content = b"BT /F1 12 Tf 72 700 Td " + b"(x) Tj 1 0 Td " * 300_000 + b"ET"
    return Document("endless.pdf", "application/pdf", _pdf_with_content(content))


@cache
def zip_bomb() -> Document:
    """A ZIP file of 2 MB whose one member unpacks to 512 MiB of zeros (made
    once per run: packing it takes a second)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("zeros.txt", "w", force_zip64=True) as member,
    ):
        chunk = bytes(1024 * 1024)
        for _ in range(512):
            member.write(chunk)
    return Document("bomb.zip", "application/zip", buffer.getvalue())


@cache
def huge_xlsx(word: str, *, unpacked_bytes: int = 500_000_000) -> Document:
    """A spreadsheet of a few megabytes whose sheet unpacks to ``unpacked_bytes``
    and claims every row and column Excel has (made once per run)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["seed"])
    seed = io.BytesIO()
    workbook.save(seed)
    source = zipfile.ZipFile(io.BytesIO(seed.getvalue()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                out.writestr(info, source.read(info))
        with out.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="'
                b'http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<dimension ref="A1:XFD1048576"/><sheetData>'
            )
            sheet.write(
                b'<row r="1"><c r="A1" t="inlineStr"><is><t>'
                + word.encode()
                + b"</t></is></c></row>"
            )
            cells = b"<c><v>123456</v></c>" * 200
            rows = (b"<row>" + cells + b"</row>") * 200
            written = 0
            while written < unpacked_bytes:
                sheet.write(rows)
                written += len(rows)
            sheet.write(b"</sheetData></worksheet>")
    return Document("everything.xlsx", XLSX_TYPE, buffer.getvalue())


def encrypted_pdf(word: str) -> Document:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf_english(word).data)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return Document("locked.pdf", "application/pdf", buffer.getvalue())


def broken_docx(word: str) -> Document:
    """A Word file cut in half, as a failed upload leaves it."""
    whole = docx(word).data
    return Document("broken.docx", DOCX_TYPE, whole[: len(whole) // 2])


def message_with(
    documents: list[Document],
    *,
    subject: str,
    body: str = "Please see the attached file.\n",
    msgid: str | None = None,
) -> bytes:
    """RFC 5322 bytes of a message with ``documents`` attached (base64)."""
    boundary = "=_attachment-tests"
    lines = [
        "From: Alice Example <alice@example.com>",
        "To: team@example.com",
        f"Subject: {subject}",
        "Date: Thu, 01 May 2025 08:00:00 +0000",
        f"Message-ID: <{msgid or subject.replace(' ', '.')}@example.com>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body.rstrip("\n"),
    ]
    for document in documents:
        lines += [f"--{boundary}", f"Content-Type: {document.content_type}"]
        if document.content_type.startswith("message/"):
            inner = document.data.decode()
            lines += ["Content-Disposition: attachment", "", inner.rstrip("\r\n")]
            continue
        lines += [
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: attachment; filename*=utf-8''"
            + quote(document.filename),
            "",
            base64.encodebytes(document.data).decode("ascii").rstrip("\n"),
        ]
    lines.append(f"--{boundary}--")
    text = "\n".join(lines).replace("\r\n", "\n")
    # CRLF throughout, as a mail server stores it.
    return (text.replace("\n", "\r\n") + "\r\n").encode("utf-8")
