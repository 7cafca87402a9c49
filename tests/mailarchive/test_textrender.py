"""Tests for plain-text rendering: escaping, links, quotes, signatures, excerpts."""

from __future__ import annotations

import email
import email.policy
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.utils.translation import override

from mailarchive.textrender import excerpt, render_text, visible_text

REL = "noopener noreferrer nofollow"


def corpus_dir() -> Path:
    """The shared real-world corpus; missing it is a failure, never a skip."""
    path = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    if not (path / "mimekit").is_dir():
        pytest.fail(f"test corpus not found at {path}; set MAILARCHIVE_TEST_CORPUS")
    return path


def label(count: int) -> str:
    return f"[{count} quoted]"


class Tree(HTMLParser):
    """Elements as (tag, attrs, depth), all text, and text per innermost element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], int]] = []
        self.stack: list[str] = []
        self.text = ""
        self.links: list[tuple[str | None, str]] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), len(self.stack)))
        self.stack.append(tag)
        if tag == "a":
            self.links.append((dict(attrs).get("href"), ""))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text += data
        self.texts.append((tuple(self.stack), data))
        if self.stack and self.stack[-1] == "a":
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)


def tree(markup: str) -> Tree:
    parsed = Tree()
    parsed.feed(markup)
    parsed.close()
    assert parsed.stack == []
    return parsed


def render(text: str) -> Tree:
    return tree(render_text(text, label=label))


ALLOWED_ELEMENTS = {"div", "pre", "details", "summary", "blockquote", "a"}


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "Tom & Jerry <tom@example.com> said \"hi\" & 'bye'",
        "&lt;already escaped&gt; &amp; &#x3C;",
        "</pre></div><script>x</script>",
        "a  b\n\tc   \n\n  d",
        "<!-- comment --> <![CDATA[x]]>",
        "\u202etext with bidi override and NUL \x00 char",
    ],
)
def test_text_is_escaped_and_kept_verbatim(text: str) -> None:
    markup = render_text(text, label=label)
    parsed = tree(markup)

    assert [tag for tag, _, _ in parsed.elements] == ["div", "pre"]
    assert parsed.text == visible_text(text)
    assert "<script" not in markup
    assert hasattr(markup, "__html__")


def test_characters_no_page_may_carry_are_shown_as_pictures() -> None:
    """GIVEN a body with C0 controls, DEL and the noncharacters U+FFFE/U+FFFF
    THEN the page shows control pictures (and U+FFFD) in their place, keeps
    tabs, line breaks and form feeds, and the excerpt does the same."""
    text = "nul\x00 syn\x16 esc\x1b del\x7f non\ufffe\uffff tab\tff\x0c end"
    shown = tree(render_text(text, label=label)).text
    assert shown == (
        "nul\u2400 syn\u2416 esc\u241b del\u2421 non\ufffd\ufffd tab\tff\x0c end"
    )
    assert "\x16" not in excerpt(text) and "\u2416" in excerpt(text)


@pytest.mark.parametrize(
    ("text", "href", "shown"),
    [
        ("see https://example.com.", "https://example.com", "https://example.com"),
        ("(https://example.com/path)", "https://example.com/path", None),
        (
            "https://en.wikipedia.org/wiki/Foo_(bar), ok",
            "https://en.wikipedia.org/wiki/Foo_(bar)",
            None,
        ),
        ("go to https://x.example/a?b=1&c=2, now", "https://x.example/a?b=1&c=2", None),
        ("<https://example.com/x>", "https://example.com/x", None),
        ('"http://example.com/q"', "http://example.com/q", None),
        ("www.example.org!", "http://www.example.org", "www.example.org"),
        ("Mail mailto:list@example.com; thanks", "mailto:list@example.com", None),
        ("HTTPS://EXAMPLE.COM/UP", "HTTPS://EXAMPLE.COM/UP", None),
        ("詳細はhttps://example.jp/資料を参照。", "https://example.jp/", None),
        ("really?https://example.com/?q=1!", "https://example.com/?q=1", None),
        ("[https://example.com/x]", "https://example.com/x", None),
    ],
)
def test_links(text: str, href: str, shown: str | None) -> None:
    parsed = render(text)

    assert parsed.links == [(href, shown or href)]
    anchors = [attrs for tag, attrs, _ in parsed.elements if tag == "a"]
    assert anchors == [{"href": href, "rel": REL, "target": "_blank"}]
    assert parsed.text == text


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        "javascript://comment%0Aalert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "jav\tascript:alert(1)",
        "xhttps://evil.example/",
        "file:///etc/passwd",
        "http:// not a link",
        "www. nothing",
        "mailto: nobody",
    ],
)
def test_unsafe_or_bogus_urls_are_never_linked(text: str) -> None:
    parsed = render(text)
    assert parsed.links == []
    assert parsed.text == text


def test_nested_quotes_fold_into_one_details() -> None:
    """GIVEN a reply quoting a message that quotes another
    WHEN rendered
    THEN the whole quote folds into one details element with nested
    blockquotes, and the line count covers all quoted lines."""
    text = (
        "My answer.\n"
        "\n"
        "On Monday, Ann wrote:\n"
        "> I think so.\n"
        ">\n"
        "> > Is this right?\n"
        ">> Really?\n"
        "> Yes.\n"
        "\n"
        "Cheers"
    )

    parsed = render(text)

    assert [(tag, depth) for tag, _, depth in parsed.elements] == [
        ("div", 0),
        ("pre", 1),
        ("details", 1),
        ("summary", 2),
        ("blockquote", 2),
        ("pre", 3),
        ("blockquote", 3),
        ("pre", 4),
        ("pre", 3),
        ("pre", 1),
    ]
    assert parsed.elements[2][1] == {"class": "quoted"}
    texts = {data for _, data in parsed.texts}
    assert "[5 quoted]" in texts
    assert "I think so.\n" in texts
    assert "Is this right?\nReally?" in texts
    assert "Yes." in texts
    # html.parser keeps the newline after <pre> that browsers drop.
    assert "\n\nCheers" in texts


def test_separate_quotes_fold_separately_and_blank_lines_inside_join() -> None:
    text = "> one\n\n> two\nmiddle\n> three"

    parsed = render(text)

    summaries = [data for stack, data in parsed.texts if stack[-1] == "summary"]
    assert summaries == ["[3 quoted]", "[1 quoted]"]


def test_default_label_is_translated_and_pluralized() -> None:
    with override("en"):
        many = tree(render_text("> a\n> b\n> c"))
        one = tree(render_text("> a"))
    assert [d for s, d in many.texts if s[-1] == "summary"] == [
        "Show quoted text (3 lines)"
    ]
    assert [d for s, d in one.texts if s[-1] == "summary"] == [
        "Show quoted text (1 line)"
    ]


def test_label_is_escaped() -> None:
    markup = render_text("> a", label=lambda n: "<b>show</b>")
    assert "&lt;b&gt;show&lt;/b&gt;" in markup


def test_signature_is_kept_but_styled() -> None:
    text = "Body https://a.example\n-- \nBob <bob@example.com>\nhttps://bob.example"

    parsed = render(text)

    signature = [attrs for tag, attrs, _ in parsed.elements if tag == "div"][1]
    assert signature == {"class": "signature"}
    assert [data for stack, data in parsed.texts if "div" in stack[1:]] == [
        "-- \nBob <bob@example.com>\n",
        "https://bob.example",
    ]
    assert [href for href, _ in parsed.links] == [
        "https://a.example",
        "https://bob.example",
    ]


@pytest.mark.parametrize(
    "text", ["Body\n--\nnot a signature", "Body\n> -- \n> quoted signature"]
)
def test_not_a_signature(text: str) -> None:
    parsed = render(text)
    assert not [
        attrs for tag, attrs, _ in parsed.elements if attrs.get("class") == "signature"
    ]


def test_whitespace_and_leading_blank_line_survive() -> None:
    markup = render_text("\n  indented\r\n\ttab\rold mac", label=label)
    assert markup == (
        '<div class="mail-text"><pre>\n\n  indented\n\ttab\nold mac</pre></div>'
    )


def test_japanese_body_from_corpus_is_untouched() -> None:
    path = corpus_dir() / "mimekit" / "messages" / "japanese.txt"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "日本語が" in text

    parsed = render(text)

    assert parsed.text == text
    assert excerpt(text) == (
        "Let's see if both subject and body works fine... 日本語が 正常に "
        "送れているか テスト."
    )


def test_excerpt_drops_quotes_attribution_and_signature() -> None:
    text = (
        "Sounds good,   let's do it.\n"
        "\n"
        "On Tue, 5 Mar 2024, Ann <ann@example.com> wrote:\n"
        "> Shall we meet?\n"
        "> > Earlier text\n"
        "\n"
        "See you <then>.\n"
        "-- \n"
        "Bob"
    )
    assert excerpt(text) == "Sounds good, let's do it. See you <then>."


def test_excerpt_stops_at_original_message_marker() -> None:
    text = "Top posted answer.\n\n-----Original Message-----\nFrom: x\nOld text"
    assert excerpt(text) == "Top posted answer."


def test_excerpt_keeps_colon_lines_that_do_not_introduce_quotes() -> None:
    assert excerpt("Agenda:\n1. budget\n2. plans") == "Agenda: 1. budget 2. plans"


@pytest.mark.parametrize("length", [10, 25, 50, 199, 200])
def test_excerpt_cuts_on_word_boundary(length: int) -> None:
    text = " ".join(f"word{n}" for n in range(200))

    result = excerpt(text, length)

    assert len(result) <= length
    assert result.endswith("…")
    words = result[:-1].split(" ")
    assert words == [f"word{n}" for n in range(len(words))]


def test_excerpt_without_spaces_cuts_mid_text() -> None:
    assert excerpt("日本語" * 100, 20) == ("日本語" * 7)[:19] + "…"
    assert excerpt("Re " + "日本語" * 100, 20) == "Re " + ("日本語" * 6)[:16] + "…"


def test_excerpt_short_text_is_unchanged_and_length_checked() -> None:
    assert excerpt("  short\n text ") == "short text"
    assert excerpt("") == ""
    with pytest.raises(ValueError, match="at least 1"):
        excerpt("text", 0)
