"""Checks made on a ZIP file before anything in it is unpacked.

Office documents are ZIP files too, and the libraries that read them unpack
their parts whole. A ZIP file says how large each member is before unpacking
it (and :mod:`zipfile` never unpacks more than that), so a member that would
unpack to gigabytes is refused from its directory entry alone.
"""

from __future__ import annotations

import io
import zipfile

MIB = 1024 * 1024
# An archive (application/zip): members read, each one's and all members'
# unpacked bytes, and the packing ratio past which a member is a bomb.
ARCHIVE_MAX_MEMBERS = 1000
ARCHIVE_MAX_MEMBER_BYTES = 64 * MIB
ARCHIVE_MAX_TOTAL_BYTES = 256 * MIB
ARCHIVE_MAX_RATIO = 100
RATIO_FLOOR_BYTES = 1 * MIB
# An office document: parts, and the parts its library reads whole (each, and
# all of them). Spreadsheet sheets are streamed and so exempt from the first.
DOCUMENT_MAX_MEMBERS = 10_000
DOCUMENT_MAX_PART_BYTES = 64 * MIB
DOCUMENT_MAX_TOTAL_BYTES = 256 * MIB


class Refused(Exception):
    """A file not read at all: ``reason`` is a short code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


def open_zip(data: bytes) -> zipfile.ZipFile:
    """``data`` as a ZIP file; raises Refused("unreadable") if it is none."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise Refused("unreadable", f"not a readable ZIP file: {error}") from error


def is_bomb(info: zipfile.ZipInfo) -> bool:
    """Whether a member packs far tighter than real files do."""
    if info.file_size <= RATIO_FLOOR_BYTES:
        return False
    return info.file_size > ARCHIVE_MAX_RATIO * max(1, info.compress_size)


def check_document(archive: zipfile.ZipFile, *, streamed_prefix: str = "") -> None:
    """Refuse a document whose parts would unpack too large.

    Parts under ``streamed_prefix`` (a spreadsheet's sheets) are read as a
    stream and count only towards the total. Raises Refused.
    """
    infos = archive.infolist()
    if len(infos) > DOCUMENT_MAX_MEMBERS:
        raise Refused("too-large", f"{len(infos)} parts")
    whole = 0
    for info in infos:
        if streamed_prefix and info.filename.startswith(streamed_prefix):
            continue
        if info.file_size > DOCUMENT_MAX_PART_BYTES:
            raise Refused(
                "too-large",
                f"the part {info.filename} unpacks to {info.file_size} bytes",
            )
        whole += info.file_size
    if whole > DOCUMENT_MAX_TOTAL_BYTES:
        raise Refused("too-large", f"the parts unpack to {whole} bytes")
