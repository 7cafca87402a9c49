"""parse_message on hostile and broken input: it must never raise or blow up."""

from __future__ import annotations

import base64
import email.message
import gzip
import random
import tracemalloc
from dataclasses import fields
from datetime import UTC, datetime

import pytest

from mailarchive.parsing import ParsedMessage, parse_message
from mailarchive.parsing.message import MAX_DEPTH


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


def message(headers: str, body: bytes = b"body\n") -> bytes:
    return headers.encode("utf-8", "surrogateescape") + b"\n\n" + body


def with_attachment(disposition: str, payload: bytes = b"data") -> bytes:
    return (
        b"From: a@example.com\nSubject: files\n"
        b"Content-Type: multipart/mixed; boundary=zz\n\n"
        b"--zz\nContent-Type: text/plain\n\nhello\n"
        b"--zz\nContent-Type: application/octet-stream\n"
        + disposition.encode("utf-8", "surrogateescape")
        + b"\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(payload)
        + b"--zz--\n"
    )


def test_encoded_crlf_in_subject_cannot_inject_headers() -> None:
    parsed = parse_message(message("Subject: =?utf-8?q?Hello=0d=0aBcc:_x@evil.test?="))

    assert parsed.subject == "Hello Bcc: x@evil.test"
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    assert all("\n" not in value for _name, value in parsed.headers)


def test_encoded_crlf_and_path_in_filename_are_neutralised() -> None:
    raw = with_attachment(
        'Content-Disposition: attachment; filename="=?utf-8?q?a=0d=0aContent-Type:'
        '_text/html=00.txt?="'
    )
    [attachment] = parse_message(raw).attachments

    assert attachment.filename == "html .txt"
    assert "\r" not in attachment.filename and "\n" not in attachment.filename


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\me\\\\report.pdf"', "report.pdf"),
        ('attachment; filename=".htaccess"', "htaccess"),
        ('attachment; filename="invoice\u202etxt.exe"', "invoicetxt.exe"),
        ('attachment; filename="   "', "attachment.bin"),
        ("attachment", "attachment.bin"),
        ('attachment; filename="trailing. . ."', "trailing"),
        (
            "attachment; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.pdf",
            "naïve résumé.pdf",
        ),
        (
            "attachment; filename*0*=iso-8859-1''r%E9sum%E9; filename*1=.pdf",
            "résumé.pdf",
        ),
        ("attachment; filename*=x-sjis''%93%FA%96%7B.txt", "日本.txt"),
        ('attachment; filename="=?utf-8?b?w6l0w6kucGRm?="', "été.pdf"),
        ('attachment; filename="\xe6\x97\xa5\xe6\x9c\xac.pdf"', "日本.pdf"),
    ],
)
def test_filenames_are_decoded_and_made_safe(disposition: str, expected: str) -> None:
    raw = with_attachment("Content-Disposition: " + disposition)
    if "\xe6" in disposition:
        raw = raw.replace(disposition.encode("utf-8"), disposition.encode("latin-1"))
    [attachment] = parse_message(raw).attachments

    assert attachment.filename == expected


def test_long_filename_is_bounded_and_keeps_its_extension() -> None:
    raw = with_attachment(
        f'Content-Disposition: attachment; filename="{"x" * 5000}.pdf"'
    )
    [attachment] = parse_message(raw).attachments

    assert len(attachment.filename) <= 200
    assert attachment.filename.endswith("x.pdf")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?utf-8?q?=3D=3Futf-8=3Fq=3Fnested=3F=3D?=", "=?utf-8?q?nested?="),
        ("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=", "café"),
        ("=?utf-8?b?w6k=?=  \t =?utf-8?b?w6k=?=", "éé"),
        ("=?iso-8859-1?q?a?= b =?iso-8859-1?q?c?=", "a b c"),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=?utf-8?x?not-an-encoding?=", "=?utf-8?x?not-an-encoding?="),
        ("=?utf-8?b?w6l0w6k?=", "été"),
        ("=?UTF-8*en?Q?Hello_World?=", "Hello World"),
        ("prefix=?utf-8?q?Mid?=suffix", "prefixMidsuffix"),
        ("=?iso-8859-1?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
        ("=?utf-8?q?tab=09and=00nul?=", "tab and nul"),
    ],
)
def test_encoded_words(subject: str, expected: str) -> None:
    parsed = parse_message(message(f"Subject: {subject}"))

    assert parsed.subject == expected
    assert_clean_strings(parsed)


