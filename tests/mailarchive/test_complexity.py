"""Work on crafted input grows linearly with its size, class by class.

Each test builds one kind of hostile input at a size n (tens of kilobytes)
and at 8n and times both in this process: the larger may take at most 24
times as long (linear work takes about 8 times, quadratic 64). Each timing
repeats the call until the smaller input has taken at least 15 ms, so that
timer noise does not decide; the time is the CPU time of this process, runs
at both sizes are interleaved and the fastest of each kept, so that a busy
machine does not decide either. No test compares a time with a fixed number
of seconds.
"""

from __future__ import annotations

import gc
import io
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import pytest

from mailarchive.mbox import CHUNK_SIZE, MAX_FROM_LINE, iter_mbox
from mailarchive.parsing import (
    body_text_for_search,
    charsets,
    content_digest,
    parse_message,
)
from mailarchive.parsing.balance import MAX_HTML_DEPTH, balanced_html
from mailarchive.parsing.headers import MAX_DETECTIONS
from mailarchive.parsing.structure import MAX_PARAMETERS
from mailarchive.parsing.text import html_to_text
from mailarchive.parsing.walk import MAX_PARTS
from mailarchive.sanitize import sanitize_html
from mailarchive.search import (
    MAX_HIGHLIGHT_TERMS,
    MAX_QUERY_TERMS,
    excerpt_around,
    highlight,
    query_parse,
)
from mailarchive.textrender import excerpt, render_text
from mailarchive.threading import normalize_subject

T = TypeVar("T")

FACTOR = 8
# Linear work grows FACTOR times; quadratic FACTOR**2 times.
LIMIT = 24
FLOOR = 0.015
ROUNDS = 3


def _time(run: Callable[[T], object], data: T, number: int) -> float:
    # CPU time of this process: on a shared machine, waiting for a core would
    # otherwise count as work.
    start = time.process_time()
    for _ in range(number):
        run(data)
    return time.process_time() - start


