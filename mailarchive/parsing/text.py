"""Plain text from message bodies: format=flowed and HTML."""

from __future__ import annotations

from html.parser import HTMLParser

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


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF; NUL characters, which databases refuse, go."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0
        self._preformatted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden += 1
        elif tag == "pre":
            self._preformatted += 1
            self.chunks.append("\n")
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append("\t")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self._hidden:
                self.chunks.append(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE_TAGS:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "pre":
            self._preformatted = max(0, self._preformatted - 1)
            self.chunks.append("\n")
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._preformatted:
            self.chunks.append(data)
        else:
            # Source line breaks in HTML are just spaces; edges still separate words.
            collapsed = " ".join(data.split())
            if data[:1].isspace():
                collapsed = " " + collapsed
            if data[-1:].isspace() and collapsed != " ":
                collapsed += " "
            self.chunks.append(collapsed or " ")


def html_to_text(html: str) -> str:
    """Visible text of an HTML body: tags dropped, blocks on their own lines.

    Uses the standard library's tolerant HTML tokenizer, so broken markup still
    yields its text. Script, style and head content is left out. Pure function.
    """
    if not html:
        return ""
    extractor = _TextExtractor()
    try:
        extractor.feed(html[:MAX_HTML_FOR_TEXT])
        extractor.close()
    except (AssertionError, ValueError, IndexError):
        # The tokenizer gave up part-way; what it read so far is still text.
        pass
    lines = [
        " ".join(line.split())
        for line in normalise_newlines("".join(extractor.chunks)).split("\n")
    ]
    output: list[str] = []
    for line in lines:
        if line or (output and output[-1]):
            output.append(line)
    return "\n".join(output).strip()
