"""HTML rewritten well formed and at most ``MAX_HTML_DEPTH`` elements deep.

html5ever, the parser inside nh3, spends time on every tag in proportion to
how many elements are open (scope checks walk the stack) and to how many
formatting elements are pending (``<b id=1><b id=2>…``), so ``<div>`` a
hundred thousand times, or ``<ul><li>``, or unclosed ``<b>`` with distinct
attributes, take minutes. :func:`balanced_html` hands it markup in which
every end tag closes the innermost open element and no more than
``MAX_HTML_DEPTH`` elements are ever open; html5ever's work is then linear.

The rewrite keeps what a browser would build for ordinary mail: the implied
ends of ``<p>``, ``<li>``, ``<dd>``/``<dt>``, table cells, rows and sections,
``<option>``, headings, ``<a>``, ``<nobr>`` and ``<button>``; end tags that
a browser ignores (out of scope) are ignored; formatting elements cut off by
the end of an enclosing element are opened again inside the next content,
up to ``MAX_REOPENED`` of them. Past ``MAX_HTML_DEPTH`` open elements further tags
are left out and their text is kept, as browsers do at their own depth limit
(512). Comments, doctypes, ``<html>``/``<head>``/``<body>`` tags, SVG and
MathML with their content, and raw-text elements (``script``, ``style``,
``title``, ``textarea``, ``iframe``, ``noscript``) with their content are
left out: the sanitizer would drop all of them, and leaving them out means
the output has no construct that html5ever could read differently from this
module. The content of ``xmp``, ``noembed``, ``noframes`` and ``plaintext``
becomes escaped text. Text keeps its character references; only ``<`` is
escaped. Attribute values are re-quoted.
"""

from __future__ import annotations

import re

from .markup import HTML5_RAW_TEXT, Kind, Token, attributes, tokens

__all__ = ["MAX_HTML_DEPTH", "MAX_REOPENED", "VOID_ELEMENTS", "balanced_html"]

MAX_HTML_DEPTH = 256
MAX_REOPENED = 8

VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "basefont",
        "bgsound",
        "br",
        "col",
        "embed",
        "frame",
        "hr",
        "image",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
_IGNORED = frozenset({"html", "head", "body"})
_FOREIGN = frozenset({"svg", "math"})
_RAW_SHOWN = frozenset({"xmp", "noembed", "noframes", "plaintext"})
_FORMATTING = frozenset(
    {"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike"}
    | {"strong", "tt", "u"}
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_CLOSES_P = _HEADINGS | frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "hr",
        "li",
        "dd",
        "dt",
        "listing",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "plaintext",
        "pre",
        "search",
        "section",
        "summary",
        "table",
        "ul",
        "xmp",
    }
)
_NOT_KEPT = HTML5_RAW_TEXT | _FOREIGN
_INTEGRATION_POINTS = frozenset(
    {"mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc"}
)
# HTML start tags that end SVG or MathML content in a browser.
_BREAKOUT = _HEADINGS | frozenset(
    {
        "b",
        "big",
        "blockquote",
        "body",
        "br",
        "center",
        "code",
        "dd",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "head",
        "hr",
        "i",
        "img",
        "li",
        "listing",
        "menu",
        "meta",
        "nobr",
        "ol",
        "p",
        "pre",
        "ruby",
        "s",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tt",
        "u",
        "ul",
        "var",
    }
)
_TABLE_PARTS = frozenset(
    {"caption", "col", "colgroup", "tbody", "td", "tfoot", "th", "thead", "tr"}
)
# Start tags before which a browser does not reopen formatting elements.
_NO_REOPEN = _CLOSES_P | _TABLE_PARTS | frozenset({"frameset", "option", "optgroup"})
# Elements that a browser's list of formatting elements cannot be reopened past.
_MARKERS = frozenset({"applet", "caption", "marquee", "object", "td", "th"}) | {
    "template"
}
_CELLS = ("td", "th")
_SECTIONS = ("tbody", "thead", "tfoot")
_DEFINITIONS = ("dd", "dt")
_SPECIAL = (
    _CLOSES_P
    | _TABLE_PARTS
    | VOID_ELEMENTS
    | HTML5_RAW_TEXT
    | _IGNORED
    | frozenset(
        {"applet", "button", "frameset", "marquee", "object", "select", "template"}
    )
)

# Scopes of the HTML standard: an element is "in scope" when no boundary of
# that scope is open above it.
_SCOPE = frozenset(
    {"applet", "caption", "html", "table", "td", "th", "marquee", "object"}
    | {"template"}
)
_BUTTON_SCOPE = _SCOPE | {"button"}
_LIST_SCOPE = _SCOPE | {"ol", "ul"}
_TABLE_SCOPE = frozenset({"html", "table", "template"})
_SCOPES = (_SCOPE, _BUTTON_SCOPE, _LIST_SCOPE, _TABLE_SCOPE, _SPECIAL)
DEFAULT, BUTTON, LIST, TABLE, SPECIAL = range(len(_SCOPES))

