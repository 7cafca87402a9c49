"""Writing a batch of objects to local storage: durable, once, and clean on failure."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from mailarchive.storage import StorageError, blob_read, blobs_put
from tests.full_storage import FullDiskStorage

pytestmark = pytest.mark.django_db


def _local_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def local(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mailarchive.storage.DurableFileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "store")},
        },
    }
    return tmp_path / "store"


def test_a_batch_is_stored_whole_private_and_each_content_once(local):
    datas = [f"message {i}\r\n".encode() * (i + 1) for i in range(40)]
    # The same bytes twice in one batch (a message delivered twice) and an
    # object stored by an earlier batch.
    blobs_put("raw", datas[:5])
    named = blobs_put("raw", [*datas, datas[3], datas[7]])
    assert [sha for _n, sha in named] == [
        hashlib.sha256(d).hexdigest() for d in [*datas, datas[3], datas[7]]
    ]
    for (name, _sha), data in zip(named, [*datas, datas[3], datas[7]], strict=True):
        assert blob_read(name) == data
    files = _local_files(local)
    assert len(files) == len(datas)
    assert not [f for f in files if f.name.endswith(".tmp")]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_a_write_that_fails_leaves_no_temporary_file_and_no_object(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.full_storage.FullDiskStorage",
            "OPTIONS": {"location": str(tmp_path / "store")},
        },
    }
    datas = [bytes([i]) * 1000 for i in range(30)]
    FullDiskStorage.room = 10_500  # room for ten of them
    with pytest.raises(StorageError) as caught:
        blobs_put("raw", datas)
    assert "No space left on device" in str(caught.value)
    assert _local_files(tmp_path / "store") == []
    # Room again: the same batch goes through.
    FullDiskStorage.room = 10**9
    named = blobs_put("raw", datas)
    assert [blob_read(name) for name, _sha in named] == datas