def assert_linear(
    build: Callable[[int], T], run: Callable[[T], object], *, n: int
) -> None:
    """Time ``run`` on ``build(n)`` and ``build(FACTOR * n)``; fail above LIMIT.

    ``n`` is halved (down to an eighth) while one run takes more than twice
    FLOOR, and calls are repeated until the smaller input takes FLOOR.
    """
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        smallest = max(1, n // 8)
        small = build(n)
        while n > smallest and _time(run, small, 1) > 2 * FLOOR:
            n //= 2
            small = build(n)
        large = build(FACTOR * n)
        number = 1
        while (elapsed := _time(run, small, number)) < FLOOR and number < 1 << 16:
            number *= 2
        best_small, best_large = elapsed, float("inf")
        for _ in range(ROUNDS):
            best_large = min(best_large, _time(run, large, number))
            best_small = min(best_small, _time(run, small, number))
    finally:
        if enabled:
            gc.enable()
    ratio = best_large / best_small
    assert ratio < LIMIT, (
        f"n={n}: {best_small / number * 1000:.2f} ms, {FACTOR}n: "
        f"{best_large / number * 1000:.2f} ms (x{ratio:.1f}, linear would be "
        f"about x{FACTOR})"
    )


def message(headers: bytes, body: bytes = b"body\n") -> bytes:
    return b"From: a@example.com\nSubject: s\n" + headers + b"\n\n" + body


def html_message(html: bytes) -> bytes:
    return message(b"Content-Type: text/html; charset=utf-8", html)


def search_text(raw: bytes) -> str:
    return body_text_for_search(parse_message(raw))


def sanitize(html: str) -> str:
    return sanitize_html(html, allow_remote=False, cid_url=lambda _cid: None).html


# HTML turned into text, for search and attached messages ---------------------

HTML_SHAPES: dict[str, Callable[[int], str]] = {
    "unclosed-b": lambda n: "<b>" * n,
    "nested-div": lambda n: "<div>" * n,
    "table-row-cell": lambda n: "<table><tr><td>" * n,
    "unclosed-start-tag": lambda n: "<a " * n,
    "end-tag-openers": lambda n: "</" * n,
    "declaration-openers": lambda n: "<!" * n,
    "instruction-openers": lambda n: "<?" * n,
    "unclosed-comment": lambda n: "<!--" + "x " * n,
    "unclosed-attribute": lambda n: '<a href="' + "x" * n,
    "distinct-formatting": lambda n: "".join(f"<b id={i}>x" for i in range(n)),
    "list-items": lambda n: "<ul><li>" * n,
    "div-in-table": lambda n: "<div><table></div>" * n,
    "script-lookalikes": lambda n: "<script>" + "</scrip" * n,
}


@pytest.mark.parametrize("shape", HTML_SHAPES.values(), ids=HTML_SHAPES.keys())
def test_html_to_text_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(shape, html_to_text, n=2000)


@pytest.mark.parametrize(
    "shape",
    [HTML_SHAPES["nested-div"], HTML_SHAPES["unclosed-start-tag"]],
    ids=["nested-div", "unclosed-start-tag"],
)
def test_search_text_of_an_html_message_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(lambda n: html_message(shape(n).encode()), search_text, n=2000)


# HTML sanitized for the message page ------------------------------------------


# The tokenizer shapes are covered above; these are about nesting, where
# html5ever inside nh3 is slower than linear.
NESTING_SHAPES = [
    "unclosed-b",
    "nested-div",
    "table-row-cell",
    "distinct-formatting",
    "list-items",
    "div-in-table",
    "unclosed-start-tag",
]


@pytest.mark.parametrize("name", NESTING_SHAPES)
def test_sanitizer_is_linear(name: str) -> None:
    assert_linear(HTML_SHAPES[name], sanitize, n=2000)


STYLE_SHAPES: dict[str, Callable[[int], str]] = {
    "url-then-spaces": lambda n: '<p style="background: url(' + " " * n + 'x">x</p>',
    "colour-then-spaces": lambda n: '<p style="color: rgb(' + " 1" * n + '">x</p>',
    "many-declarations": lambda n: '<p style="' + "color: red; " * n + '">x</p>',
    "srcset-commas": lambda n: '<img srcset="' + ", " * n + '">',
}


@pytest.mark.parametrize("shape", STYLE_SHAPES.values(), ids=STYLE_SHAPES.keys())
def test_sanitizer_attribute_filter_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(shape, sanitize, n=2000)


def test_sanitizer_reopening_formatting_is_linear() -> None:
    """GIVEN 300 unclosed distinct formatting elements cut off by a block, then
    many blocks WHEN sanitized THEN each block reopens a bounded number."""
    head = "<div>" + "".join(f"<b id={i}>" for i in range(300)) + "</div>"
    assert_linear(lambda n: head + "<div>x</div>" * n, sanitize, n=1000)


# Header values, address lists and encoded words -------------------------------

HEADER_SHAPES: dict[str, Callable[[int], bytes]] = {
    "address-quoted-string": lambda n: b'To: "' + b"a" * n + b'" <x@example.com>',
    "address-quoted-backslashes": lambda n: b'To: "' + b"\\a" * n + b'" <x@y.z>',
    "address-comments": lambda n: b"To: " + b"(" * n + b"x@example.com",
    "address-comment-pairs": lambda n: b"To: x@example.com " + b"()" * n,
    "address-brackets": lambda n: b"To: " + b"<" * n + b"x@example.com",
    "address-colons": lambda n: b"To: " + b"a:" * n,
    "address-groups": lambda n: b"To: " + b"g: a@b.c;, " * n,
    "address-bare-at-phrase": lambda n: b"To: x <a@b.c>, " + b"a@" * n,
    "address-many": lambda n: b"To: " + b"a@example.com, " * n,
    "long-line": lambda n: b"X-Long: " + b"a" * (8 * n),
    "folded-lines": lambda n: b"X-Folded: a" + b"\n b" * n,
    "folded-subject": lambda n: b"Subject: a" + b"\n b" * n,
    "encoded-words": lambda n: b"Subject: " + b"=?utf-8?q?a?= " * n,
    "encoded-words-mixed-charsets": lambda n: (
        b"Subject: " + b"=?x-nonsense?q?=E9?= =?utf-8?q?a?= " * n
    ),
    "references": lambda n: b"References: " + b"<a@b> " * n,
    "many-headers": lambda n: b"".join(b"X-%d: v\n" % i for i in range(n)),
    "date-comments": lambda n: b"Date: " + b"(" * n,
    "message-id-brackets": lambda n: b"Message-ID: " + b"<" * n,
    "undeclared-8bit": lambda n: b"".join(
        b"X-%d: \xe9t\xe9 \xff\n" % i for i in range(n)
    ),
}


@pytest.mark.parametrize("shape", HEADER_SHAPES.values(), ids=HEADER_SHAPES.keys())
def test_header_parsing_is_linear(shape: Callable[[int], bytes]) -> None:
    assert_linear(lambda n: message(shape(n)), parse_message, n=2000)


# MIME parameters --------------------------------------------------------------

PARAMETER_SHAPES: dict[str, Callable[[int], bytes]] = {
    "repeated": lambda n: b"Content-Type: text/plain" + b"; a=1" * n,
    "rfc2231-continuations": lambda n: (
        b"Content-Type: text/plain" + b"".join(b"; name*%d*=a" % i for i in range(n))
    ),
    "disposition-continuations": lambda n: (
        b"Content-Disposition: attachment"
        + b"".join(b"; filename*%d*=a" % i for i in range(n))
    ),
    "quoted-semicolons": lambda n: b'Content-Type: text/plain; a="' + b";" * n,
    "quoted-string": lambda n: b'Content-Type: text/plain; a="' + b"x" * n + b'"',
    "comment": lambda n: b"Content-Type: text/plain (" + b"x" * n + b")",
    "transfer-encoding": lambda n: (
        b"Content-Transfer-Encoding: base64 (" + b"a " * n + b")"
    ),
}


@pytest.mark.parametrize(
    "shape", PARAMETER_SHAPES.values(), ids=PARAMETER_SHAPES.keys()
)
def test_parameter_parsing_is_linear(shape: Callable[[int], bytes]) -> None:
    assert_linear(lambda n: message(shape(n)), parse_message, n=2000)


def test_parameters_of_every_part_are_bounded() -> None:
    """GIVEN n parts under a multipart whose Content-Type holds a quoted
    parameter of 64n characters WHEN parsed THEN the work is linear: the
    value is cut, and it is not parsed again for every part."""

    def build(n: int) -> bytes:
        quoted = b'"' + b"x" * (64 * n) + b'"'
        return message(
            b"Content-Type: multipart/mixed; boundary=b; x=" + quoted,
            b"--b\nContent-Type: text/plain\n\nx\n" * n + b"--b--\n",
        )

    assert_linear(build, parse_message, n=100)


# Parts --------------------------------------------------------------------------


def many_parts(n: int) -> bytes:
    return message(
        b"Content-Type: multipart/mixed; boundary=b", b"--b\n\n" * n + b"--b--\n"
    )


def test_many_empty_parts_cost_linear_time() -> None:
    """GIVEN a multipart of 12,500 and of 100,000 empty parts WHEN parsed THEN
    the time grows linearly, and the larger is marked as having too many."""
    assert_linear(many_parts, parse_message, n=12_500)

    parsed = parse_message(many_parts(100_000))
    assert parsed.parseable
    assert parsed.subject == "s"
    assert "too-many-parts" in parsed.problems


def test_parse_stops_at_the_part_limit() -> None:
    raw = many_parts(3 * MAX_PARTS)
    parsed = parse_message(raw)

    assert "too-many-parts" in parsed.problems
    assert raw == many_parts(3 * MAX_PARTS)


def test_html_parts_looking_for_a_meta_charset_are_linear() -> None:
    part = b"--b\nContent-Type: text/html\n\n" + b"<meta" * 900 + b"\n"
    assert_linear(
        lambda n: message(b"Content-Type: multipart/mixed; boundary=b", part * n),
        parse_message,
        n=20,
    )


def test_parts_with_undeclared_8bit_text_are_linear() -> None:
    """Charset detection has a budget per message, not one run per part."""
    part = b"--b\nContent-Type: text/plain\n\n\xe9t\xe9 \xff\xfe caf\xe9\n"
    assert_linear(
        lambda n: message(b"Content-Type: multipart/mixed; boundary=b", part * n),
        parse_message,
        n=100,
    )


def test_nested_multiparts_are_linear() -> None:
    def build(n: int) -> bytes:
        opening = b"".join(
            b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
            for i in range(n)
        )
        return message(b"", opening + b"Content-Type: text/plain\n\nx\n")

    assert_linear(build, parse_message, n=50)


def test_attached_message_chains_are_linear() -> None:
    def build(n: int) -> bytes:
        raw = b"Subject: innermost\n\n" + b"body line\n" * 2000
        for level in range(min(n, 200)):
            raw = b"Subject: %d\nContent-Type: message/rfc822\n\n" % level + raw
        return raw + b"tail\n" * n

    assert_linear(build, parse_message, n=50)


def test_content_digest_of_folded_headers_is_linear() -> None:
    assert_linear(
        lambda n: b"X-Folded: a" + b"\n b" * n + b"\n\nbody", content_digest, n=2000
    )


# Plain-text bodies on the message page ---------------------------------------

TEXT_SHAPES: dict[str, Callable[[int], str]] = {
    "url-opening-brackets": lambda n: "http://a/" + "(" * n,
    "url-closing-brackets": lambda n: "http://a/" + ")" * n,
    "url-closing-square-brackets": lambda n: "http://a/" + "]" * n,
    "url-angle-brackets": lambda n: "http://a/" + "<" * n,
    "url-dots": lambda n: "http://a/" + "." * n,
    "url-mixed-punctuation": lambda n: "http://a/" + ").,;!?" * n,
    "many-urls": lambda n: "see http://a.example/b) and www.c.example. " * n,
    "deep-quote-marker": lambda n: ">" * n + " x",
    "quote-levels": lambda n: "\n".join(">" * (i % 300) + " x" for i in range(n)),
    "alternating-quotes": lambda n: "> a\n\nb\n" * n,
    "blank-lines-in-quote": lambda n: "> a\n" + "\n" * n + "> b",
    "signature-lookalikes": lambda n: "-- \n" * n,
}


@pytest.mark.parametrize("shape", TEXT_SHAPES.values(), ids=TEXT_SHAPES.keys())
def test_render_text_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(shape, render_text, n=2000)


EXCERPT_SHAPES: dict[str, Callable[[int], str]] = {
    "colon-lines-and-blanks": lambda n: "a:\n\n" * n,
    "colon-lines-then-quote": lambda n: "x:\n" * n + "> q",
    "original-message-lookalikes": lambda n: "-" * n,
    "quote-levels": TEXT_SHAPES["quote-levels"],
}


@pytest.mark.parametrize("shape", EXCERPT_SHAPES.values(), ids=EXCERPT_SHAPES.keys())
def test_excerpt_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(shape, excerpt, n=2000)


# Search results ---------------------------------------------------------------


def test_highlight_with_many_terms_is_linear() -> None:
    body = "word another term " * 2000
    assert_linear(
        lambda n: [f"term{i}" for i in range(n)] + ["term"],
        lambda terms: highlight(body, terms),
        n=20,
    )


def test_highlight_of_a_large_text_is_linear() -> None:
    terms = [f"t{i}" for i in range(100)]
    assert_linear(lambda n: "word t1 " * n, lambda text: highlight(text, terms), n=2000)


def test_highlight_of_long_near_miss_terms_is_linear() -> None:
    """Terms that match a long prefix at every position of the text."""
    terms = ["a " * 500 + "b", "a " * 400 + "c"]
    assert_linear(lambda n: "a " * n, lambda text: highlight(text, terms), n=2000)


def test_excerpt_around_a_large_text_is_linear() -> None:
    terms = [f"t{i}" for i in range(100)]
    assert_linear(
        lambda n: "word " * n + "t99",
        lambda text: excerpt_around(text, terms),
        n=2000,
    )


@pytest.mark.parametrize(
    "shape",
    [lambda n: '"' * n, lambda n: '-"a ' * n, lambda n: "word or " * n],
    ids=["quotes", "negated-phrases", "words"],
)
def test_query_parse_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(shape, query_parse, n=2000)


# Subjects -----------------------------------------------------------------------

SUBJECT_SHAPES: dict[str, Callable[[int], str]] = {
    "reply-markers": lambda n: "Re: " * n + "x",
    "list-tags": lambda n: "[tag] " * n + "x",
    "counted-markers": lambda n: "Re[2]: AW: " * n + "x",
    "marker-then-spaces": lambda n: "re" + " " * n + "x",
    "marker-spaces-count-spaces": lambda n: "re" + " " * n + "[1]" + " " * n + "x",
    "open-brackets": lambda n: "[" * n + "x",
}


@pytest.mark.parametrize("shape", SUBJECT_SHAPES.values(), ids=SUBJECT_SHAPES.keys())
def test_normalize_subject_is_linear(shape: Callable[[int], str]) -> None:
    assert_linear(shape, normalize_subject, n=2000)


# mbox files ---------------------------------------------------------------------


def read_all(data: bytes) -> int:
    return sum(1 for _ in iter_mbox(io.BytesIO(data), max_message_bytes=1 << 24))


MBOX_SHAPES: dict[str, Callable[[int], bytes]] = {
    "line-without-newline": lambda n: b"From x\nSubject: s\n\n" + b"a" * (64 * n),
    "from-line-without-newline": lambda n: b"From " + b"a" * (64 * n),
    "from-lines-in-a-body": lambda n: b"From x\n\n" + b"From y\n" * n,
    "empty-messages": lambda n: b"From x\n\n" * n,
    "header-like-from-lines": lambda n: b"From x\nA: b\n" * n,
    "blank-lines-first": lambda n: b"\n" * (64 * n) + b"From x\n\nbody\n",
    "content-length-past-the-end": lambda n: (
        b"From x\nContent-Length: 99999999\n\nb\n" * n
    ),
    "quoted-from-lines": lambda n: b"From x\n\n" + b">" * 40 + b"From y\n" * n,
}


@pytest.mark.parametrize("shape", MBOX_SHAPES.values(), ids=MBOX_SHAPES.keys())
def test_mbox_reading_is_linear(shape: Callable[[int], bytes]) -> None:
    assert_linear(shape, read_all, n=2000)


@pytest.mark.parametrize(
    "data",
    [
        b"From " + b"a" * (32 << 20),
        b"\n" * (32 << 20) + b"From x\n\nbody\n",
    ],
    ids=["from-line-without-newline", "blank-lines-first"],
)
def test_mbox_reading_memory_is_bounded(data: bytes) -> None:
    """GIVEN 32 MiB of one From_ line, or of blank lines WHEN read THEN the
    reader holds a few chunks, not the line."""
    tracemalloc.start()
    try:
        entries = list(iter_mbox(io.BytesIO(data)))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(entries) == 1
    assert peak < 8 * CHUNK_SIZE


# The limits that keep the work bounded -----------------------------------------


def test_charset_detection_runs_at_most_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN 1000 parts and headers of undeclared 8-bit text that is not UTF-8
    WHEN parsed THEN charset detection runs at most MAX_DETECTIONS times and
    every part is still read."""
    calls = []
    detect = charsets.from_bytes

    def counting(data: bytes) -> object:
        calls.append(len(data))
        return detect(data)

    monkeypatch.setattr(charsets, "from_bytes", counting)
    part = b"--b\nContent-Type: text/plain\nX-Note: \xe9t\xe9\n\n\xe9t\xe9 \xff\n"
    raw = message(b"Content-Type: multipart/mixed; boundary=b", part * 1000)

    parsed = parse_message(raw)

    assert len(calls) <= MAX_DETECTIONS
    assert parsed.text_body.count("\n") == 999
    assert "charset-guessed" in parsed.problems


def test_parameters_past_the_limit_are_cut_and_flagged() -> None:
    """GIVEN a filename in 10,000 RFC 2231 segments WHEN parsed THEN the first
    MAX_PARAMETERS of them make the name, and the cut is reported."""
    segments = b"".join(b"; filename*%d*=a" % i for i in range(10_000))
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=zz\n\n"
        b"--zz\nContent-Type: application/octet-stream\n"
        b"Content-Disposition: attachment" + segments + b"\n\ndata\n--zz--\n"
    )
    parsed = parse_message(raw)

    [attachment] = parsed.attachments
    assert attachment.filename == "a" * MAX_PARAMETERS
    assert "truncated-headers" in parsed.problems


def test_highlight_marks_at_most_the_term_limit() -> None:
    terms = [f"t{i}" for i in range(MAX_HIGHLIGHT_TERMS + 10)]
    marked = str(highlight(" ".join(terms), terms))

    assert marked.count("<mark>") == MAX_HIGHLIGHT_TERMS
    assert "<mark>t0</mark>" in marked


def test_query_reads_at_most_the_term_limit() -> None:
    parsed = query_parse(" ".join(f"word{i}" for i in range(100)))

    assert len(parsed.terms) == MAX_QUERY_TERMS
    assert parsed.terms[-1].text == f"word{MAX_QUERY_TERMS - 1}"


def test_sanitizer_input_is_balanced_and_bounded_in_depth() -> None:
    """GIVEN 10,000 nested divs WHEN balanced for the sanitizer THEN no more
    than MAX_HTML_DEPTH are open at once, every one is closed, text is kept."""
    balanced = balanced_html("<div>x" * 10_000)

    assert balanced.count("<div>") == MAX_HTML_DEPTH
    assert balanced.count("</div>") == MAX_HTML_DEPTH
    assert balanced.count("x") == 10_000
    assert balanced.endswith("</div>" * MAX_HTML_DEPTH)


def test_long_from_line_is_cut() -> None:
    data = b"From " + b"a" * (3 * MAX_FROM_LINE) + b"\nSubject: s\n\nbody\n"
    [entry] = iter_mbox(io.BytesIO(data))

    assert len(entry.from_line) == MAX_FROM_LINE
    assert entry.raw == b"Subject: s\n\nbody\n"
