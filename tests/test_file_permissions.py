"""The data dir and everything in it are private to the archive's user.

Mail, the generated secret key, the SQLite database and the broker's files
must not be readable by other users of the machine: directories 0700, files
0600, also when an earlier version left them open.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from mailarchive.imports import import_upload_accept
from mailarchive.storage import blob_put
from tests.mailarchive.test_import import mbox_of, message

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def process_env(data_dir: Path) -> dict[str, str]:
    """The environment of one machine's defaults: SQLite, the file broker, a
    generated key, all under ``data_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "MAILARCHIVE_"))
    }
    return env | {"MAILARCHIVE_DATA_DIR": str(data_dir), "MAILARCHIVE_HTTPS": "off"}


def start_a_process(data_dir: Path) -> None:
    """Start ``manage.py`` as every command does, and open the database."""
    code = (
        "from django.db import connection; "
        "connection.cursor().execute('create table if not exists t (x int)')"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=process_env(data_dir),
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_a_new_data_dir_is_private(tmp_path):
    data = tmp_path / "var"
    start_a_process(data)
    assert mode(data) == 0o700
    assert mode(data / "secret_key") == 0o600
    assert len((data / "secret_key").read_text()) >= 40
    assert mode(data / "mailarchive.sqlite3") == 0o600
    for sub in ("broker", "broker/queue", "broker/processed", "broker/control"):
        assert mode(data / sub) == 0o700, sub
    assert mode(data / "upload-tmp") == 0o700
    others = [p for p in data.rglob("*") if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert others == []


def test_a_data_dir_left_open_is_closed(tmp_path):
    """GIVEN a data dir an earlier version left world-readable WHEN a process
    starts THEN the directory, the secret key and the database are private."""
    data = tmp_path / "var"
    start_a_process(data)
    data.chmod(0o755)
    (data / "secret_key").chmod(0o644)
    (data / "mailarchive.sqlite3").chmod(0o644)
    (data / "broker").chmod(0o755)
    key = (data / "secret_key").read_text()
    start_a_process(data)
    assert mode(data) == 0o700
    assert mode(data / "secret_key") == 0o600
    assert (data / "secret_key").read_text() == key
    assert mode(data / "mailarchive.sqlite3") == 0o600
    assert mode(data / "broker") == 0o700


def test_stored_messages_and_their_directories_are_private(db):
    name, _digest = blob_put("raw", b"From: a@example.com\n\nprivate mail " * 3)
    stored = Path(settings.STORAGES["default"]["OPTIONS"]["location"]) / name
    assert mode(stored) == 0o600
    for parent in list(stored.parents)[:3]:
        assert mode(parent) == 0o700, parent


@pytest.mark.parametrize("in_memory", [True, False], ids=["small", "temp-file"])
def test_uploaded_files_are_private(actors, settings, in_memory):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10**9 if in_memory else 0
    upload = SimpleUploadedFile("a.mbox", mbox_of(message("private")))
    job = import_upload_accept(space=actors.space, upload=upload, requested_by=None)
    stored = Path(default_storage.path(job.path))
    assert mode(stored) == 0o600
    assert mode(stored.parent) == 0o700


ENTRY_POINTS = {
    "manage.py": ["manage.py", "shell", "-c", "{write}"],
    "wsgi": ["-c", "import mailarchive.wsgi; {write}"],
    "asgi": ["-c", "import mailarchive.asgi; {write}"],
    "celery-worker": [
        "-c",
        "from mailarchive.celery import app; from celery import signals; "
        "signals.worker_init.send(sender=None); {write}",
    ],
    "celery-beat": [
        "-c",
        "from mailarchive.celery import app; from celery import signals; "
        "signals.beat_init.send(sender=None); {write}",
    ],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_creates_private_files(tmp_path, entry):
    """GIVEN each way the archive starts WHEN the process (or a library in it)
    creates a file and a directory THEN they are 0600 and 0700."""
    made = tmp_path / "made"
    write = (
        f"import pathlib; p = pathlib.Path({str(made)!r}); p.mkdir(); "
        "(p / 'file').write_text('x')"
    )
    command = [sys.executable] + [
        part.replace("{write}", write) for part in ENTRY_POINTS[entry]
    ]
    subprocess.run(
        command,
        cwd=ROOT,
        env=process_env(tmp_path / "var"),
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert mode(made) == 0o700
    assert mode(made / "file") == 0o600


def test_importing_the_package_leaves_the_umask_alone():
    """Tests and tools that import the archive keep their own umask."""
    code = (
        "import os; os.umask(0o022); import mailarchive.celery, mailarchive.settings; "
        "print(oct(os.umask(0o022)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**process_env(Path(tempfile.mkdtemp())), "DJANGO_SETTINGS_MODULE": ""},
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "0o22"


def test_a_batch_of_stored_messages_is_as_private_as_one(db):
    """GIVEN a process with the usual umask 022 WHEN a batch is stored (as
    ingest does) THEN its files and new directories are private too."""
    import os

    from mailarchive.storage import blobs_put

    previous = os.umask(0o022)
    try:
        stored = blobs_put("raw", [b"batch mail one " * 7, b"batch mail two " * 7])
    finally:
        os.umask(previous)
    root = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    for name, _digest in stored:
        assert mode(root / name) == 0o600
        for parent in list((root / name).parents)[:2]:
            assert mode(parent) == 0o700, parent
