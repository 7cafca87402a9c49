"""Charsets, content identity and search text of parsed messages."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from mailarchive.parsing import body_text_for_search, content_digest, parse_message
from mailarchive.parsing.charsets import decode_text, resolve_charset

SAMPLES = {
    "ja": "日本語のメールは正しく読めますか。テストです。",
    "zh": "这是一封中文邮件，用于测试字符集。",
    "tw": "這是一封繁體中文郵件，用於測試字元集。",
    "ko": "한국어 메일 제목과 본문을 시험합니다.",
    "ru": "Привет! Это письмо на русском языке для проверки кодировок.",
    "el": "Καλημέρα, αυτό είναι ένα ελληνικό μήνυμα.",
    "he": "שלום, זוהי הודעה בעברית.",
    "th": "สวัสดีครับ นี่คือข้อความภาษาไทย",
    "de": "Grüße aus Köln – „Anführungszeichen“ und €.",
    "tr": "Türkçe karakterler: ğüşıöç ĞÜŞİÖÇ.",
    "vi": "Đ ư ơ đ à ₫ Ă â",
}


def text_message(body: bytes, content_type: str) -> bytes:
    return b"Subject: s\nContent-Type: " + content_type.encode() + b"\n\n" + body


@pytest.mark.parametrize(
    ("label", "codec", "sample"),
    [
        ("ISO-2022-JP", "iso2022_jp", "ja"),
        ("Shift_JIS", "shift_jis", "ja"),
        ("EUC-JP", "euc_jp", "ja"),
        ("GB2312", "gb2312", "zh"),
        ("GBK", "gbk", "zh"),
        ("GB18030", "gb18030", "zh"),
        ("Big5", "big5", "tw"),
        ("KOI8-R", "koi8_r", "ru"),
        ("windows-1251", "cp1251", "ru"),
        ("windows-1252", "cp1252", "de"),
        ("windows-1253", "cp1253", "el"),
        ("windows-1254", "cp1254", "tr"),
        ("windows-1255", "cp1255", "he"),
        ("windows-1258", "cp1258", "vi"),
        ("iso-8859-7", "iso8859_7", "el"),
        ("x-sjis", "cp932", "ja"),
        ("ks_c_5601-1987", "cp949", "ko"),
        ("EUC-KR", "euc_kr", "ko"),
        ("iso-8859-8-i", "iso8859_8", "he"),
        ("windows-874", "cp874", "th"),
        ("TIS-620", "tis_620", "th"),
        ("unicode-1-1-utf-7", "utf_7", "de"),
        ("utf-8", "utf_8", "ja"),
        ('"UTF-8"', "utf_8", "ko"),
    ],
)
def test_declared_charsets_and_mislabels(label: str, codec: str, sample: str) -> None:
    text = SAMPLES[sample]
    parsed = parse_message(
        text_message(text.encode(codec), f"text/plain; charset={label}")
    )

    assert parsed.text_body == text
    assert "charset-guessed" not in parsed.problems
    assert "charset-unknown" not in parsed.problems


def test_shift_jis_with_windows_extensions() -> None:
    text = "①②③ ㈱ Ⅲ 髙﨑"
    parsed = parse_message(
        text_message(text.encode("cp932"), "text/plain; charset=Shift_JIS")
    )

    assert parsed.text_body == text


def test_iso_2022_jp_with_nec_extensions() -> None:
    """GIVEN ISO-2022-JP as Windows writes it (circled digits in row 13)
    WHEN decoded THEN the extension characters come out, not replacement marks."""
    body = b'\x1b$B-!-"-#\x1b(B and \x1b$BF|K\\8l\x1b(B'
    parsed = parse_message(text_message(body, "text/plain; charset=iso-2022-jp"))

    assert parsed.text_body == "①②③ and 日本語"


def test_iso_2022_jp_half_width_katakana() -> None:
    body = b"\x1b(I6E\x1b(B"
    parsed = parse_message(text_message(body, "text/plain; charset=ISO-2022-JP"))

    assert parsed.text_body == "ｶﾅ"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("Grüße – €".encode(), "text/plain; charset=us-ascii", "Grüße – €"),
        ("Grüße – €".encode(), "text/plain; charset=iso-8859-1", "Grüße – €"),
        ("Grüße".encode("cp1252"), "text/plain; charset=us-ascii", "Grüße"),
        ("日本語".encode(), "text/plain", "日本語"),
    ],
)
def test_lying_or_missing_declarations(
    body: bytes, content_type: str, expected: str
) -> None:
    parsed = parse_message(text_message(body, content_type))

    assert parsed.text_body == expected


def test_latin1_label_reads_windows_quotes() -> None:
    body = "“quoted” – dash".encode("cp1252")
    parsed = parse_message(text_message(body, "text/plain; charset=iso-8859-1"))

    assert parsed.text_body == "“quoted” – dash"


def test_undeclared_8bit_text_is_detected() -> None:
    text = SAMPLES["ru"] * 5
    parsed = parse_message(text_message(text.encode("cp1251"), "text/plain"))

    assert parsed.text_body == text
    assert "charset-guessed" in parsed.problems


def test_unknown_label_is_flagged_and_text_still_decoded() -> None:
    text = SAMPLES["ja"]
    parsed = parse_message(text_message(text.encode(), "text/plain; charset=x-bogus"))

    assert parsed.text_body == text
    assert "charset-unknown" in parsed.problems


def test_html_meta_charset_is_honoured() -> None:
    html = '<html><head><meta charset="koi8-r"></head><body>Привет</body></html>'
    parsed = parse_message(text_message(html.encode("koi8_r"), "text/html"))

    assert parsed.html_body == html


@pytest.mark.parametrize("label", ["base64", "rot13", "unicode_escape", "idna", "zlib"])
def test_codecs_that_are_not_charsets_are_refused(label: str) -> None:
    assert resolve_charset(label) is None
    assert decode_text(b"caf\\xc3\\xa9 \\u0041", label).text == "caf\\xc3\\xa9 \\u0041"


def test_decode_text_never_leaves_surrogates() -> None:
    rng = random.Random(5)
    for label in (None, "utf-8", "iso-2022-jp", "shift_jis", "x-bogus", "utf-16"):
        for _ in range(50):
            decode_text(rng.randbytes(rng.randrange(1, 200)), label).text.encode(
                "utf-8"
            )


# Content identity ---------------------------------------------------------

BASE = (
    b"From: a@example.com\n"
    b"To: b@example.com\n"
    b"Subject: identity\n"
    b"Message-ID: <same@example.com>\n"
    b"DKIM-Signature: v=1; d=example.com; b=abc\n"
    b"\n"
    b"Body line\n"
    b"From here on\n"
)


def test_digest_ignores_delivery_differences() -> None:
    delivered = (
        b"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\r\n"
        b"Return-Path: <a@example.com>\r\n"
        b"Received: from mx by host; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Delivered-To: b@example.com\r\n"
        b"X-Spam-Status: No\r\n"
        b"ARC-Seal: i=1; cv=none\r\n"
        b"Status: RO\r\n"
        b"X-Mozilla-Status: 0001\r\n"
        + BASE.replace(b"\n", b"\r\n")
        .replace(b"SUBJECT", b"Subject")
        .replace(b"Subject:", b"subject:")
        .replace(b"From here on", b">From here on")
        + b"\r\n\r\n\r\n"
    )

    assert content_digest(delivered) == content_digest(BASE)


def test_digest_ignores_refolded_headers() -> None:
    refolded = BASE.replace(b"b=abc\n", b"\n b=abc\n")

    assert content_digest(refolded) == content_digest(BASE)


@pytest.mark.parametrize(
    "changed",
    [
        BASE.replace(b"Body line", b"Body lime"),
        BASE.replace(b"identity", b"identify"),
        BASE.replace(b"b=abc", b"b=abd"),
        BASE.replace(b"To: b@", b"To: c@"),
    ],
    ids=["body", "subject", "dkim", "recipient"],
)
def test_digest_sees_content_changes(changed: bytes) -> None:
    assert content_digest(changed) != content_digest(BASE)


@pytest.mark.parametrize(
    "raw", [b"", b"\x00" * 10, random.Random(9).randbytes(1000), b"no headers"]
)
def test_digest_of_anything(raw: bytes) -> None:
    digest = content_digest(raw)

    assert len(digest) == 64
    assert digest == content_digest(raw)


def test_digest_is_stable_for_corpus_mbox_messages() -> None:
    corpus = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    messages_dir = corpus / "mimekit" / "messages"
    if not messages_dir.is_dir():
        raise RuntimeError(f"test corpus not found at {corpus}")
    for path in sorted(messages_dir.iterdir()):
        raw = path.read_bytes()
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert content_digest(crlf) == content_digest(raw), path.name


# Search text --------------------------------------------------------------


def test_search_text_prefers_the_text_body() -> None:
    raw = (
        b"Subject: s\nContent-Type: multipart/alternative; boundary=zz\n\n"
        b"--zz\nContent-Type: text/plain\n\nplain words\n"
        b"--zz\nContent-Type: text/html\n\n<p>html words</p>\n--zz--\n"
    )

    assert body_text_for_search(parse_message(raw)) == "plain words"


def test_search_text_from_html_only() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style>"
        "<script>alert('x')</script></head><body>"
        "<p>First&nbsp;paragraph &amp; more</p><div>Second<br>line</div>"
        "<table><tr><td>cell one</td><td>cell two</td></tr></table>"
        "<img alt='logo'><p>unclosed <b>bold"
    )
    parsed = parse_message(text_message(html.encode(), "text/html; charset=utf-8"))
    text = body_text_for_search(parsed)

    assert parsed.text_body == ""
    assert "First paragraph & more" in text
    assert "Second\nline" in text
    assert "cell one" in text and "cell two" in text
    assert "logo" in text
    assert "unclosed bold" in text
    assert "alert" not in text and "color" not in text and "<" not in text


@pytest.mark.parametrize(
    ("subject", "charset", "body_charset"),
    [
        ("Ваш заказ №1234 готов к отправке", "cp1251", None),
        ("Выгодное предложение для вас", "cp1251", "iso-8859-1"),
        ("Скидки на всё", "cp1251", "us-ascii"),
        ("Привет, купите дешево", "koi8_r", "windows-1252"),
        ("Ελληνικά νέα", "cp1253", "iso-8859-1"),
        ("Grüße aus Köln", "cp1252", "iso-8859-1"),
    ],
    ids=["cp1251-alone", "cp1251-latin1-body", "cp1251-ascii-body", "koi8", "el", "de"],
)
def test_undeclared_8bit_subject_is_detected_like_a_body(
    subject: str, charset: str, body_charset: str | None
) -> None:
    """GIVEN a subject in raw 8-bit bytes of a legacy charset, whatever the body
    declares WHEN parsed THEN the subject reads as written, not as Latin-1."""
    content_type = (
        f"Content-Type: text/plain; charset={body_charset}\n".encode()
        if body_charset
        else b""
    )
    raw = (
        b"From: a@example.com\nSubject: "
        + subject.encode(charset)
        + b"\n"
        + content_type
        + b"\nbody\n"
    )
    parsed = parse_message(raw)

    assert parsed.subject == subject
