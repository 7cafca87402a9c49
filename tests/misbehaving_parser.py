"""A parser that misbehaves on request, for the parse-budget tests.

The budget is enforced from outside the parser, so proving it needs a parse
that really never ends or really eats memory; marker headers pick which. Every
other message goes to the real parser.
"""

from __future__ import annotations

import os

from mailarchive.parsing import ParsedMessage, parse_message


def parse(raw: bytes) -> ParsedMessage:
    head = raw[:2048]
    if b"X-Parser-Test: loop" in head:
        while True:
            pass
    if b"X-Parser-Test: grow" in head:
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))
    if b"X-Parser-Test: crash" in head:
        os._exit(3)
    if b"X-Parser-Test: spool-then-loop" in head:
        # Large parts are in spool files by now; the process is then killed.
        parse_message(raw)
        while True:
            pass
    return parse_message(raw)
