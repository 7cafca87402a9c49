"""Content-addressed, durable storage of raw messages and attachments, and
the uploaded files waiting for their import.

Objects are named by the SHA-256 of their bytes, so a retry after a crash
rewrites the same object and identical attachments are stored once. They go
through Django's storage API: local files by default, an S3-compatible object
store when web and workers run on several machines. Uploads are kept there
too, under ``imports/``, so that a worker on any machine reads the file the
web process received.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import posixpath
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.move import file_move_safe
from django.core.files.storage import FileSystemStorage, default_storage, storages


class StorageError(OSError):
    """The storage could not write or read an object (disk full, permission
    denied, an object store that failed).

    Raised instead of whatever the backend raised (kept as ``__cause__``), so
    that callers tell a storage fault from a problem of one message: every
    further object would fail the same way. ``errno`` is the backend's, when it
    gave one; ``reason`` is what it said.
    """

    def __init__(self, action: str, name: str, error: BaseException) -> None:
        code = error.errno if isinstance(error, OSError) else None
        self.reason = (
            (getattr(error, "strerror", None) or str(error))
            if isinstance(error, OSError)
            else f"{type(error).__name__}: {error}"
        )
        super().__init__(code, f"{action} {name} failed: {self.reason}")
        self.action = action
        self.name = name

    def __str__(self) -> str:
        return f"{self.action} {self.name} failed: {self.reason}"


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

    def _open_temporary(self, full: str) -> tuple[str, int]:
        """A private temporary file beside ``full``, open for writing.

        Its directories are made only when opening it fails: in the common
        case the folder exists already and this is one system call.
        """
        tmp = self._temporary_of(full)
        mode = self.file_permissions_mode
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, mode or 0o666)
        except FileNotFoundError:
            self._make_directories(Path(full).parent)
            fd = os.open(tmp, flags, mode or 0o666)
        if mode is not None:
            # The mode of os.open is reduced by the umask, and a leftover
            # temporary file keeps its old mode: set it explicitly.
            try:
                os.fchmod(fd, mode)
            except BaseException:
                os.close(fd)
                raise
        return tmp, fd

    def _temporary_of(self, full: str) -> str:
        """The temporary file an object at ``full`` is written to first."""
        folder, _slash, base = full.rpartition("/")
        return posixpath.join(folder, f".{base}.{os.getpid()}.tmp")

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name

    def _save(self, name: str, content: IO[bytes]) -> str:
        full = Path(self.path(name))
        if full.exists():
            # Same name, same bytes: only mark it as in use now, so that the
            # collector of purged objects leaves it alone (see OrphanBlob).
            os.utime(full)
            return name
        if hasattr(content, "temporary_file_path"):
            return self._save_moved(name, full, content.temporary_file_path())
        tmp, fd = self._open_temporary(str(full))
        try:
            if hasattr(content, "chunks"):
                for chunk in content.chunks():
                    self._write(fd, chunk)
            else:
                self._write(fd, content.read())
            os.fsync(fd)
        except BaseException:
            # Nothing refers to it; a full disk gets its room back.
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        os.close(fd)
        Path(tmp).replace(full)
        _fsync(full.parent)
        return name

    def _save_moved(self, name: str, full: Path, temporary: str) -> str:
        """Move an upload Django streamed to disk into place (a rename when the
        temporary directory is on the same file system), then sync it."""
        tmp, fd = self._open_temporary(str(full))
        os.close(fd)
        file_move_safe(temporary, tmp, allow_overwrite=True)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            if self.file_permissions_mode is not None:
                os.fchmod(fd, self.file_permissions_mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        Path(tmp).replace(full)
        self._sync([full.parent])
        return name

    def save_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Write several objects with two syncs of the file system in all.

        Each object is written to a temporary file; all of them are synced,
        then renamed into place, then the directories are synced. A crash
        leaves only temporary files or complete objects, never a short one.
        The secure stage runs this for every batch of mail, so the objects are
        written by a few threads at once (the file system's calls wait on the
        disk, not on the interpreter), each with as few system calls as it
        can: an object present already is only touched, and directories are
        made only when opening a file in them fails. An object named twice is
        written once.
        """
        unique = list(dict(items).items())
        pool = _writers()
        futures = [pool.submit(self._write_temporary, item) for item in unique]
        concurrent.futures.wait(futures)
        moves: list[tuple[str, str]] = []
        failure: BaseException | None = None
        for future in futures:
            try:
                move = future.result()
            except BaseException as error:
                failure = failure or error
                continue
            if move is not None:
                moves.append(move)
        if failure is not None:
            for item in unique:
                Path(self._temporary_of(self.path(item[0]))).unlink(missing_ok=True)
            raise failure
        try:
            if not moves:
                return
            self._sync([tmp for tmp, _full in moves])
            for tmp, full in moves:
                Path(tmp).replace(full)
            self._sync(sorted({posixpath.dirname(full) for _tmp, full in moves}))
        except BaseException:
            # Nothing refers to these yet; a full disk gets its room back.
            for tmp, _full in moves:
                Path(tmp).unlink(missing_ok=True)
            raise

    def _write(self, fd: int, data: bytes) -> None:
        """Write all of ``data`` to ``fd`` without copying it."""
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def _write_temporary(self, item: tuple[str, bytes]) -> tuple[str, str] | None:
        """Write one object of :meth:`save_many` to its temporary file.

        Returns (temporary, final) paths, or None for an object present
        already. The temporary file is unsynced unless syncfs is missing.
        """
        full = self.path(item[0])
        try:
            # Same name, same bytes: only mark it as in use now.
            os.utime(full)
            return None
        except FileNotFoundError:
            pass
        tmp, fd = self._open_temporary(full)
        try:
            self._write(fd, item[1])
            if not _SYNCFS:
                os.fsync(fd)
        finally:
            os.close(fd)
        return tmp, full

    def _sync(self, paths: Sequence[str | Path]) -> None:
        if _SYNCFS:
            fd = os.open(self.location, os.O_RDONLY)
            try:
                if _SYNCFS(fd) == 0:
                    return
            finally:
                os.close(fd)
        for path in paths:
            _fsync(path)


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Threads that write the objects of a batch: enough to keep a disk's queue
# busy, shared by the process (one batch is written at a time per poll).
WRITERS = 4