def test_unknown_charset_in_encoded_word_is_flagged() -> None:
    parsed = parse_message(message("Subject: =?x-nonsense?q?plain_text?="))

    assert parsed.subject == "plain text"
    assert "charset-unknown" in parsed.problems


def test_raw_utf8_and_shift_jis_subjects() -> None:
    utf8 = parse_message("Subject: Grüße aus Köln\n\nbody\n".encode())
    assert utf8.subject == "Grüße aus Köln"
    assert "charset-guessed" not in utf8.problems

    sjis = parse_message(
        b"Subject: "
        + "日本語の件名".encode("shift_jis")
        + b"\nContent-Type: text/plain; charset=Shift_JIS\n\n"
        + "本文".encode("shift_jis")
    )
    assert sjis.subject == "日本語の件名"
    assert sjis.text_body == "本文"
    assert "charset-guessed" in sjis.problems


def test_ten_thousand_headers() -> None:
    headers = "".join(f"X-Filler-{index}: value {index}\n" for index in range(10_000))
    parsed = parse_message(message(headers + "Subject: still found\nMessage-ID: <m@x>"))

    assert parsed.subject == "still found"
    assert parsed.message_id == "m@x"
    assert len(parsed.headers) == 500
    assert parsed.headers[0] == ("X-Filler-0", "value 0")
    assert "truncated-headers" in parsed.problems


def test_long_header_value_is_cut() -> None:
    parsed = parse_message(message("X-Long: " + "a" * 100_000 + "\nSubject: s"))

    [(name, value)] = [item for item in parsed.headers if item[0] == "X-Long"]
    assert len(value) == 10 * 1024
    assert "truncated-headers" in parsed.problems
    assert parsed.subject == "s"


def nested_multipart(levels: int) -> bytes:
    parts = [b"From: deep@example.com\nSubject: deep\nMIME-Version: 1.0\n"]
    for level in range(levels):
        parts.append(
            b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (level, level)
        )
    parts.append(b"Content-Type: text/plain\n\ndeep body\n")
    for level in reversed(range(levels)):
        parts.append(b"--b%d--\n" % level)
    return b"".join(parts)


def test_nesting_within_the_limit_reaches_the_body() -> None:
    parsed = parse_message(nested_multipart(MAX_DEPTH - 1))

    assert parsed.text_body == "deep body"
    assert "too-deep" not in parsed.problems


@pytest.mark.parametrize("levels", [100, 2000])
def test_deep_nesting_is_bounded(levels: int) -> None:
    """GIVEN multiparts nested 100 and 2000 levels deep
    WHEN parsed THEN no RecursionError escapes, headers survive, the depth is
    reported."""
    parsed = parse_message(nested_multipart(levels))

    assert parsed.parseable
    assert parsed.subject == "deep"
    assert "too-deep" in parsed.problems
    assert parsed.text_body == ""


def test_nested_message_rfc822_chain_is_bounded() -> None:
    raw = b"Subject: innermost\n\ninnermost body\n"
    for level in range(150):
        raw = (b"Subject: level %d\nContent-Type: message/rfc822\n\n" % level) + raw
    parsed = parse_message(raw)

    assert parsed.subject == "level 149"
    assert "too-deep" in parsed.problems


def test_each_payload_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[int, int] = {}
    original = email.message.Message.get_payload

    def counting(
        self: email.message.Message, i: int | None = None, decode: bool = False
    ) -> object:
        if decode:
            calls[id(self)] = calls.get(id(self), 0) + 1
        return original(self, i, decode)

    monkeypatch.setattr(email.message.Message, "get_payload", counting)
    raw = (
        b"From: a@example.com\nSubject: many\n"
        b"Content-Type: multipart/mixed; boundary=zz\n\n"
        + b"".join(
            b"--zz\nContent-Type: application/pdf; name=f%d.pdf\n"
            b"Content-Transfer-Encoding: base64\n\n"
            % index
            + base64.encodebytes(b"%PDF" * 1000)
            for index in range(5)
        )
        + b"--zz--\n"
    )
    parsed = parse_message(raw)

    assert len(parsed.attachments) == 5
    assert calls and max(calls.values()) == 1


