"""Reading the text of attachments: every format, files inside files, limits.

The readers run here in the test process (``extract``) or, for the budget, in
real extraction processes of the parse pool, killed when over it.
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from mailarchive.extract import (
    EMPTY,
    EXTRACT_TARGET,
    FAILED,
    OK,
    UNSUPPORTED,
    ExtractRequest,
    ExtractResult,
    Kind,
    decode_request,
    encode_request,
    extract,
    extract_request,
    guards,
    kind_of,
)
from mailarchive.parsing.pool import OverBudget, ParseBudget, close_idle, parse_one
from tests.mailarchive import documents

MISBEHAVING = "tests.misbehaving_extractor:extract"


def read(document: documents.Document, **limits) -> ExtractResult:
    return extract(
        ExtractRequest(
            content_type=document.content_type,
            filename=document.filename,
            data=document.data,
            **limits,
        )
    )


@pytest.mark.parametrize(
    ("maker", "word"),
    [
        (documents.pdf_english, "zebrafinch"),
        (documents.pdf_japanese, "瑠璃色"),
        (documents.docx, "marmoset"),
        (documents.xlsx, "pangolin"),
        (documents.pptx, "narwhal"),
        (documents.odt, "okapi"),
        (documents.rtf, "ocelot"),
        (documents.csv_shift_jis, "見積書用紙"),
        (documents.zip_with_pdf, "quokka"),
        (documents.message_with_docx, "wombat"),
    ],
    ids=["pdf", "pdf-ja", "docx", "xlsx", "pptx", "odt", "rtf", "csv-sjis", "zip",
         "eml"],
)  # fmt: skip
def test_each_format_gives_its_text(maker, word):
    result = read(maker(word))
    assert result.status == OK, result
    assert word in result.text
    assert not result.truncated


def test_a_file_is_read_whatever_type_it_was_sent_as():
    """GIVEN a Word file sent as application/octet-stream, with and without
    its name THEN it is read as Word all the same."""
    contract = documents.docx("marmoset")
    for name in ("contract.docx", "noname"):
        result = extract(
            ExtractRequest(
                content_type="application/octet-stream",
                filename=name,
                data=contract.data,
            )
        )
        assert "marmoset" in result.text


@pytest.mark.parametrize(
    ("content_type", "filename", "head", "kind"),
    [
        ("application/pdf", "x", b"", Kind.PDF),
        ("application/octet-stream", "Report.PDF", b"", Kind.PDF),
        ("application/octet-stream", "scan", b"%PDF-1.7\n", Kind.PDF),
        ("application/vnd.ms-excel", "list.csv", b"", Kind.CSV),
        ("text/plain", "notes", b"", Kind.TEXT),
        ("application/octet-stream", "winmail.dat", b"", Kind.TNEF),
        ("message/rfc822", "fwd", b"", Kind.MESSAGE),
        ("application/octet-stream", "x", b"PK\x03\x04", Kind.ZIP),
        ("image/png", "logo.png", b"\x89PNG", None),
        ("application/msword", "old.doc", b"\xd0\xcf\x11\xe0", None),
    ],
)
def test_kind_of_trusts_the_type_then_the_name_then_the_bytes(
    content_type, filename, head, kind
):
    assert kind_of(content_type, filename, head) == kind


def test_requests_travel_as_a_header_and_the_bytes_as_they_are():
    request = ExtractRequest(
        content_type="text/csv",
        filename="価格.csv",
        data=b"\x00\xff" * 10,
        charset="shift_jis",
        max_chars=10,
        soft_seconds=1.5,
    )
    assert decode_request(encode_request(request)) == request
    bad = extract_request(b"\x00\x00\x00\x09not json")
    assert (bad.status, bad.reason) == (FAILED, "bad-request")


def test_text_is_cut_at_its_limit_and_marked():
    long_text = documents.Document(
        "long.txt", "text/plain", ("lorem ipsum " * 10_000).encode()
    )
    result = read(long_text, max_chars=1000)
    assert result.status == OK
    assert result.truncated and result.reason == "text-limit"
    assert len(result.text) <= 1000


def _mark_encrypted(data: bytes, name: bytes) -> bytes:
    """``data`` with the member ``name`` flagged as encrypted, in its local
    header and its central directory entry (zipfile writes no encryption)."""
    data = bytearray(data)
    for signature, flags, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + flags] |= 0x1
            start += 4
    return bytes(data)


def test_a_zip_archive_is_read_one_level_deep():
    """GIVEN an archive with a PDF, a picture, an archive inside and an
    encrypted member THEN the PDF is read, the rest is noted and skipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/quotation.pdf", documents.pdf_english("quokka").data)
        archive.writestr("inner.zip", documents.zip_with_pdf("hidden").data)
        archive.writestr("photo.jpg", b"\xff\xd8\xff")
        archive.writestr("locked.txt", b"cipher")
    data = _mark_encrypted(buffer.getvalue(), b"locked.txt")
    result = read(documents.Document("all.zip", "application/zip", data))
    assert result.status == OK
    assert "[a/quotation.pdf]" in result.text and "quokka" in result.text
    assert "hidden" not in result.text and "cipher" not in result.text
    assert any("inner.zip" in problem for problem in result.problems)
    assert any("locked.txt: encrypted" in problem for problem in result.problems)


def test_a_zip_bomb_is_refused_from_its_directory():
    bomb = documents.zip_bomb()
    started = time.monotonic()
    result = read(bomb)
    assert (result.status, result.reason) == (FAILED, "zip-bomb")
    assert time.monotonic() - started < 2


