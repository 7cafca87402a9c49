"""HTML split into text and tags in one linear pass, the way browsers split it.

The standard library's ``html.parser`` backs off one character at a time from
an unclosed construct (``<a <a <a …``, ``</``, ``<!``, ``<?``), which makes a
few kilobytes of crafted markup take minutes. Here every token is one match of
one regular expression without backtracking, and every construct a browser
would run to the end of the input (an unclosed tag, comment or quoted
attribute value) runs to the end of the input, so each character is read a
bounded number of times.

Tokens follow the HTML standard's tokenizer where it matters for reading mail:
tag names end at whitespace, ``/`` or ``>``; quotes only delimit attribute
values after ``=``; a tag or quoted value left open at the end of the input is
dropped (``complete`` is False); ``<!-->`` and ``<!--->`` are empty comments;
``</>`` is nothing; the content of the raw-text elements the caller names
(``script``, ``style``…) runs to their end tag without being tokenized.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from enum import Enum
from typing import NamedTuple

__all__ = [
    "HTML5_RAW_TEXT",
    "Kind",
    "Token",
    "attributes",
    "tokens",
]


class Kind(Enum):
    TEXT = "text"  # character data, character references not yet decoded
    RAW = "raw"  # the whole content of a raw-text element, as written
    START = "start"
    END = "end"
    COMMENT = "comment"  # comments, doctypes, processing instructions


class Token(NamedTuple):
    """One piece of an HTML document; ``source`` is its text as written."""

    kind: Kind
    source: str
    name: str = ""  # ASCII lower-case tag name, or the raw-text element's name
    attributes_source: str = ""  # what stood between the tag name and ">"
    complete: bool = True  # False for a tag cut off by the end of the input

    @property
    def self_closing(self) -> bool:
        return self.source.endswith("/>")


# Elements whose content the standard's tokenizer does not split into tags.
HTML5_RAW_TEXT = frozenset(
    {
        "script",
        "style",
        "xmp",
        "iframe",
        "noembed",
        "noframes",
        "noscript",
        "title",
        "textarea",
        "plaintext",
    }
)

_SPACE = "\t\n\f\r "
# One attribute, or a run of separators. Quotes open a value only after "=";
# an unclosed quoted value runs to the end of the input.
_ATTRIBUTE = (
    rf"[{_SPACE}/]++"
    rf"|[^{_SPACE}/>][^{_SPACE}/>=]*+"
    rf"(?:[{_SPACE}]*+=[{_SPACE}]*+"
    rf"""(?:"[^"]*+"?|'[^']*+'?|[^{_SPACE}>]*+))?"""
)
_TOKEN = re.compile(
    rf"""
    (?P<text>[^<]++)
  | (?P<tag><(?P<end>/?)(?P<name>[A-Za-z][^{_SPACE}/>]*+)
    (?P<attributes>(?:{_ATTRIBUTE})*+)(?P<close>>?))
  | (?P<comment><!--(?:-?>|.*?(?:--!?>|\Z))|<[!?][^>]*+>?|</[^A-Za-z>][^>]*+>?)
  | (?P<nothing></>)
  | (?P<lone><)
    """,
    re.VERBOSE | re.DOTALL,
)
_ATTRIBUTE_PARTS = re.compile(
    rf"""
    (?P<name>[^{_SPACE}/>][^{_SPACE}/>=]*+)
    (?:[{_SPACE}]*+=[{_SPACE}]*+
       (?:"(?P<double>[^"]*+)"?|'(?P<single>[^']*+)'?|(?P<bare>[^{_SPACE}>]*+)))?
    """,
    re.VERBOSE,
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_RAW_END: dict[str, re.Pattern[str]] = {}


def _raw_end(name: str) -> re.Pattern[str]:
    pattern = _RAW_END.get(name)
    if pattern is None:
        pattern = re.compile(rf"</{re.escape(name)}(?=[{_SPACE}/>])", re.IGNORECASE)
        _RAW_END[name] = pattern
    return pattern


def tokens(
    markup: str, *, raw_text: frozenset[str] = HTML5_RAW_TEXT
) -> Iterator[Token]:
    """Yield the tokens of ``markup`` in order; their sources add up to it.

    After the start tag of an element named in ``raw_text`` its content comes
    as one RAW token (``plaintext`` runs to the end). Pure; linear in
    ``len(markup)``.
    """
    position = 0
    length = len(markup)
    match_token = _TOKEN.match
    while position < length:
        found = match_token(markup, position)
        if found is None:  # unreachable: "<" alone always matches
            yield Token(Kind.TEXT, markup[position:])
            return
        position = found.end()
        kind = found.lastgroup
        if kind == "text":
            yield Token(Kind.TEXT, found.group())
        elif kind == "tag":
            name = found.group("name").translate(_ASCII_LOWER)
            complete = bool(found.group("close"))
            kind_of_tag = Kind.END if found.group("end") else Kind.START
            yield Token(
                kind_of_tag, found.group(), name, found.group("attributes"), complete
            )
            if kind_of_tag is Kind.END or not complete or name not in raw_text:
                continue
            end = (
                None if name == "plaintext" else _raw_end(name).search(markup, position)
            )
            stop = end.start() if end is not None else length
            if stop > position:
                yield Token(Kind.RAW, markup[position:stop], name)
            position = stop
        elif kind == "comment":
            yield Token(Kind.COMMENT, found.group())
        elif kind == "nothing":
            continue
        else:
            yield Token(Kind.TEXT, found.group())


def attributes(source: str) -> list[tuple[str, str | None]]:
    """The attributes in a tag's ``attributes_source``: ASCII lower-case names
    and values with character references decoded (None: no value), first
    occurrence of each name only, as browsers keep them. Pure; linear."""
    found: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for part in _ATTRIBUTE_PARTS.finditer(source):
        name = part.group("name").translate(_ASCII_LOWER)
        if name in seen:
            continue
        seen.add(name)
        value = part.group("double")
        if value is None:
            value = part.group("single")
        if value is None:
            value = part.group("bare")
        found.append((name, None if value is None else html.unescape(value)))
    return found
