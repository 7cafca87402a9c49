"""The parse worker: a child process that parses one message at a time.

Run as ``python -m mailarchive.parsing.worker [--target module:function]
[--memory-bytes N]``. It reads frames from standard input and writes one frame
back per frame read; a frame is an 8-byte big-endian length and that many bytes.
The worker first writes an empty frame once it is ready. A request
(:func:`encode_request`) is a 4-byte big-endian length, that many bytes of a
JSON header and the raw message; the header may name a file to read the
message from instead, and a spool directory where large parts are decoded to
files (see :mod:`.spool`; the sender owns that directory and removes it, also
when it kills the worker). An answer is a pickled ``(status, payload)`` tuple:
``("ok", ParsedMessage)``, or ``("memory", None)`` when the parse ran out of
the memory it may use.

The process lives apart so that whoever sends it work can kill it: a message
that makes the parser loop or grow without end costs one killed child, never
the worker that archives mail (see :mod:`.pool`). No Django here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import resource
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import spool

FRAME = struct.Struct(">Q")
_HEADER = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Request:
    """What a worker is handed: bytes, or the file that holds them, and where
    large parts may be spooled (None: nowhere, all in memory)."""

    data: bytes = b""
    path: str | None = None
    spool: str | None = None


def pack_headed(header: dict[str, Any], data: bytes) -> bytes:
    """A request's bytes: a 4-byte big-endian length, that many bytes of
    ``header`` as JSON, then ``data`` as it is. Pure."""
    encoded = json.dumps(header, ensure_ascii=False).encode()
    return _HEADER.pack(len(encoded)) + encoded + data


def unpack_headed(frame: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and data :func:`pack_headed` made; ValueError for anything
    else."""
    if len(frame) < _HEADER.size:
        raise ValueError("the request is shorter than its header")
    (length,) = _HEADER.unpack_from(frame)
    end = _HEADER.size + length
    if end > len(frame):
        raise ValueError("the request's header runs past its end")
    try:
        header = json.loads(frame[_HEADER.size : end])
    except UnicodeDecodeError as error:
        raise ValueError(f"the request's header is not valid: {error}") from error
    if not isinstance(header, dict):
        raise ValueError("the request's header is not valid: not an object")
    return header, frame[end:]


def encode_request(request: Request) -> bytes:
    """The frame for ``request``. Pure."""
    return pack_headed({"path": request.path, "spool": request.spool}, request.data)


def decode_request(frame: bytes) -> Request:
    """The request a frame holds (the file it names not read yet)."""
    header, data = unpack_headed(frame)
    return Request(data=data, path=header.get("path"), spool=header.get("spool"))


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame from ``stream``, or None at a clean end of the stream."""
    head = _read_exactly(stream, FRAME.size)
    if head is None:
        return None
    (length,) = FRAME.unpack(head)
    body = _read_exactly(stream, length)
    if body is None:
        raise EOFError("stream ended inside a frame")
    return body


def write_frame(stream: BinaryIO, data: bytes) -> None:
    stream.write(FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            if left == size:
                return None
            raise EOFError("stream ended inside a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def load_target(spec: str) -> Callable[[bytes], Any]:
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _limit_memory(limit: int) -> None:
    if limit <= 0:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def serve(
    target: Callable[[bytes], Any], requests: BinaryIO, answers: BinaryIO
) -> None:
    """Answer requests until the input ends."""
    while True:
        frame = read_frame(requests)
        if frame is None:
            return
        request = decode_request(frame)
        del frame
        try:
            raw = (
                request.data
                if request.path is None
                else Path(request.path).read_bytes()
            )
            with spool.spooling(request.spool):
                answer = pickle.dumps(("ok", target(raw)), pickle.HIGHEST_PROTOCOL)
            del raw
        except MemoryError:
            answer = None
        if answer is None:
            # The heap may be in pieces: answer, then leave for a fresh child.
            write_frame(answers, pickle.dumps(("memory", None)))
            return
        write_frame(answers, answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="mailarchive.parsing:parse_message")
    parser.add_argument("--memory-bytes", type=int, default=0)
    options = parser.parse_args(argv)
    target = load_target(options.target)
    _limit_memory(options.memory_bytes)
    # Answers go through a private copy of stdout; anything the parser prints
    # would otherwise corrupt the frames.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    write_frame(answers, b"")
    serve(target, sys.stdin.buffer, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
