"""Content-addressed, durable storage of raw messages and attachments.

Objects are named by the SHA-256 of their bytes, so a retry after a crash
rewrites the same object and identical attachments are stored once. They go
through Django's storage API: local files by default, any django-storages
backend when web and workers run on several machines.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import IO

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage


class DurableFileSystemStorage(FileSystemStorage):
    """Local storage whose writes survive a power cut once ``save`` returns.

    Writes go to a temporary file that is fsynced and renamed into place, and the
    directory is fsynced too: the poller deletes mail from the server only after
    this returns and the database commit that refers to it. An existing object
    of the same name is left alone, since its name is its content's digest.
    Files and directories get ``FILE_UPLOAD_PERMISSIONS`` and
    ``FILE_UPLOAD_DIRECTORY_PERMISSIONS`` (0600 and 0700: mail is private).
    """

    def _make_directories(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            # A concurrent writer may create the same directory first.
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            if self.directory_permissions_mode is not None:
                path.chmod(self.directory_permissions_mode)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name

    def _save(self, name: str, content: IO[bytes]) -> str:
        full = Path(self.path(name))
        if full.exists():
            # Same name, same bytes: only mark it as in use now, so that the
            # collector of purged objects leaves it alone (see OrphanBlob).
            os.utime(full)
            return name
        self._make_directories(full.parent)
        tmp = full.with_name(f".{full.name}.{os.getpid()}.tmp")
        mode = self.file_permissions_mode or 0o666
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as out:
            # The mode of os.open is reduced by the umask, and a leftover
            # temporary file keeps its old mode: set it explicitly.
            if self.file_permissions_mode is not None:
                os.fchmod(out.fileno(), self.file_permissions_mode)
            if hasattr(content, "chunks"):
                for chunk in content.chunks():
                    out.write(chunk)
            else:
                out.write(content.read())
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(full)
        dir_fd = os.open(full.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return name


def blob_name(kind: str, sha256_hex: str) -> str:
    """The storage name of an object: ``raw/ab/cd/abcd….eml`` or ``att/…``."""
    suffix = ".eml" if kind == "raw" else ""
    return f"{kind}/{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}{suffix}"


def blob_put(kind: str, data: bytes, sha256_hex: str | None = None) -> tuple[str, str]:
    """Store ``data`` durably under its digest; returns (name, sha256 hex).

    Safe to re-run: the same bytes map to the same name and are stored once.
    """
    digest = sha256_hex or hashlib.sha256(data).hexdigest()
    name = blob_name(kind, digest)
    # Written even when present: the write marks the object as in use now,
    # which a concurrent purge's collector respects.
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        raise RuntimeError(
            f"storage renamed {name} to {saved}: configure the storage backend "
            "to overwrite files (content-addressed names must be kept)"
        )
    return name, digest


def blob_open(name: str) -> IO[bytes]:
    """Open a stored object for reading (the caller closes it)."""
    return default_storage.open(name, "rb")


def blob_read(name: str) -> bytes:
    with blob_open(name) as fp:
        return fp.read()
