"""Property-based tests: hostile and mutated mail never breaks the archive.

Messages are generated (MIME trees of hostile pieces) or mutated from the
shared corpus; HTML, plain text, search terms and mbox files likewise. Every
entry point must return without raising, within Hypothesis's per-example
deadline, and keep its promises (safe HTML, escaped text, byte-exact mbox).

A short run by default; ``HYPOTHESIS_PROFILE=long`` (what ``make test-slow``
sets) runs many more examples, as part of ``-m slow``. No example database is
written.
"""

from __future__ import annotations

import html
import io
import os
import re
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailarchive.mbox import MboxFormatError, iter_mbox, write_mboxrd
from mailarchive.parsing import ParsedMessage, body_text_for_search, parse_message
from mailarchive.parsing.balance import MAX_HTML_DEPTH, VOID_ELEMENTS, balanced_html
from mailarchive.parsing.markup import Kind, tokens
from mailarchive.parsing.text import html_to_text
from mailarchive.sanitize import sanitize_html
from mailarchive.search import excerpt_around, highlight, query_parse
from mailarchive.textrender import excerpt, render_text, visible_text
from mailarchive.threading import normalize_subject
from tests.mailarchive.test_sanitize import XSS_PAYLOADS, assert_safe

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "mailarchive-short",
    max_examples=60,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=_SUPPRESSED,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "mailarchive-short")
FUZZ = settings.get_profile(PROFILE)
pytestmark = [pytest.mark.slow] if PROFILE == "long" else []


def _corpus_messages() -> list[bytes]:
    value = os.environ.get("MAILARCHIVE_TEST_CORPUS", "")
    root = Path(value) if value else Path(__file__).parents[3] / "shared" / "corpus"
    folder = root / "mimekit" / "messages"
    if not folder.is_dir():
        raise RuntimeError(
            f"test corpus not found at {root}; set MAILARCHIVE_TEST_CORPUS"
        )
    return [path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()]


CORPUS = _corpus_messages()

