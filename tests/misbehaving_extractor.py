"""An extraction target that misbehaves on request, for the budget tests.

The extraction budget is enforced from outside the readers, so proving it
needs a read that really never ends, really eats memory or really dies; the
file name picks which ("loop.pdf", "grow.pdf", "crash.pdf"). Every other file
goes to the real readers.
"""

from __future__ import annotations

import os

from mailarchive.extract import ExtractResult, decode_request
from mailarchive.extract.process import extract_request


def extract(frame: bytes) -> ExtractResult:
    name = decode_request(frame).filename
    if name == "loop.pdf":
        while True:
            pass
    if name == "grow.pdf":
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))
    if name == "crash.pdf":
        os._exit(3)
    return extract_request(frame)
