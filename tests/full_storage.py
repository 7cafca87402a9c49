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

from mailarchive.storage import DurableFileSystemStorage


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