# Pieces that reach the bounded paths: markup, quoting, parameters,
# boundaries, encoded words, addresses, reply markers, mbox separators.
HOSTILE = [
    b"<b>",
    b"<div>",
    b"</",
    b"<!--",
    b"<a ",
    b'"',
    b"'",
    b"\\",
    b"(",
    b")",
    b"<",
    b">",
    b"[",
    b"]",
    b"=?utf-8?q?a=C3?=",
    b"=?x-nonsense?b?6Q==?=",
    b"=?",
    b"?=",
    b"; a=1",
    b"; name*0*=utf-8''a%C3",
    b"; boundary=b",
    b"\n--b\n",
    b"\n--b--\n",
    b"\n\n",
    b"\n ",
    b"\r\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"\xe9",
    b"\x1b$B",
    b"Re: ",
    b"[tag] ",
    b"http://a/",
    b"www.",
    b"mailto:",
    b"> ",
    b"-- \n",
    b"From ",
    b"\nFrom x\n",
    b"\nContent-Type: multipart/mixed; boundary=b\n",
    b"\nContent-Type: message/rfc822\n",
    b"\nContent-Transfer-Encoding: base64\n",
    b"\nContent-Length: 3\n",
    b"a@b",
    b":",
    b",",
    b";",
]
HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Sender",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Location",
    "X-Anything",
]
CONTENT_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "text/plain; charset=iso-2022-jp",
    "text/plain; charset=x-unknown",
    "text/plain; format=flowed",
    "text/html",
    "text/html; charset=windows-1252",
    "application/octet-stream; name=a.bin",
    "application/ms-tnef; name=winmail.dat",
    "image/png",
    "message/rfc822",
    "text/rfc822-headers",
    "bogus",
]
ENCODINGS = ["", "7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "junk"]
HTML_PIECES = [
    "<b>",
    "</b>",
    "<i>",
    "</i>",
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<span>",
    "</span>",
    "<table>",
    "</table>",
    "<tr>",
    "<td>",
    "</td>",
    "<ul>",
    "<li>",
    "<dl>",
    "<dd>",
    "<dt>",
    "<h1>",
    "<h2>",
    "<a href='http://x.example/'>",
    "</a>",
    "<font color=red>",
    "<b id=1>",
    "<b id=2>",
    "<svg>",
    "</svg>",
    "<math>",
    "<mtext>",
    "<foreignObject>",
    "<style>",
    "</style>",
    "<script>",
    "</script>",
    "<title>",
    "</title>",
    "<textarea>",
    "<xmp>",
    "</xmp>",
    "<plaintext>",
    "<noscript>",
    "<template>",
    "<select>",
    "<option>",
    "<button>",
    "<form>",
    "<iframe>",
    "<object>",
    "<img src=cid:a@b alt=x>",
    "<img src=x onerror=alert(1)>",
    "<br/>",
    "</br>",
    "<!--",
    "-->",
    "<!-->",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE html>",
    "<?x",
    "</>",
    "<",
    ">",
    '"',
    "'",
    "=",
    "&",
    "&amp;",
    "&lt",
    " ",
    "\n",
    "text",
    "日本語",
    *XSS_PAYLOADS,
]

pieces = st.sampled_from(HOSTILE) | st.binary(max_size=12)
fragment = st.lists(pieces, max_size=24).map(b"".join)
text_piece = st.sampled_from([p.decode("latin-1") for p in HOSTILE]) | st.text(
    max_size=12
)
text_fragment = st.lists(text_piece, max_size=24).map("".join)
html_fragment = st.lists(
    st.sampled_from(HTML_PIECES) | st.text(max_size=8), max_size=60
).map("".join)


def _header_line(name: str, value: bytes) -> bytes:
    return name.encode() + b": " + value + b"\n"


header = st.builds(_header_line, st.sampled_from(HEADER_NAMES), fragment)


def _leaf(content_type: str, encoding: str, extra: list[bytes], body: bytes) -> bytes:
    head = f"Content-Type: {content_type}\n".encode()
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\n".encode()
    return head + b"".join(extra) + b"\n" + body


def _multipart(subtype: str, boundary: str, children: list[bytes]) -> bytes:
    separator = f"\n--{boundary}\n".encode()
    head = f"Content-Type: multipart/{subtype}; boundary={boundary}\n\n".encode()
    return (
        head
        + b"preamble"
        + separator
        + separator.join(children)
        + (f"\n--{boundary}--\n".encode())
    )


leaf = st.builds(
    _leaf,
    st.sampled_from(CONTENT_TYPES),
    st.sampled_from(ENCODINGS),
    st.lists(header, max_size=3),
    fragment | html_fragment.map(lambda markup: markup.encode("utf-8")),
)
mime = st.recursive(
    leaf,
    lambda children: st.builds(
        _multipart,
        st.sampled_from(["mixed", "alternative", "related", "digest", "report"]),
        st.sampled_from(["b", "b1", "x-y", "=_z"]),
        st.lists(children, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def generated_message(draw: st.DrawFn) -> bytes:
    headers = b"".join(draw(st.lists(header, max_size=12)))
    return headers + draw(mime)


@st.composite
def mutated(draw: st.DrawFn, originals: st.SearchStrategy[bytes]) -> bytes:
    """An original with a few flips, insertions of repeated hostile pieces,
    deletions, repeats of its own slices, or a truncation."""
    raw = bytearray(draw(originals))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("flip", "insert", "delete", "repeat", "cut")))
        at = draw(st.integers(0, len(raw)))
        if kind == "flip" and raw:
            raw[min(at, len(raw) - 1)] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = draw(pieces) * draw(st.integers(1, 300))
        elif kind == "delete":
            del raw[at : at + draw(st.integers(1, 200))]
        elif kind == "repeat":
            chunk = raw[at : at + draw(st.integers(1, 200))]
            raw[at:at] = chunk * draw(st.integers(1, 20))
        elif kind == "cut":
            del raw[at:]
    return bytes(raw)


messages = (
    mutated(st.sampled_from(CORPUS))
    | generated_message()
    | mutated(generated_message())
)


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


_RENDER_TAGS = re.compile(r"</?(?:div|pre|details|summary|blockquote|a)\b")


def assert_only_render_markup(rendered: str) -> None:
    """Every "<" in rendered text starts markup the renderer itself writes."""
    assert rendered.count("<") == len(_RENDER_TAGS.findall(rendered))


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 20


@FUZZ
@given(messages)
def test_parse_message_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)

    assert isinstance(parsed, ParsedMessage)
    assert_clean_strings(parsed)
    assert isinstance(body_text_for_search(parsed), str)
    if parsed.parseable:
        normalize_subject(parsed.subject)


@FUZZ
@given(messages)
def test_parsed_bodies_render_and_sanitize(raw: bytes) -> None:
    parsed = parse_message(raw)

    rendered = str(render_text(parsed.text_body))
    assert_only_render_markup(rendered)
    assert len(excerpt(parsed.text_body)) <= 200
    result = sanitize_html(
        parsed.html_body, allow_remote=False, cid_url=lambda cid: f"/cid/{cid}/"
    )
    assert result.html.startswith("<!DOCTYPE html>")


@FUZZ
@given(html_fragment, st.booleans())
def test_sanitizer_output_is_always_safe(markup: str, allow_remote: bool) -> None:
    result = sanitize_html(
        markup,
        allow_remote=allow_remote,
        cid_url=lambda cid: f"/spaces/KEY/mail/12/cid/{cid}/",
    )
    assert_safe(result, allow_remote=allow_remote)


@FUZZ
@given(html_fragment)
def test_balanced_html_is_well_formed_and_bounded(markup: str) -> None:
    """Every end tag closes the innermost open element, at most MAX_HTML_DEPTH deep,
    and balancing again changes nothing."""
    balanced = balanced_html(markup)
    open_elements: list[str] = []
    deepest = 0
    for token in tokens(balanced):
        assert token.kind is not Kind.RAW and token.kind is not Kind.COMMENT
        if token.kind is Kind.START and token.name not in VOID_ELEMENTS:
            open_elements.append(token.name)
            deepest = max(deepest, len(open_elements))
        elif token.kind is Kind.END:
            assert open_elements and open_elements.pop() == token.name
    assert open_elements == []
    assert deepest <= MAX_HTML_DEPTH
    assert balanced_html(balanced) == balanced


@FUZZ
@given(html_fragment)
def test_html_to_text_never_raises(markup: str) -> None:
    text = html_to_text(markup)

    assert isinstance(text, str)
    assert "\x00" not in text


@FUZZ
@given(text_fragment)
def test_render_text_escapes_everything(text: str) -> None:
    rendered = str(render_text(text))

    assert_only_render_markup(rendered)
    assert len(excerpt(text, 80)) <= 80


@FUZZ
@given(text_fragment, st.lists(text_piece, max_size=40))
def test_highlight_marks_without_changing_the_text(text: str, terms: list[str]) -> None:
    marked = str(highlight(text, terms))

    # The text itself, but for the characters a page may not carry, which are
    # shown as their control pictures.
    assert html.unescape(re.sub("</?mark>", "", marked)) == visible_text(text)
    around = str(excerpt_around(text, terms, length=60))
    assert around.count("<") == len(re.findall("</?mark>", around))
    query_parse(text)


mbox_files = mutated(
    st.lists(st.sampled_from(CORPUS) | generated_message(), min_size=1, max_size=4).map(
        lambda raws: b"".join(b"From a@b Mon Jan  1 00:00:00 2024\n" + r for r in raws)
    )
)


@FUZZ
@given(mbox_files, st.sampled_from([1, 7, 64, 1 << 20]))
def test_mbox_reader_never_raises(data: bytes, chunk_size: int) -> None:
    try:
        entries = list(
            iter_mbox(
                io.BytesIO(data), max_message_bytes=1 << 16, chunk_size=chunk_size
            )
        )
    except MboxFormatError:
        return
    for entry in entries:
        assert entry.oversized or entry.size == len(entry.raw)


# A Content-Length header that happens to point exactly at a later message's
# From_ line is honoured by design (mboxcl), so such messages are left out.
exportable = (
    (st.sampled_from(CORPUS) | generated_message() | fragment)
    .map(lambda raw: raw if raw.endswith(b"\n") else raw + b"\n")
    .filter(lambda raw: b"content-length" not in raw.lower())
)


@FUZZ
@given(
    st.lists(exportable, min_size=1, max_size=5),
    st.sampled_from([1, 5, 64, 1 << 20]),
)
def test_mbox_round_trip_is_byte_exact(raws: list[bytes], chunk_size: int) -> None:
    out = io.BytesIO()
    for raw in raws:
        write_mboxrd(out, raw)
    out.seek(0)

    assert [e.raw for e in iter_mbox(out, chunk_size=chunk_size)] == raws
