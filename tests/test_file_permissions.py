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
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from mailarchive.imports import import_upload_accept, upload_dir
from mailarchive.storage import blob_put
from tests.mailarchive.test_import import mbox_of, message

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_a_process(data_dir: Path) -> None:
    """Load the settings in a new process, as every command and server does,
    with the defaults of one machine (SQLite, the file broker, a generated key)
    and the database opened."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "MAILARCHIVE_"))
    }
    env |= {"MAILARCHIVE_DATA_DIR": str(data_dir), "MAILARCHIVE_HTTPS": "off"}
    code = (
        "import django; django.setup();"
        "from django.db import connection; connection.ensure_connection();"
        "connection.cursor().execute('create table if not exists t (x int)')"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "mailarchive.settings"},
        check=True,
        timeout=120,
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
    assert mode(Path(job.path)) == 0o600
    assert mode(upload_dir()) == 0o700


def test_the_process_creates_private_files(tmp_path):
    """The umask the settings set: whatever a library creates is private."""
    created = tmp_path / "made-by-a-library"
    created.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    assert mode(created) == 0o600
    assert mode(folder) == 0o700