def test_large_base64_part_memory_is_bounded_by_raw_size() -> None:
    """GIVEN a 4 MiB attachment WHEN parsed THEN peak memory stays within a small
    multiple of the raw message, and the content round-trips."""
    payload = random.Random(7).randbytes(4 * 1024 * 1024)
    raw = (
        b"From: a@example.com\nSubject: big\n"
        b"Content-Type: multipart/mixed; boundary=zz\n\n"
        b"--zz\nContent-Type: text/plain\n\nhi\n"
        b"--zz\nContent-Type: application/octet-stream; name=big.bin\n"
        b"Content-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(payload)
        + b"--zz--\n"
    )
    tracemalloc.start()
    try:
        parsed = parse_message(raw)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert parsed.attachments[0].content == payload
    assert peak < 10 * len(raw)


def test_compressed_attachment_is_not_expanded() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    raw = (
        b"From: a@example.com\nSubject: bomb\n"
        b"Content-Type: multipart/mixed; boundary=zz\n\n"
        b"--zz\nContent-Type: application/gzip; name=bomb.gz\n"
        b"Content-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(bomb)
        + b"--zz--\n"
    )
    tracemalloc.start()
    try:
        parsed = parse_message(raw)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert parsed.attachments[0].content == bomb
    assert peak < 10 * len(raw)


def test_nul_bytes_and_invalid_utf8() -> None:
    raw = (
        b"Subject: nul\x00here \xff\xfe\nFrom: a\x00b@example.com\n"
        b"Content-Type: text/plain; charset=utf-8\n\n"
        b"text \x00 with nul and \xc3\x28 invalid utf-8 \xe2\x82\xac\n"
    )
    parsed = parse_message(raw)

    assert_clean_strings(parsed)
    assert "with nul" in parsed.text_body
    assert "charset-guessed" in parsed.problems


@pytest.mark.parametrize(
    "raw",
    [b"", b"\n\n\n", random.Random(3).randbytes(4096), b"\x00" * 100],
    ids=["empty", "blank-lines", "random-bytes", "nul-bytes"],
)
def test_not_a_message_at_all(raw: bytes) -> None:
    parsed = parse_message(raw)

    assert not parsed.parseable
    assert parsed.problems == ["unparseable"]
    assert parsed.attachments == []


def test_garbage_never_raises() -> None:
    """Mutations of a valid multipart message: truncations and byte flips."""
    original = with_attachment('Content-Disposition: attachment; filename="a.pdf"')
    rng = random.Random(11)
    for _ in range(300):
        mutated = bytearray(original[: rng.randrange(len(original) + 1)])
        for _flip in range(rng.randrange(8)):
            if mutated:
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        assert_clean_strings(parse_message(bytes(mutated)))


def test_missing_and_empty_message_id() -> None:
    assert parse_message(message("Subject: x")).message_id is None
    assert "missing-message-id" in parse_message(message("Subject: x")).problems
    assert parse_message(message("Message-ID: <>")).message_id is None
    assert parse_message(message("Message-ID:  < a b@c >")).message_id == "ab@c"


@pytest.mark.parametrize(
    ("value", "expected", "offset", "problem"),
    [
        (
            "Tue, 12 Nov 2013 09:12:42 -0500",
            datetime(2013, 11, 12, 14, 12, 42),
            -300,
            None,
        ),
        ("Sun, 7 May 95 16:21:03 GMT", datetime(1995, 5, 7, 16, 21, 3), 0, None),
        ("12 Nov 13 09:12 +0100", datetime(2013, 11, 12, 8, 12), 60, None),
        (
            "Wed, 20 Sep 1995 00:19:00 (EDT) -0400",
            datetime(1995, 9, 20, 4, 19),
            -240,
            None,
        ),
        ("Thu, 8 Mar 2005 17:40:36 EDT", datetime(2005, 3, 8, 21, 40, 36), -240, None),
        (
            "Tue, 12 Nov 2013 09:12:42 GMT+0200",
            datetime(2013, 11, 12, 7, 12, 42),
            120,
            None,
        ),
        ("2017-08-20T10:08:28.617Z", datetime(2017, 8, 20, 10, 8, 28, 617000), 0, None),
        (
            "Tue, 12 Nov 2013 09:12:42",
            datetime(2013, 11, 12, 9, 12, 42),
            None,
            "date-without-timezone",
        ),
        (
            "Tue, 12 Nov 2013 09:12:42 -0000",
            datetime(2013, 11, 12, 9, 12, 42),
            None,
            "date-without-timezone",
        ),
        (
            "Tue, 12 Nov 2013 09:12:42 +9900",
            datetime(2013, 11, 12, 9, 12, 42),
            None,
            "date-without-timezone",
        ),
        ("garbage", None, None, "bad-date"),
        ("Tue, 31 Feb 2013 09:12:42 +0000", None, None, "bad-date"),
        ("Mon, 1 Jan 99999 00:00:00 +0000", None, None, "bad-date"),
        ("", None, None, "bad-date"),
    ],
)
def test_dates(
    value: str, expected: datetime | None, offset: int | None, problem: str | None
) -> None:
    parsed = parse_message(message(f"Date: {value}"))

    assert parsed.date == (expected.replace(tzinfo=UTC) if expected else None)
    assert parsed.date_offset_minutes == offset
    if problem:
        assert problem in parsed.problems
    else:
        assert not {"bad-date", "date-without-timezone"} & set(parsed.problems)


