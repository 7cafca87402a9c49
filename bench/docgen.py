"""Realistic office documents for the extraction benchmark, every kind it reads.

Made with the same libraries the archive reads them with (reportlab writes
the PDFs), at the sizes mail carries: a few pages of a quotation, a contract
of a hundred paragraphs, a price list of a couple of thousand rows. Each call
with another ``seed`` gives another file (content-addressed storage would read
identical ones once). Pure Python; no Django.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import mailgen

OOXML = "application/vnd.openxmlformats-officedocument."


@dataclass(frozen=True)
class Doc:
    kind: str
    filename: str
    content_type: str
    data: bytes


def _sentences(rng: random.Random, count: int, lang: str = "en") -> list[str]:
    pool = mailgen.JA_GENERAL if lang == "ja" else mailgen.EN_GENERAL
    return [rng.choice(pool) for _ in range(count)]


def pdf(rng: random.Random, *, pages: int = 5, lang: str = "en") -> Doc:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    font = "Helvetica"
    if lang == "ja":
        pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
        font = "HeiseiMin-W3"
    for _ in range(pages):
        page.setFont(font, 10)
        for line, sentence in enumerate(_sentences(rng, 45, lang)):
            page.drawString(50, 800 - 16 * line, sentence[:90])
        page.showPage()
    page.save()
    name = "見積書.pdf" if lang == "ja" else "quotation.pdf"
    return Doc(f"pdf-{lang}", name, "application/pdf", buffer.getvalue())


def docx(rng: random.Random, *, paragraphs: int = 150) -> Doc:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Service agreement", level=1)
    for sentence in _sentences(rng, paragraphs):
        document.add_paragraph(sentence)
    table = document.add_table(rows=20, cols=3)
    for row in table.rows:
        for cell in row.cells:
            cell.text = str(rng.randint(1, 99_999))
    buffer = io.BytesIO()
    document.save(buffer)
    return Doc(
        "docx",
        "contract.docx",
        OOXML + "wordprocessingml.document",
        buffer.getvalue(),
    )


def xlsx(rng: random.Random, *, rows: int = 2000, columns: int = 8) -> Doc:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Prices")
    sheet.append([f"column {n}" for n in range(columns)])
    words = mailgen.EN_GENERAL
    for _ in range(rows):
        sheet.append(
            [rng.choice(words)[:30]]
            + [rng.randint(1, 10**6) for _ in range(columns - 1)]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Doc("xlsx", "prices.xlsx", OOXML + "spreadsheetml.sheet", buffer.getvalue())


def pptx(rng: random.Random, *, slides: int = 10) -> Doc:
    from pptx import Presentation

    presentation = Presentation()
    for _ in range(slides):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = rng.choice(mailgen.TOPICS)[0].title()
        slide.placeholders[1].text = "\n".join(_sentences(rng, 6))
    buffer = io.BytesIO()
    presentation.save(buffer)
    return Doc(
        "pptx", "roadmap.pptx", OOXML + "presentationml.presentation", buffer.getvalue()
    )


def odt(rng: random.Random, *, paragraphs: int = 100) -> Doc:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    for sentence in _sentences(rng, paragraphs):
        document.text.addElement(P(text=sentence))
    buffer = io.BytesIO()
    document.save(buffer)
    return Doc(
        "odt",
        "minutes.odt",
        "application/vnd.oasis.opendocument.text",
        buffer.getvalue(),
    )


def rtf(rng: random.Random, *, paragraphs: int = 150) -> Doc:
    body = "".join(
        f"\\pard {sentence}\\par\n" for sentence in _sentences(rng, paragraphs)
    )
    data = (r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}\f0 " + body + "}").encode(
        "ascii", "replace"
    )
    return Doc("rtf", "memo.rtf", "application/rtf", data)


def csv_sjis(rng: random.Random, *, rows: int = 3000) -> Doc:
    lines = ["品名,数量,価格"]
    for _ in range(rows):
        name = rng.choice(mailgen.TOPICS)[1]
        lines.append(f"{name},{rng.randint(1, 99)},{rng.randint(100, 99_999)}")
    return Doc("csv-sjis", "価格表.csv", "text/csv", "\n".join(lines).encode("cp932"))


def html(rng: random.Random, *, paragraphs: int = 120) -> Doc:
    body = "".join(f"<p>{sentence}</p>\n" for sentence in _sentences(rng, paragraphs))
    data = f"<html><body><h1>Report</h1>{body}</body></html>".encode()
    return Doc("html", "report.html", "text/html", data)


def zipped(rng: random.Random) -> Doc:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("quotation.pdf", pdf(rng, pages=2).data)
        archive.writestr("contract.docx", docx(rng, paragraphs=60).data)
        archive.writestr("scan.jpg", rng.randbytes(30_000))
    return Doc("zip", "documents.zip", "application/zip", buffer.getvalue())


MAKERS: dict[str, Callable[[random.Random], Doc]] = {
    "pdf-en": lambda rng: pdf(rng),
    "pdf-ja": lambda rng: pdf(rng, pages=3, lang="ja"),
    "docx": docx,
    "xlsx": xlsx,
    "pptx": pptx,
    "odt": odt,
    "rtf": rtf,
    "csv-sjis": csv_sjis,
    "html": html,
    "zip": zipped,
}


def document(kind: str, seed: int) -> Doc:
    """The document of ``kind`` for ``seed`` (the same seed, the same file)."""
    return MAKERS[kind](random.Random(seed))
