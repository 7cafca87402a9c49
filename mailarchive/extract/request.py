"""What passes between the indexing process and an extraction process.

A request is one frame of bytes, framed as the parse worker's are
(:func:`mailarchive.parsing.worker.pack_headed`): a JSON header (type, file
name, charset, limits), then the file's bytes as they are, or nothing when the
header names a file that holds them (the extraction process reads it). The answer is an
:class:`ExtractResult`, pickled by the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..parsing.worker import pack_headed, unpack_headed

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
    return pack_headed(
        {
            "content_type": request.content_type,
            "filename": request.filename,
            "charset": request.charset,
            "max_chars": request.max_chars,
            "soft_seconds": request.soft_seconds,
            "max_steps": request.max_steps,
            "path": request.path,
        },
        request.data,
    )


def decode_request(frame: bytes) -> ExtractRequest:
    """The request a frame holds, with the data of the file it names read in;
    raises ValueError for anything else."""
    header, data = unpack_headed(frame)
    try:
        path = header.get("path")
        return ExtractRequest(
            content_type=str(header["content_type"]),
            filename=str(header["filename"]),
            charset=header["charset"] if header["charset"] else None,
            max_chars=int(header["max_chars"]),
            soft_seconds=float(header["soft_seconds"]),
            max_steps=int(header["max_steps"]),
            data=Path(path).read_bytes() if path else data,
        )
    except (KeyError, TypeError, OSError) as error:
        raise ValueError(f"the request's header is not valid: {error}") from error
