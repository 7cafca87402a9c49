"""A local storage whose disk fills up: the one storage fault a test cannot
cause on demand on a real file system (the suite runs as any user, root
included, whom a read-only directory does not stop).

Everything else is the real ``DurableFileSystemStorage``: temporary files,
fsync, renames. Writes fail with ENOSPC, as a full disk fails them, once
``FullDiskStorage.room`` bytes have been written.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO, Any

from mailarchive.storage import DurableFileSystemStorage


class _FillingFile:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, data: bytes) -> int:
        _fill(data)
        return self._out.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._out.close()


def _fill(data: bytes) -> None:
    if len(data) > FullDiskStorage.room:
        FullDiskStorage.room = 0
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    FullDiskStorage.room -= len(data)


class FullDiskStorage(DurableFileSystemStorage):
    room = 0

    def _write(self, fd: int, data: bytes) -> None:
        _fill(data)
        super()._write(fd, data)

    def _open_temporary(self, full: Path) -> tuple[Path, Any]:
        tmp, out = super()._open_temporary(full)
        return tmp, _FillingFile(out)
