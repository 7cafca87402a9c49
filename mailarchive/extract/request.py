"""What passes between the indexing process and an extraction process.

A request is one frame of bytes (see :mod:`mailarchive.parsing.worker`): a
4-byte big-endian length, that many bytes of a JSON header (type, file name,
charset, limits), then the file's bytes as they are, or nothing when the header
names a file that holds them (the extraction process reads it). The answer is an
:class:`ExtractResult`, pickled by the worker.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

_LENGTH = struct.Struct(">I")
# Units of work (pages, paragraphs, rows, cells) one file may cost, however
# little text they hold; a sheet that pads a million empty rows stops here.
DEFAULT_MAX_STEPS = 2_000_000

OK = "ok"
EMPTY = "empty"
FAILED = "failed"
UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class ExtractRequest:
    """One file to read and the limits of reading it."""

    content_type: str
    filename: str
    data: bytes
    charset: str | None = None
    max_chars: int = 200_000
    # Seconds after which the reader stops and answers with what it has; the
    # process is killed at the hard limit, a little later.
    soft_seconds: float = 20.0
    max_steps: int = DEFAULT_MAX_STEPS
    # A local file holding the data instead (a large attachment).
    path: str | None = None


@dataclass(frozen=True, slots=True)
class ExtractResult:
    """What was read from one file.

    ``status`` is ok (text found), empty (readable, no text), failed (not
    readable: ``reason`` is a short code such as ``encrypted``, ``unreadable``,
    ``zip-bomb``, ``too-large``, ``time``, ``memory``; ``detail`` says more) or
    unsupported (not a kind of file that is read). ``truncated`` says the text
    stops at a limit (``reason`` names it); ``problems`` lists what was skipped
    inside (a page, an archive member).
    """

    status: str
    text: str = ""
    reason: str = ""
    detail: str = ""
    truncated: bool = False
    problems: tuple[str, ...] = ()


def encode_request(request: ExtractRequest) -> bytes:
    """The frame for ``request``. Pure."""
    header = json.dumps(
        {
            "content_type": request.content_type,
            "filename": request.filename,
            "charset": request.charset,
            "max_chars": request.max_chars,
            "soft_seconds": request.soft_seconds,
            "max_steps": request.max_steps,
            "path": request.path,
        },
        ensure_ascii=False,
    ).encode()
    return _LENGTH.pack(len(header)) + header + request.data


def decode_request(frame: bytes) -> ExtractRequest:
    """The request a frame holds, with the data of the file it names read in;
    raises ValueError for anything else."""
    if len(frame) < _LENGTH.size:
        raise ValueError("the request is shorter than its header")
    (length,) = _LENGTH.unpack_from(frame)
    end = _LENGTH.size + length
    if end > len(frame):
        raise ValueError("the request's header runs past its end")
    try:
        header = json.loads(frame[_LENGTH.size : end])
        path = header.get("path")
        return ExtractRequest(
            content_type=str(header["content_type"]),
            filename=str(header["filename"]),
            charset=header["charset"] if header["charset"] else None,
            max_chars=int(header["max_chars"]),
            soft_seconds=float(header["soft_seconds"]),
            max_steps=int(header["max_steps"]),
            data=Path(path).read_bytes() if path else frame[end:],
        )
    except (
        KeyError,
        TypeError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        OSError,
    ) as error:
        raise ValueError(f"the request's header is not valid: {error}") from error
