"""parse_message on real-world messages from the shared test corpus."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tnefparse import TNEF

from mailarchive.parsing import (
    ParsedAddress,
    ParsedMessage,
    body_text_for_search,
    parse_message,
)
from mailarchive.parsing.locations import MAX_BASES, MAX_LOCATION, LocationIndex


def corpus_dir() -> Path:
    """The read-only corpus; a missing corpus is a failure, never a skip."""
    path = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    if not (path / "mimekit" / "messages").is_dir():
        raise RuntimeError(
            f"test corpus not found at {path}; set MAILARCHIVE_TEST_CORPUS"
        )
    return path


CORPUS = corpus_dir()
MESSAGES = CORPUS / "mimekit" / "messages"
TNEF_DIR = CORPUS / "mimekit" / "tnef"


def read_message(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


def assert_clean_strings(parsed: ParsedMessage) -> None:
    """No surrogate escapes (undecoded bytes) and no NUL anywhere in the result."""

    def check(value: object) -> None:
        if isinstance(value, str):
            value.encode("utf-8")
            assert "\x00" not in value
        elif isinstance(value, list | tuple):
            for item in value:
                check(item)
        elif hasattr(value, "__dataclass_fields__"):
            for item in fields(value):
                check(getattr(value, item.name))

    check(parsed)


@pytest.mark.parametrize("path", sorted(MESSAGES.iterdir()), ids=lambda path: path.name)
def test_every_corpus_message_parses(path: Path) -> None:
    parsed = parse_message(path.read_bytes())

    assert parsed.parseable
    assert "unparseable" not in parsed.problems
    assert parsed.headers
    assert parsed.date is None or parsed.date.tzinfo is UTC
    assert_clean_strings(parsed)
    for attachment in parsed.attachments:
        assert attachment.filename
        assert attachment.sha256 == hashlib.sha256(attachment.content).hexdigest()
        assert "/" in attachment.content_type


def test_japanese_subject_and_body_decode_from_iso_2022_jp() -> None:
    parsed = parse_message(read_message("japanese.txt"))

    assert parsed.subject == "日本語メールテスト (testing Japanese emails)"
    assert "日本語が\n正常に\n送れているか\nテスト." in parsed.text_body
    assert parsed.from_ == ParsedAddress(name="Atsushi Eno", address="x@x.com")
    assert parsed.to == [ParsedAddress(name="Jeffrey Stedfast", address="x@x.com")]
    assert parsed.message_id == "55AE6D15.4010805@veritas-vos-liberabit.com"
    assert parsed.date == datetime(2015, 7, 21, 16, 2, 29, tzinfo=UTC)
    assert parsed.date_offset_minutes == 540
    assert "charset-guessed" not in parsed.problems


def test_mhtml_related_image_is_an_inline_attachment() -> None:
    parsed = parse_message(read_message("multipart-related-mhtml.txt"))

    assert '<img src="image1"' in parsed.html_body
    assert parsed.text_body == ""
    [image] = parsed.attachments
    assert image.content_type == "image/png"
    assert image.inline
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.filename == "attachment.png"
    assert "def" in body_text_for_search(parsed)
    assert image.content_location == "image1"
    assert image.content_base is None


def test_embedded_message_is_kept_as_eml_and_its_text_recorded() -> None:
    parsed = parse_message(read_message("simple-embedded-message.eml"))

    assert parsed.subject == "test of simple embedded message/rfc822 part"
    assert parsed.text_body == "This is the message body.\n"
    [attached] = parsed.attachments
    assert attached.content_type == "message/rfc822"
    assert attached.filename == "embedded message.eml"
    inner = parse_message(attached.content)
    assert inner.subject == "embedded message"
    assert inner.text_body == "This is the embedded message body.\n"
    assert "Subject: embedded message" in parsed.embedded_text
    assert "This is the embedded message body." in parsed.embedded_text
    search = body_text_for_search(parsed)
    assert "This is the message body." in search
    assert "This is the embedded message body." in search


@pytest.mark.parametrize(
    "name", ["delivery-status.txt", "delivery-status-no-blank-line.txt"]
)
def test_delivery_status_report(name: str) -> None:
    parsed = parse_message(read_message(name))

    assert parsed.subject == "email delivery error"
    assert parsed.from_ == ParsedAddress(
        name="The Post Office", address="postmaster@mm1.sprynet.com"
    )
    assert (
        parsed.message_id == "96Jul29.022158-0700pdt.148226-12799+708@mm1.sprynet.com"
    )
    assert parsed.date == datetime(1996, 7, 29, 9, 13, 8, tzinfo=UTC)
    assert parsed.date_offset_minutes == -420
    assert parsed.to == []
    types = [attachment.content_type for attachment in parsed.attachments]
    assert types == ["message/delivery-status", "message/rfc822"]
    status = parsed.attachments[0]
    assert b"Final-Recipient: RFC822; newsletter-request@imusic.com" in status.content
    assert status.filename.endswith(".txt")
    assert "Subject: unsubscribe" in parsed.embedded_text


def test_empty_multipart_alternative_does_not_swallow_its_sibling() -> None:
    parsed = parse_message(read_message("empty-multipart.txt"))

    assert parsed.text_body.startswith(
        "This part should be on the same level as the multipart/alternative"
    )
    assert parsed.attachments == []
    assert "defects" in parsed.problems


def test_missing_subtype_becomes_a_named_attachment() -> None:
    parsed = parse_message(read_message("missing-subtype.txt"))

    assert parsed.text_body == ""
    [attachment] = parsed.attachments
    assert attachment.filename == "document.xml.gz"
    assert attachment.content.startswith(b"blah blah blah")
    assert "bad-content-type" in parsed.problems


def test_stack_overflow_address_list_is_bounded_work() -> None:
    """GIVEN a To header of 32,000 encoded words full of group separators
    WHEN it is parsed THEN the other headers and the body still come out."""
    parsed = parse_message(read_message("stack-overflow.txt"))

    assert parsed.subject == "Message Subject"
    assert parsed.message_id == "aasfasdfasdfa@bb"
    assert parsed.text_body.strip() == "Message Body"
    assert parsed.to[0] == ParsedAddress(name="test", address="test@test.com")
    assert parsed.date == datetime(2017, 11, 3, 20, 0, tzinfo=UTC)
    assert "truncated-headers" in parsed.problems


def test_epilogue_two_digit_year_and_references() -> None:
    parsed = parse_message(read_message("epilogue.txt"))

    assert parsed.date == datetime(1995, 5, 7, 16, 21, 3, tzinfo=UTC)
    assert parsed.date_offset_minutes == 0
    assert parsed.references == [
        "3ohapq$h3b@gandalf.rutgers.edu",
        "3notqh$b52@ns2.ny.ubs.com",
        "3npoh0$2oo@news.blkbox.com",
        "3nqp09$r7t@ns2.ny.ubs.com",
    ]
    assert parsed.reply_to == [ParsedAddress(name="", address="pcu@umich.edu")]
    assert "NeXTSTEP" in parsed.text_body
    assert "Newt-thought" not in parsed.text_body
    assert [a.filename for a in parsed.attachments] == ["attachment.ps"]


def test_unindented_header_continuation_keeps_the_mime_structure() -> None:
    """GIVEN an Exchange header folded without indentation
    WHEN parsed THEN the headers after it, and the MIME structure, survive."""
    parsed = parse_message(read_message("issue358.txt"))

    assert parsed.subject == "R: R: R: I: FR-selca LA selcaE"
    assert parsed.text_body.strip() == "Test headers"
    assert "Test headers" in parsed.html_body
    assert parsed.from_ == ParsedAddress(
        name="jang.abcdef@xyzlinu", address="jang.abcdef@xyzlinux12345678.it"
    )


def test_message_with_byte_order_mark_parses() -> None:
    parsed = parse_message(read_message("feedback-report.txt"))

    assert parsed.parseable
    assert parsed.subject == "FW: Earn money"
    assert "message/feedback-report" in [a.content_type for a in parsed.attachments]


def test_digest_embedded_messages_in_document_order() -> None:
    parsed = parse_message(read_message("multipart-digest.txt"))

    text = parsed.embedded_text
    assert text.index("Subject: submsg") < text.index("m1 body") < text.index("m2 body")


@pytest.mark.parametrize("name", ["body.5.txt", "body.6.txt", "body.7.txt"], ids=str)
def test_alternative_inside_related_and_mixed(name: str) -> None:
    parsed = parse_message(read_message(name))

    assert parsed.text_body == "This is the text body."
    assert parsed.html_body == "<html>This is an <b>html</b> body.</html>"
    inline = [a.filename for a in parsed.attachments if a.inline]
    assert inline == ["empty.gif", "empty.jpg"]


def _wrap_tnef(data: bytes) -> bytes:
    return (
        b"From: Outlook <outlook@example.com>\n"
        b"Subject: tnef\n"
        b"Message-ID: <tnef@example.com>\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=zz\n\n"
        b"--zz\nContent-Type: text/plain\n\nsee attachment\n"
        b"--zz\nContent-Type: application/ms-tnef; name=winmail.dat\n"
        b"Content-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=winmail.dat\n\n"
        + base64.encodebytes(data)
        + b"--zz--\n"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("two-files.tnef", ["AUTHORS", "README"]),
        ("one-file.tnef", ["AUTHORS"]),
        (
            "MAPI_ATTACH_DATA_OBJ.tnef",
            ["VIA_Nytt_1402.doc", "VIA_Nytt_1402.pdf", "VIA_Nytt_14021.htm"],
        ),
        ("attachments.tnef", ["zappa_av1.jpg", "bookmark.htm"]),
        ("long-filename.tnef", ["allproductsmar2000.dat"]),
        (
            "missing-filenames.tnef",
            [
                "generpts.src",
                "TechlibDEC99.doc",
                "TechlibDEC99-JAN00.doc",
                "TechlibNOV99.doc",
            ],
        ),
        ("panic.tnef", ["image001.jpg", "image002.jpg", "image003.png"]),
    ],
)
def test_winmail_dat_expands_to_its_files(name: str, expected: list[str]) -> None:
    data = (TNEF_DIR / name).read_bytes()
    parsed = parse_message(_wrap_tnef(data))

    assert [a.filename for a in parsed.attachments] == expected
    reference = TNEF(data, do_checksum=False)
    assert [a.content for a in parsed.attachments] == [
        bytes(a.data) for a in reference.attachments
    ]
    assert parsed.text_body == "see attachment"
    assert "winmail.dat" not in [a.filename for a in parsed.attachments]


def test_every_tnef_file_parses_without_losing_winmail_dat() -> None:
    for path in sorted(TNEF_DIR.glob("*.tnef")):
        parsed = parse_message(_wrap_tnef(path.read_bytes()))
        assert parsed.parseable, path.name
        assert parsed.attachments or parsed.html_body, path.name
        assert_clean_strings(parsed)


def test_tnef_html_body_is_used_when_the_message_has_none() -> None:
    parsed = parse_message(_wrap_tnef((TNEF_DIR / "body.tnef").read_bytes()))

    assert "<html" in parsed.html_body.lower()
    assert parsed.attachments == []


def test_rtf_only_tnef_keeps_winmail_dat() -> None:
    parsed = parse_message(_wrap_tnef((TNEF_DIR / "rtf.tnef").read_bytes()))

    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert parsed.attachments[0].content_type == "application/ms-tnef"


PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/"
    "iZk9HQAAAABJRU5ErkJggg=="
)


def mime(*lines: str) -> bytes:
    """Message bytes from header and body lines, CRLF line ends."""
    return "\r\n".join(lines).encode("utf-8") + b"\r\n"


def picture(location: str, *extra: str) -> tuple[str, ...]:
    return (
        "Content-Type: image/png",
        "Content-Transfer-Encoding: base64",
        f"Content-Location: {location}",
        *extra,
        "",
        PNG_BASE64,
    )


def test_relative_locations_resolve_against_content_base() -> None:
    """GIVEN a multipart/related with a Content-Base (RFC 2110) and parts with
    relative Content-Locations WHEN parsed THEN each location is the absolute
    URL, the base is kept with the part, and the HTML's relative references
    (however written) name those parts."""
    raw = mime(
        "From: a@example.com",
        "Subject: News",
        "MIME-Version: 1.0",
        'Content-Type: multipart/related; boundary="rel"; type="text/html"',
        'Content-Base: "http://www.example.com/news/"',
        "",
        "--rel",
        "Content-Type: text/html; charset=utf-8",
        "",
        '<p><img src="images/logo.png"><img src="./images/photo.png">'
        '<table background="http://www.example.com/news/bg.png"></table></p>',
        "--rel",
        *picture("images/logo.png"),
        "--rel",
        *picture("images/\r\n photo.png"),
        "--rel",
        *picture("bg.png"),
        "--rel--",
    )
    parsed = parse_message(raw)

    base = "http://www.example.com/news/"
    assert [
        (a.content_location, a.content_base, a.inline) for a in parsed.attachments
    ] == [
        (base + "images/logo.png", base, True),
        (base + "images/photo.png", base, True),
        (base + "bg.png", base, True),
    ]
    index: LocationIndex[int] = LocationIndex()
    for position, item in enumerate(parsed.attachments):
        assert item.content_location is not None
        index.add(item.content_location, item.content_base, position)
    assert index.find("images/logo.png") == 0
    assert index.find(" ./images/photo.png\n") == 1
    assert index.find("http://www.example.com/news/bg.png") == 2
    assert index.find("bg.png") == 2
    assert index.find("images/other.png") is None
    assert index.find("http://www.example.com/bg.png") is None


def test_saved_web_page_resolves_against_the_root_location() -> None:
    """GIVEN a saved web page (MHTML): the root has an absolute file: location,
    the picture's absolute location sits next to it, the HTML refers to it
    relatively WHEN parsed THEN the root's location is the picture's base."""
    raw = mime(
        "From: a@example.com",
        "Subject: Saved page",
        "MIME-Version: 1.0",
        'Content-Type: multipart/related; boundary="rel"; type="text/html"',
        "",
        "--rel",
        "Content-Type: text/html; charset=utf-8",
        "Content-Location: file:///C:/Users/Ann/page.htm",
        "",
        '<img src="page_files/image001.png">',
        "--rel",
        *picture("file:///C:/Users/Ann/page_files/image001.png"),
        "--rel--",
    )
    [image] = parse_message(raw).attachments

    assert image.content_location == "file:///C:/Users/Ann/page_files/image001.png"
    assert image.content_base == "file:///C:/Users/Ann/page.htm"
    index: LocationIndex[str] = LocationIndex()
    index.add(image.content_location, image.content_base, "found")
    assert index.find("page_files/image001.png") == "found"


def test_absolute_location_outside_related_is_inline_only_when_referenced() -> None:
    """GIVEN parts with absolute http locations in multipart/mixed WHEN the HTML
    shows one of them THEN that one is inline and the other stays listed."""
    raw = mime(
        "From: a@example.com",
        "Subject: Logo",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="mix"',
        "",
        "--mix",
        "Content-Type: text/html; charset=utf-8",
        "",
        '<p><img src="http://example.com/logo.png" alt="logo"></p>',
        "--mix",
        *picture("http://example.com/logo.png"),
        "--mix",
        *picture(
            "http://example.com/other.png",
            'Content-Disposition: attachment; filename="other.png"',
        ),
        "--mix--",
    )
    parsed = parse_message(raw)

    assert [
        (a.content_location, a.content_base, a.inline) for a in parsed.attachments
    ] == [
        ("http://example.com/logo.png", None, True),
        ("http://example.com/other.png", None, False),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "=?utf-8?q?http=3A//example.com/caf=C3=A9.png?=",
            "http://example.com/café.png",
        ),
        ("<http://example.com/a.png>", "http://example.com/a.png"),
        ("http://example.com/" + "a" * MAX_LOCATION, None),
        ("   ", None),
    ],
    ids=["encoded-word", "bracketed", "too-long", "blank"],
)
def test_location_header_is_decoded_and_bounded(
    header: str, expected: str | None
) -> None:
    raw = mime(
        "From: a@example.com",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="mix"',
        "",
        "--mix",
        *picture(header),
        "--mix--",
    )
    [image] = parse_message(raw).attachments

    assert image.content_location == expected
    assert image.inline is False


def test_malformed_base_is_ignored() -> None:
    raw = mime(
        "From: a@example.com",
        "MIME-Version: 1.0",
        'Content-Type: multipart/related; boundary="rel"',
        "Content-Location: http://[::1/broken/",
        "",
        "--rel",
        "Content-Type: text/html",
        "",
        '<img src="logo.png">',
        "--rel",
        *picture("logo.png"),
        "--rel--",
    )
    [image] = parse_message(raw).attachments

    assert (image.content_location, image.content_base, image.inline) == (
        "logo.png",
        None,
        True,
    )


def test_location_index_resolves_against_a_bounded_number_of_bases() -> None:
    """GIVEN parts from more groups with different bases than a lookup will
    resolve against WHEN looked up THEN the first groups' parts are found by
    relative references, the later ones by their full location only."""
    index: LocationIndex[int] = LocationIndex()
    for group in range(MAX_BASES + 1):
        base = f"http://example.com/{group}/"
        index.add(f"{base}a.png", base, group)

    assert index.find("a.png") == 0
    assert index.find(f"http://example.com/{MAX_BASES}/a.png") == MAX_BASES
    assert index.find("../1/a.png") == 1
    assert index.find(f"../{MAX_BASES}/a.png") is None