def test_an_archive_of_too_many_files_is_read_only_in_part(monkeypatch):
    monkeypatch.setattr("mailarchive.extract.run.ARCHIVE_MAX_MEMBERS", 3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in range(10):
            archive.writestr(f"{number}.txt", f"member{number}")
    result = read(documents.Document("many.zip", "application/zip", buffer.getvalue()))
    assert "member2" in result.text and "member3" not in result.text
    assert any("first 3 of 10" in problem for problem in result.problems)


def test_a_document_that_would_unpack_too_large_is_refused(monkeypatch):
    monkeypatch.setattr(guards, "DOCUMENT_MAX_PART_BYTES", 1000)
    result = read(documents.docx("marmoset"))
    assert (result.status, result.reason) == (FAILED, "too-large")


def test_a_spreadsheet_of_500_mb_unpacked_is_read_up_to_the_limits():
    """GIVEN a 500 MB sheet (a few MB packed) claiming every row and column
    THEN its first cells are read and reading stops at the text limit, fast."""
    huge = documents.huge_xlsx("platypus")
    assert len(huge.data) < 10_000_000
    started = time.monotonic()
    result = read(huge, max_chars=50_000)
    assert time.monotonic() - started < 10
    assert result.status == OK and result.truncated
    assert "platypus" in result.text


def test_cells_without_text_stop_at_the_work_limit():
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"] = "start"
    sheet["A1048576"] = "end"
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = read(
        documents.Document("sparse.xlsx", documents.XLSX_TYPE, buffer.getvalue()),
        max_steps=10_000,
    )
    assert result.truncated and result.reason == "work-limit"
    assert "start" in result.text and "end" not in result.text


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (documents.encrypted_pdf("secret"), "encrypted"),
        (documents.broken_docx("broken"), "unreadable"),
        (
            documents.Document("x.pdf", "application/pdf", b"%PDF-1.4 garbage"),
            "unreadable",
        ),
    ],
    ids=["encrypted-pdf", "broken-docx", "garbage-pdf"],
)
def test_unreadable_files_fail_with_their_reason(document, reason):
    result = read(document)
    assert (result.status, result.reason) == (FAILED, reason)
    assert result.detail


def test_other_files_are_unsupported_or_empty():
    picture = documents.Document("logo.png", "image/png", b"\x89PNG\r\n\x1a\n")
    assert read(picture).status == UNSUPPORTED
    blank = documents.Document("blank.txt", "text/plain", b"\n\n  \n")
    assert read(blank).status == EMPTY


def test_tnef_gives_its_rtf_body_and_its_files(corpus_dir):
    rtf_only = read(documents.tnef_from_corpus(corpus_dir, "rtf.tnef"))
    assert rtf_only.status == OK and "Compuware" in rtf_only.text
    with_files = read(
        documents.tnef_from_corpus(corpus_dir, "MAPI_ATTACH_DATA_OBJ.tnef")
    )
    assert "[VIA_Nytt_1402.pdf]" in with_files.text
    assert "Flyspesialisten" in with_files.text


def test_an_attached_message_gives_its_text_and_its_attachments():
    result = read(documents.message_with_docx("wombat"))
    assert "Subject: Draft for review" in result.text
    assert "See the attached draft." in result.text
    assert "[contract.docx]" in result.text and "wombat" in result.text


# -- in extraction processes, under the budget -----------------------------

BUDGET = ParseBudget(seconds=2.0, memory_bytes=768 * 1024 * 1024)
# For the reader that eats memory: room on the clock, so that a loaded machine
# cannot make it stop for time before it reaches the memory limit.
MEMORY_ONLY = ParseBudget(seconds=60.0, memory_bytes=768 * 1024 * 1024)


def _request(document: documents.Document) -> bytes:
    return encode_request(
        ExtractRequest(
            content_type=document.content_type,
            filename=document.filename,
            data=document.data,
            soft_seconds=1.5,
        )
    )


def in_process(
    document: documents.Document,
    target: str = EXTRACT_TARGET,
    budget: ParseBudget = BUDGET,
):
    """The result of reading ``document`` in an extraction process, and the
    seconds it took once the process was running (a new process is started
    first: on a busy machine that alone takes seconds)."""
    warm_up = documents.Document("warm-up.txt", "text/plain", b"ready")
    parse_one(_request(warm_up), budget=BUDGET, target=target)
    started = time.monotonic()
    result = parse_one(_request(document), budget=budget, target=target)
    return result, time.monotonic() - started


@pytest.fixture
def fresh_pool():
    yield
    close_idle()


def test_a_pdf_that_takes_forever_is_stopped_at_the_time_limit(fresh_pool):
    """GIVEN a small PDF whose page takes many seconds to read
    THEN its process is killed at the time limit and the next file is read."""
    result, took = in_process(documents.slow_pdf())
    assert isinstance(result, OverBudget) and result.reason == "time"
    assert took < BUDGET.seconds + 1
    after, _took = in_process(documents.pdf_english("zebrafinch"))
    assert isinstance(after, ExtractResult) and "zebrafinch" in after.text


@pytest.mark.parametrize(
    ("name", "reason"),
    [("loop.pdf", "time"), ("grow.pdf", "memory"), ("crash.pdf", "crash")],
)
def test_a_reader_that_loops_eats_memory_or_dies_costs_one_process(
    fresh_pool, name, reason
):
    document = documents.Document(name, "application/pdf", b"%PDF-1.4")
    budget = MEMORY_ONLY if reason == "memory" else BUDGET
    result, took = in_process(document, MISBEHAVING, budget)
    assert isinstance(result, OverBudget) and result.reason == reason
    assert took < budget.seconds + 1
    after, _took = in_process(documents.docx("marmoset"), MISBEHAVING)
    assert isinstance(after, ExtractResult) and "marmoset" in after.text