_WRITERS_OF: dict[int, concurrent.futures.ThreadPoolExecutor] = {}


def _writers() -> concurrent.futures.ThreadPoolExecutor:
    """This process's writer threads (a forked child makes its own)."""
    pid = os.getpid()
    pool = _WRITERS_OF.get(pid)
    if pool is None:
        _WRITERS_OF.clear()
        pool = _WRITERS_OF[pid] = concurrent.futures.ThreadPoolExecutor(
            max_workers=WRITERS, thread_name_prefix="storage-writer"
        )
    return pool


def _load_syncfs() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """Linux's syncfs(2): one call makes every write to a file system durable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


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
    _save_named(name, lambda: ContentFile(data))
    return name, digest


def _save_named(
    name: str, content: Callable[[], contextlib.AbstractContextManager[File]]
) -> None:
    """Save what ``content`` opens under exactly ``name``.

    Written even when present: the write marks the object as in use now,
    which a concurrent purge's collector respects. StorageError if the
    backend fails; RuntimeError if it would store the object under another
    name.
    """
    try:
        with content() as opened:
            saved = default_storage.save(name, opened)
    except Exception as error:
        raise StorageError("storing", name, error) from error
    if saved != name:
        raise RuntimeError(
            f"storage renamed {name} to {saved}: configure the storage backend "
            "to overwrite files (content-addressed names must be kept)"
        )


def blob_put_file(kind: str, path: str, sha256_hex: str) -> tuple[str, str]:
    """Store the file at ``path``, whose digest is ``sha256_hex``, as
    :func:`blob_put` stores bytes, streaming it (it is never read whole into
    memory). The file stays where it is. Safe to re-run."""
    name = blob_name(kind, sha256_hex)
    _save_named(name, lambda: File(Path(path).open("rb")))  # noqa: SIM115
    return name, sha256_hex


def blob_local(name: str, *, directory: str, inline_limit: int) -> str | bytes:
    """The stored object ``name`` for a process on this machine to read: the
    path of a local file, or its bytes when it is smaller than ``inline_limit``.

    On local storage that is the stored file itself; from an object store,
    an object of ``inline_limit`` bytes or more is streamed into a new file in
    ``directory``, which the caller removes. StorageError if it cannot be read.
    """
    try:
        local = default_storage.path(name)
    except NotImplementedError:
        local = None
    try:
        if local is not None:
            if not Path(local).is_file():
                raise FileNotFoundError(f"no stored object at {local}")
            return local
        with blob_open(name) as stored:
            head = b""
            while len(head) < inline_limit and (
                more := stored.read(inline_limit - len(head))
            ):
                head += more
            if len(head) < inline_limit:
                return head
            fd, path = tempfile.mkstemp(dir=directory, prefix="raw-")
            with os.fdopen(fd, "wb") as copy:
                copy.write(head)
                del head
                while chunk := stored.read(COPY_CHUNK):
                    copy.write(chunk)
            return path
    except Exception as error:
        raise StorageError("reading", name, error) from error


def blobs_put(kind: str, datas: Sequence[bytes]) -> list[tuple[str, str]]:
    """Store several objects durably; returns (name, sha256 hex) for each.

    On local storage the whole batch costs two file-system syncs instead of
    two per object. Safe to re-run, like :func:`blob_put`.
    """
    named = []
    for data in datas:
        digest = hashlib.sha256(data).hexdigest()
        named.append((blob_name(kind, digest), digest))
    storage = storages["default"]
    if isinstance(storage, DurableFileSystemStorage):
        try:
            storage.save_many(
                [(name, data) for (name, _d), data in zip(named, datas, strict=True)]
            )
        except Exception as error:
            raise StorageError("storing", named[0][0], error) from error
        return named
    return [
        blob_put(kind, data, digest)
        for (_n, digest), data in zip(named, datas, strict=True)
    ]


def blob_open(name: str) -> IO[bytes]:
    """Open a stored object for reading (the caller closes it)."""
    return default_storage.open(name, "rb")


def blob_read(name: str) -> bytes:
    """The bytes of a stored object; StorageError if they cannot be read."""
    try:
        with blob_open(name) as fp:
            return fp.read()
    except Exception as error:
        raise StorageError("reading", name, error) from error


def storage_probe() -> None:
    """Write, read back and delete a small object; raises what the storage raised.

    The readiness probe's check that raw messages could be stored now. The
    object's name is this process's own, so concurrent probes never collide.
    """
    name = f"probe/{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
    data = b"mailarchive readiness probe\n"
    saved = default_storage.save(name, ContentFile(data))
    try:
        if blob_read(saved) != data:
            raise OSError(f"storage returned other bytes for {saved}")
    finally:
        default_storage.delete(saved)


# Uploaded files waiting for their import, in the storage beside the mail.
UPLOADS = "imports"
COPY_CHUNK = 1024 * 1024
HEARTBEAT_BYTES = 256 * 1024 * 1024


def _legacy_upload_dir() -> Path:
    # Where earlier versions kept uploads: the web machine's own data dir.
    return (Path(settings.DATA_DIR) / "imports").resolve()


def _is_upload_name(name: str) -> bool:
    return name.startswith(f"{UPLOADS}/") and posixpath.normpath(name) == name


def upload_save(content: File) -> str:
    """Store an uploaded file for its import; returns its storage name.

    Streams the file (an upload Django spooled to disk is moved on local
    storage, never read into memory) and returns once it is durable. Each call
    stores another object under a new name.
    """
    name = f"{UPLOADS}/{uuid.uuid4().hex}.upload"
    saved = default_storage.save(name, content)
    if saved != name:
        default_storage.delete(saved)
        raise RuntimeError(f"storage renamed {name} to {saved}")
    return name


def upload_exists(name: str) -> bool:
    """Whether the upload ``name`` is still stored. Reads only."""
    if Path(name).is_absolute():
        return Path(name).is_file()
    return _is_upload_name(name) and default_storage.exists(name)


def upload_delete(name: str) -> bool:
    """Delete the upload ``name``; whether there was one to delete.

    Deletes only uploads: a name outside ``imports/`` (or, for a path an
    earlier version recorded, a file outside its upload directory) is left
    alone. Safe to re-run.
    """
    if Path(name).is_absolute():
        try:
            real = Path(name).resolve()
        except (OSError, RuntimeError):
            return False
        if not real.is_relative_to(_legacy_upload_dir()) or not real.is_file():
            return False
        real.unlink(missing_ok=True)
        return True
    if not upload_exists(name):
        return False
    default_storage.delete(name)
    return True


def uploads_stored_before(before: datetime) -> list[str]:
    """The names of uploads (and of their cut-short writes) older than ``before``.

    Includes the files an earlier version kept in the data dir. Reads only.
    """
    try:
        _folders, files = default_storage.listdir(UPLOADS)
    except FileNotFoundError:
        files = []
    found = [
        f"{UPLOADS}/{name}"
        for name in files
        if default_storage.get_modified_time(f"{UPLOADS}/{name}") < before
    ]
    legacy = _legacy_upload_dir()
    if legacy.is_dir():
        for path in legacy.iterdir():
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_mtime < before.timestamp():
                    found.append(str(path))
    return found


@contextlib.contextmanager
def upload_local_file(
    name: str, *, heartbeat: Callable[[], None] | None = None
) -> Iterator[Path]:
    """The upload ``name`` as a local file, for as long as the block runs.

    On local storage that is the stored file itself; from an object store it
    is a private copy in ``FILE_UPLOAD_TEMP_DIR``, streamed down (calling
    ``heartbeat`` every ``HEARTBEAT_BYTES``) and removed afterwards. Raises
    FileNotFoundError when the upload is gone.
    """
    if Path(name).is_absolute():
        yield Path(name)
        return
    if not upload_exists(name):
        raise FileNotFoundError(name)
    try:
        local = default_storage.path(name)
    except NotImplementedError:
        local = None
    if local is not None:
        yield Path(local)
        return
    with tempfile.NamedTemporaryFile(
        dir=settings.FILE_UPLOAD_TEMP_DIR, prefix="import-", suffix=".copy"
    ) as copy:
        with default_storage.open(name, "rb") as stored:
            since = 0
            while chunk := stored.read(COPY_CHUNK):
                copy.write(chunk)
                since += len(chunk)
                if heartbeat is not None and since >= HEARTBEAT_BYTES:
                    since = 0
                    heartbeat()
        copy.flush()
        yield Path(copy.name)
