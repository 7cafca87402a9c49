"""Plain text from message bodies: format=flowed and HTML."""

from __future__ import annotations

import html
from collections.abc import Iterator

from .markup import Kind, attributes, tokens

# Converting more HTML than this to search text buys nothing but time.
MAX_HTML_FOR_TEXT = 4 * 1024 * 1024

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
_CELL_TAGS = frozenset({"td", "th"})
_INVISIBLE_TAGS = frozenset({"script", "style", "head", "title", "template"})
# Content that is not markup: the elements a browser reads as raw text.
_RAW_TEXT = frozenset({"script", "style"})


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF; NUL characters, which databases refuse, go."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _collapsed(data: str) -> str:
    # Source line breaks in HTML are just spaces; edges still separate words.
    collapsed = " ".join(data.split())
    if data[:1].isspace():
        collapsed = " " + collapsed
    if data[-1:].isspace() and collapsed != " ":
        collapsed += " "
    return collapsed or " "


def _text_chunks(markup: str) -> Iterator[str]:
    hidden = 0
    preformatted = 0
    for token in tokens(markup, raw_text=_RAW_TEXT):
        kind = token.kind
        if kind is Kind.TEXT:
            if hidden:
                continue
            data = html.unescape(token.source)
            yield data if preformatted else _collapsed(data)
        elif kind is Kind.START:
            # A tag cut off by the end of the input is no tag at all.
            if not token.complete:
                continue
            tag = token.name
            if tag in _INVISIBLE_TAGS:
                if not token.self_closing or tag in _RAW_TEXT:
                    hidden += 1
            elif tag == "pre":
                preformatted += 1
                yield "\n"
            elif tag in _BLOCK_TAGS:
                yield "\n"
            elif tag in _CELL_TAGS:
                yield "\t"
            elif tag == "img" and not hidden:
                alt = dict(attributes(token.attributes_source)).get("alt")
                if alt:
                    yield f" {alt} "
        elif kind is Kind.END:
            tag = token.name
            if tag in _INVISIBLE_TAGS:
                hidden = max(0, hidden - 1)
            elif tag == "pre":
                preformatted = max(0, preformatted - 1)
                yield "\n"
            elif tag in _BLOCK_TAGS:
                yield "\n"


def html_to_text(html_text: str) -> str:
    """Visible text of an HTML body: tags dropped, blocks on their own lines.

    Broken markup still yields its text. Script, style and head content is
    left out. Only the first ``MAX_HTML_FOR_TEXT`` characters are read. Pure
    function, linear in the length of what it reads (see :mod:`.markup`).
    """
    if not html_text:
        return ""
    joined = "".join(_text_chunks(html_text[:MAX_HTML_FOR_TEXT]))
    lines = [" ".join(line.split()) for line in normalise_newlines(joined).split("\n")]
    output: list[str] = []
    for line in lines:
        if line or (output and output[-1]):
            output.append(line)
    return "\n".join(output).strip()
