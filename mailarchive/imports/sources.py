"""Where imported files come from: uploads, the server import directory."""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from ..mbox import MboxFormatError, sniff_source

SERVER_FILES_LISTED = 2000


class ImportPathError(ValueError):
    """A server-side path that may not be imported; the text says why."""


@dataclass(frozen=True)
class ServerFile:
    """A file of ``MAILARCHIVE_IMPORT_DIR``: its path relative to it, its size."""

    name: str
    size: int


def import_dir_root() -> Path | None:
    """The server directory site admins may import from, or None when unset."""
    configured = settings.MAILARCHIVE_IMPORT_DIR
    return Path(configured).expanduser().resolve() if configured else None


def import_dir_files() -> list[ServerFile]:
    """The files of ``MAILARCHIVE_IMPORT_DIR``, sorted by name; reads only.

    Hidden files and directories are left out, and so are symbolic links that
    lead outside the directory. At most ``SERVER_FILES_LISTED`` files are listed.
    """
    root = import_dir_root()
    if root is None or not root.is_dir():
        return []
    found: list[ServerFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            relative = (Path(dirpath) / name).relative_to(root).as_posix()
            try:
                path = import_dir_resolve(relative)
            except ImportPathError:
                continue
            found.append(ServerFile(name=relative, size=path.stat().st_size))
            if len(found) >= SERVER_FILES_LISTED:
                return found
    return found


def import_dir_resolve(name: str) -> Path:
    """The real path of ``name`` inside ``MAILARCHIVE_IMPORT_DIR``.

    Raises ImportPathError when the directory is not configured, when ``name``
    is absolute, or when it leads outside the directory (``..`` or a symbolic
    link pointing elsewhere), or is not a regular file. Reads only.
    """
    root = import_dir_root()
    if root is None:
        raise ImportPathError(_("No server import directory is configured."))
    if not name or Path(name).is_absolute():
        raise ImportPathError(_("Choose a file inside the import directory."))
    try:
        path = (root / name).resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise ImportPathError(_("No such file in the import directory.")) from e
    if not path.is_relative_to(root):
        raise ImportPathError(_("That file is outside the import directory."))
    if not path.is_file():
        raise ImportPathError(_("That is not a regular file."))
    return path


def import_check_head(head: bytes) -> str:
    """Say what the first bytes of a file hold: ``"mbox"`` or ``"eml"``.

    For a gzip file the start of its content is looked at. Raises
    MboxFormatError with a clear text for an empty file or anything that is
    neither an mbox nor a message. Pure function.
    """
    if head.startswith(b"\x1f\x8b"):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 65536)
        except zlib.error as e:
            raise MboxFormatError(_("corrupt gzip file")) from e
        if not head:
            raise MboxFormatError(_("empty file"))
    return sniff_source(io.BytesIO(head))