def test_missing_date_is_flagged() -> None:
    parsed = parse_message(message("Subject: no date"))

    assert parsed.date is None
    assert "missing-date" in parsed.problems


def test_references_are_deduplicated_and_bounded() -> None:
    ids = [f"<id{index}@example.com>" for index in range(120)]
    parsed = parse_message(
        message(
            "References: "
            + " ".join(ids + ids[:10])
            + "\nIn-Reply-To: <id119@example.com> (x)"
        )
    )

    assert len(parsed.references) == 50
    assert parsed.references[0] == "id0@example.com"
    assert parsed.references[-1] == "id119@example.com"
    assert parsed.references[1] == "id71@example.com"
    assert parsed.in_reply_to == "id119@example.com"


def test_addresses() -> None:
    parsed = parse_message(
        message(
            "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <Joerg@Example.COM>\n"
            'To: "Doe, Jane" <Jane@EXAMPLE.org>, plain@Example.Net,\n'
            " Team: one@example.com, two@example.com;, undisclosed-recipients:;\n"
            "Cc: bob@example.com <bob@Example.com>\n"
            "Reply-To: list@example.com\n"
            "Sender: =?iso-8859-1?q?Ren=E9?= <rene@example.com>"
        )
    )

    assert (parsed.from_.name, parsed.from_.address) == (
        "Jörg Müller",
        "Joerg@example.com",
    )
    assert [(a.name, a.address) for a in parsed.to] == [
        ("Doe, Jane", "Jane@example.org"),
        ("", "plain@example.net"),
        ("", "one@example.com"),
        ("", "two@example.com"),
    ]
    assert [(a.name, a.address) for a in parsed.cc] == [
        ("bob@example.com", "bob@example.com")
    ]
    assert parsed.reply_to[0].address == "list@example.com"
    assert parsed.sender.name == "René"


def test_tnef_with_thousands_of_tiny_objects_is_kept_unexpanded() -> None:
    tiny_object = b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    data = b"\x78\x9f\x3e\x22\x00\x00" + tiny_object * 200_000
    raw = (
        b"From: a@example.com\nSubject: tnef\n"
        b"Content-Type: application/ms-tnef; name=winmail.dat\n"
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(data)
    )
    parsed = parse_message(raw)

    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert parsed.attachments[0].content == data
    assert "tnef-too-complex" in parsed.problems


def test_unreadable_tnef_is_kept() -> None:
    raw = (
        b"From: a@example.com\nSubject: tnef\n"
        b"Content-Type: application/ms-tnef; name=winmail.dat\n\nnot tnef at all\n"
    )
    parsed = parse_message(raw)

    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert "tnef-unreadable" in parsed.problems


def test_cid_referenced_image_is_inline_even_outside_related() -> None:
    raw = (
        b"From: a@example.com\nSubject: cid\n"
        b"Content-Type: multipart/mixed; boundary=zz\n\n"
        b'--zz\nContent-Type: text/html\n\n<img src="cid:Logo@Example">\n'
        b"--zz\nContent-Type: image/png\nContent-ID: <Logo@Example>\n\npng\n"
        b"--zz\nContent-Type: image/png\nContent-ID: <other@example>\n\npng\n"
        b"--zz--\n"
    )
    parsed = parse_message(raw)

    assert [(a.content_id, a.inline) for a in parsed.attachments] == [
        ("Logo@Example", True),
        ("other@example", False),
    ]
