"""Readers of text files: plain text, CSV and HTML, in whatever charset.

Text attachments are decoded as message bodies are (:mod:`..parsing.charsets`):
the declared charset, the superset mail programs meant, UTF-8, then detection,
so an undeclared Shift_JIS CSV reads as Japanese. HTML becomes text through
the archive's own linear converter (:func:`..parsing.text.html_to_text`).
"""

from __future__ import annotations

import re

from ..parsing.charsets import decode_text
from ..parsing.text import html_to_text, normalise_newlines
from .sink import TextSink

# Text goes to the sink in pieces of about this many characters, so the clock
# is looked at while a large file is taken in.
PIECE = 16 * 1024
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:+-]+)", re.I)


def decoded(data: bytes, charset: str | None) -> str:
    """``data`` as text, newlines normalised; never raises."""
    return normalise_newlines(decode_text(data, charset).text)


def add_text(text: str, sink: TextSink) -> None:
    """Give ``text`` to the sink piece by piece, cut at line ends."""
    start = 0
    while start < len(text):
        end = start + PIECE
        if end < len(text):
            newline = text.rfind("\n", start, end)
            end = newline + 1 if newline > start else end
        piece = text[start:end].strip("\n")
        if piece:
            sink.add(piece)
        else:
            sink.tick()
        start = end


def read_text(data: bytes, charset: str | None, sink: TextSink) -> None:
    """A plain text or CSV file, as it is."""
    add_text(decoded(data, charset), sink)


def read_html(data: bytes, charset: str | None, sink: TextSink) -> None:
    """The visible text of an HTML file."""
    if not charset:
        found = _META_CHARSET.search(data[:4096])
        charset = found.group(1).decode("ascii") if found else None
    add_text(html_to_text(decoded(data, charset)), sink)