_ATTRIBUTE = re.compile(
    r"""
    (?P<name>[^\t\n\f\r />][^\t\n\f\r />=]*+)
    (?:[\t\n\f\r ]*+=[\t\n\f\r ]*+
       (?:"(?P<double>[^"]*+)"?|'(?P<single>[^']*+)'?|(?P<bare>[^\t\n\f\r >]*+)))?
    """,
    re.VERBOSE,
)
_PLAIN_NAME = re.compile(r"[a-z][a-z0-9_:.-]*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_VALUE_ESCAPES = str.maketrans({'"': "&quot;", "<": "&lt;", ">": "&gt;"})
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _start_tag(name: str, attributes_source: str) -> str:
    """A start tag re-serialized: plain attribute names, values double-quoted.

    Values keep their character references; the quote and angle brackets are
    written as references, so the tag reads the same to any HTML parser.
    """
    parts = ["<", name]
    seen: set[str] = set()
    for found in _ATTRIBUTE.finditer(attributes_source):
        attribute = found.group("name").translate(_ASCII_LOWER)
        if attribute in seen or not _PLAIN_NAME.fullmatch(attribute):
            continue
        seen.add(attribute)
        value = found.group("double")
        if value is None:
            value = found.group("single")
        if value is None:
            value = found.group("bare")
        parts.append(f" {attribute}")
        if value is not None:
            parts.append(f'="{value.translate(_VALUE_ESCAPES)}"')
    parts.append(">")
    return "".join(parts)


class _Balancer:
    """The open elements of the output and what each scope can see of them."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.out: list[str] = []
        self.names: list[str] = []
        self.starts: list[str] = []
        # Per name, the stack positions where it is open, innermost last.
        self.positions: dict[str, list[int]] = {}
        # Per scope, for each position, the nearest boundary at or below it.
        self.bounds: list[list[int]] = [[] for _ in _SCOPES]
        self.reopen: list[tuple[str, str]] = []
        # Start tags left out for depth, by name: their end tags go too.
        self.left_out: dict[str, int] = {}

    def innermost(self, name: str) -> int:
        found = self.positions.get(name)
        return found[-1] if found else -1

    def in_scope(self, name: str, scope: int) -> int:
        """The position of the innermost ``name`` if it is in ``scope``, else -1."""
        position = self.innermost(name)
        if position < 0:
            return -1
        bounds = self.bounds[scope]
        return position if position >= bounds[-1] else -1

    def any_in_scope(self, names: tuple[str, ...], scope: int) -> int:
        return max(self.in_scope(name, scope) for name in names)

    def push(self, name: str, start: str) -> None:
        index = len(self.names)
        self.out.append(start)
        self.names.append(name)
        self.starts.append(start)
        self.positions.setdefault(name, []).append(index)
        for boundaries, bounds in zip(_SCOPES, self.bounds, strict=True):
            if name in boundaries:
                bounds.append(index)
            else:
                bounds.append(bounds[-1] if bounds else -1)

    def pop_to(self, index: int) -> None:
        """Close the elements from the innermost down to ``index``.

        Formatting elements closed on the way (not the one at ``index``) are
        opened again before the next content, unless a cell, caption or
        similar marker closes too.
        """
        carried: list[tuple[str, str]] = []
        while len(self.names) > index:
            name = self.names.pop()
            start = self.starts.pop()
            self.positions[name].pop()
            for bounds in self.bounds:
                bounds.pop()
            self.out.append(f"</{name}>")
            if name in _MARKERS:
                carried.clear()
            elif name in _FORMATTING and len(self.names) > index:
                carried.append((name, start))
        carried.reverse()
        self.reopen = (carried + self.reopen)[:MAX_REOPENED]

    def reopen_formatting(self) -> None:
        pending, self.reopen = self.reopen, []
        for name, start in pending:
            if len(self.names) < self.max_depth:
                self.push(name, start)

    def forget_reopen(self, name: str) -> bool:
        for position in range(len(self.reopen) - 1, -1, -1):
            if self.reopen[position][0] == name:
                del self.reopen[position]
                return True
        return False

    def text(self, text: str) -> None:
        # Whitespace between table rows is no content to carry formatting into.
        if self.reopen and not text.isspace():
            self.reopen_formatting()
        self.out.append(text)

    def close_paragraph(self) -> None:
        paragraph = self.in_scope("p", BUTTON)
        if paragraph >= 0:
            self.pop_to(paragraph)

    def start(self, name: str, attributes_source: str) -> None:
        if name in _CLOSES_P:
            self.close_paragraph()
        self.implied_ends(name)
        if name in _MARKERS:
            self.reopen = []
        elif self.reopen and name not in _NO_REOPEN:
            self.reopen_formatting()
        start = _start_tag(name, attributes_source)
        if name in VOID_ELEMENTS:
            self.out.append(start)
        elif len(self.names) >= self.max_depth:
            self.left_out[name] = self.left_out.get(name, 0) + 1
        else:
            self.push(name, start)

    def implied_ends(self, name: str) -> None:
        """Close what the start tag ``name`` ends implicitly in a browser."""
        target = -1
        if name in _HEADINGS:
            if self.names and self.names[-1] in _HEADINGS:
                target = len(self.names) - 1
        elif name == "li":
            target = self.in_scope("li", LIST)
        elif name in _DEFINITIONS:
            target = self.any_in_scope(_DEFINITIONS, DEFAULT)
        elif name in _CELLS:
            target = self.any_in_scope(_CELLS, TABLE)
        elif name == "tr":
            target = self.in_scope("tr", TABLE)
        elif name in _SECTIONS:
            target = self.any_in_scope(_SECTIONS, TABLE)
        elif name in ("a", "nobr", "button"):
            target = self.in_scope(name, DEFAULT)
        elif name == "table":
            if self.names and self.names[-1] in {"table", "tbody", "thead", "tfoot"}:
                target = self.in_scope("table", TABLE)
        elif name in ("option", "optgroup"):
            if self.names[-1:] == ["option"]:
                self.pop_to(len(self.names) - 1)
            if name == "optgroup" and self.names[-1:] == ["optgroup"]:
                target = len(self.names) - 1
        if target >= 0:
            self.pop_to(target)

    def end(self, name: str) -> None:
        if name == "br":
            self.start("br", "")
            return
        if self.left_out.get(name):
            self.left_out[name] -= 1
            return
        if name == "li":
            scope = LIST
        elif name == "p":
            scope = BUTTON
        elif name in _TABLE_PARTS or name == "table":
            scope = TABLE
        elif name in _SPECIAL or name in _FORMATTING:
            scope = DEFAULT
        else:
            scope = SPECIAL
        target = self.in_scope(name, scope)
        if target >= 0:
            self.pop_to(target)
        elif name in _FORMATTING:
            self.forget_reopen(name)
        elif name == "p":
            # A browser makes an empty paragraph of a stray </p>.
            self.out.append("<p></p>")

    def finish(self) -> str:
        self.pop_to(0)
        return "".join(self.out)


def _breaks_out(token: Token) -> bool:
    """Whether a tag inside SVG or MathML ends it, as in a browser."""
    if token.kind is Kind.END:
        return token.name in ("p", "br")
    if token.name == "font":
        return any(
            name in ("color", "face", "size")
            for name, _value in attributes(token.attributes_source)
        )
    return token.name in _BREAKOUT


def balanced_html(markup: str, *, max_depth: int = MAX_HTML_DEPTH) -> str:
    """``markup`` rewritten well formed, at most ``max_depth`` elements deep.

    See the module docstring for what is kept. Pure; linear in the length of
    ``markup`` (the output is at most a constant times longer).
    """
    balancer = _Balancer(max_depth)
    foreign: str | None = None
    foreign_depth = 0
    # Open HTML integration points (SVG foreignObject, MathML mtext...): HTML
    # inside them stays inside the SVG or MathML.
    integration = 0
    for token in tokens(markup):
        kind = token.kind
        name = token.name
        if foreign is not None:
            if not token.complete or kind not in (Kind.START, Kind.END):
                continue
            if name in _INTEGRATION_POINTS and not token.self_closing:
                integration += 1 if kind is Kind.START else -1
            if integration <= 0 and _breaks_out(token):
                foreign = None
            else:
                if name == foreign:
                    if kind is Kind.END:
                        foreign_depth -= 1
                    elif not token.self_closing:
                        foreign_depth += 1
                    if foreign_depth == 0:
                        foreign = None
                continue
        if kind is Kind.TEXT:
            balancer.text(token.source.replace("<", "&lt;"))
        elif kind is Kind.RAW:
            if name in _RAW_SHOWN:
                balancer.text(token.source.translate(_TEXT_ESCAPES))
        elif not token.complete or name in _IGNORED:
            continue
        elif kind is Kind.START:
            if name in _FOREIGN:
                if not token.self_closing:
                    foreign, foreign_depth, integration = name, 1, 0
            elif name in HTML5_RAW_TEXT:
                # Its content follows as one RAW token; the element is not kept.
                if name in _CLOSES_P:
                    balancer.close_paragraph()
            else:
                balancer.start(name, token.attributes_source)
        elif kind is Kind.END and name not in _NOT_KEPT:
            balancer.end(name)
    return balancer.finish()
