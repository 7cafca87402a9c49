"""Disk: the upload limit while a file streams in, and sweeping uploaded files.

An upload over ``MAILARCHIVE_MAX_UPLOAD_BYTES`` is refused with a clear
message and never written beyond the limit; an uploaded file stays only as
long as an import may still read it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test.client import (
    BOUNDARY,
    MULTIPART_CONTENT,
    FakePayload,
    encode_multipart,
)
from django.urls import reverse
from django.utils import timezone

from mailarchive.imports import (
    import_job_create,
    import_job_rerunnable,
    import_upload_accept,
    import_uploads_sweep,
    mbox_import_run,
)
from mailarchive.imports import jobs as import_jobs
from mailarchive.imports.cleanup import STRAY_GRACE
from mailarchive.models import ImportJob
from mailarchive.storage import upload_exists
from tests.conftest import client_for
from tests.mailarchive.test_import import mbox_of, message

LIMIT = 4096


@pytest.fixture(autouse=True)
def own_data_dir(settings, tmp_path):
    """A data dir and storage of this test's own, so that files of other tests
    do not count."""
    settings.DATA_DIR = tmp_path / "data"
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path / "data" / "upload-tmp"
    settings.FILE_UPLOAD_TEMP_DIR.mkdir(parents=True)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mailarchive.storage.DurableFileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "data" / "store")},
        },
    }


def upload_dir() -> Path:
    """Where the test's local storage keeps uploads."""
    return Path(django_settings.STORAGES["default"]["OPTIONS"]["location"]) / "imports"


def stored(job: ImportJob) -> Path:
    return upload_dir().parent / job.path


@pytest.fixture
def small_limit(settings):
    settings.MAILARCHIVE_MAX_UPLOAD_BYTES = LIMIT
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to disk
    return LIMIT


def upload_url(actors) -> str:
    return reverse("mbox:import-upload", kwargs={"key": actors.space.key})


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.fixture
def written(monkeypatch) -> list[int]:
    """The sizes of the chunks Django's temporary-file handler wrote."""
    sizes: list[int] = []
    real = TemporaryFileUploadHandler.receive_data_chunk

    def spy(self, raw_data, start):
        sizes.append(len(raw_data))
        return real(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", spy)
    return sizes


def test_upload_over_the_limit_is_refused_while_it_streams(
    actors, small_limit, written, django_capture_on_commit_callbacks
):
    """GIVEN an upload limit WHEN a larger file is uploaded THEN the answer is
    413 with a message naming the limit, no import is recorded, no more than
    the limit reached the disk, and nothing is left there."""
    content = mbox_of(*(message(f"m{i}", body="x" * 200 + "\n") for i in range(40)))
    assert len(content) > 2 * LIMIT
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(actors, "admin").post(
            upload_url(actors),
            {"file": SimpleUploadedFile("big.mbox", content)},
        )
    assert response.status_code == 413
    page = response.content.decode()
    assert "larger than the upload limit of 4.0" in page
    assert "This field is required" not in page
    assert not ImportJob.objects.exists()
    assert sum(written) <= LIMIT
    assert files_under(upload_dir()) == []
    assert files_under(Path(django_settings.FILE_UPLOAD_TEMP_DIR)) == []


def test_upload_declaring_a_body_past_the_limit_is_not_read(actors, small_limit):
    """GIVEN a request whose Content-Length is far past the limit WHEN it
    arrives THEN it is refused as its file begins, without reading the rest."""
    content = b"x" * (LIMIT * 200)
    body = encode_multipart(
        BOUNDARY, {"file": SimpleUploadedFile("huge.mbox", content)}
    )

    class Counting(FakePayload):
        read_bytes = 0

        def read(self, size=-1):
            data = super().read(size)
            Counting.read_bytes += len(data)
            return data

    client = client_for(actors, "admin")
    response = client.generic(
        "POST",
        upload_url(actors),
        data=body,
        content_type=MULTIPART_CONTENT,
        **{"wsgi.input": Counting(body)},
    )
    assert response.status_code == 413
    assert Counting.read_bytes < len(body) // 2
    assert not ImportJob.objects.exists()


def test_upload_at_the_limit_is_accepted(
    actors, settings, django_capture_on_commit_callbacks
):
    content = mbox_of(message("fits"))
    settings.MAILARCHIVE_MAX_UPLOAD_BYTES = len(content)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    response = client_for(actors, "admin").post(
        upload_url(actors), {"file": SimpleUploadedFile("fits.mbox", content)}
    )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert stored(job).read_bytes() == content
    assert files_under(Path(django_settings.FILE_UPLOAD_TEMP_DIR)) == []


def test_the_form_names_the_limit_and_the_page_checks_it_first(actors, small_limit):
    page = client_for(actors, "admin").get(
        reverse("mbox:import-list", kwargs={"key": actors.space.key})
    )
    text = page.content.decode()
    assert f'data-max-bytes="{LIMIT}"' in text
    assert "at most 4.0" in text
    assert "js/imports.js" in text


def test_uploaded_file_is_removed_when_its_import_cannot_be_recorded(
    actors, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(import_jobs, "import_job_create", broken)
    upload = SimpleUploadedFile("a.mbox", mbox_of(message("a")))
    with pytest.raises(RuntimeError):
        import_upload_accept(space=actors.space, upload=upload, requested_by=None)
    assert files_under(upload_dir()) == []


def uploaded_job(actors, name: str = "a") -> ImportJob:
    upload = SimpleUploadedFile(f"{name}.mbox", mbox_of(message(name)))
    return import_upload_accept(space=actors.space, upload=upload, requested_by=None)


def age(path: Path, by: timedelta) -> None:
    stamp = (timezone.now() - by).timestamp()
    os.utime(path, (stamp, stamp))


@pytest.fixture
def later():
    """An instant past the retention of failed uploads."""
    days = django_settings.MAILARCHIVE_UPLOAD_RETENTION_DAYS
    return timezone.now() + timedelta(days=days, hours=1)


def test_a_done_import_keeps_no_file(actors):
    job = mbox_import_run(uploaded_job(actors).pk)
    assert job.status == "done"
    assert not stored(job).exists()
    assert files_under(upload_dir()) == []


def test_a_file_left_by_a_crash_after_the_import_finished_is_swept(actors):
    job = uploaded_job(actors)
    ImportJob.objects.filter(pk=job.pk).update(status="done")
    assert import_uploads_sweep() == 1
    assert not stored(job).exists()
    assert import_uploads_sweep() == 0


def test_a_failed_upload_is_kept_for_a_rerun_then_removed(actors, later):
    """GIVEN an uploaded import that failed WHEN the sweep runs within the
    retention THEN the file stays and the import may run again; WHEN it runs
    after THEN the file is gone, the import is no longer offered again and its
    page says to upload the file again."""
    job = uploaded_job(actors)
    ImportJob.objects.filter(pk=job.pk).update(
        status="failed", finished_at=timezone.now(), error="truncated gzip file"
    )
    assert import_uploads_sweep() == 0
    assert stored(job).exists()
    job.refresh_from_db()
    assert import_job_rerunnable(job)
    assert import_uploads_sweep(now=later) == 1
    assert not stored(job).exists()
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "truncated gzip file")
    assert not import_job_rerunnable(job)
    page = client_for(actors, "admin").get(job.get_absolute_url()).content.decode()
    assert "The uploaded file is no longer kept" in page
    assert "Run the import again" not in page


def test_an_abandoned_import_is_marked_failed_and_its_file_removed(actors, later):
    job = uploaded_job(actors)
    assert import_uploads_sweep(now=later - timedelta(hours=2)) == 0
    assert import_uploads_sweep(now=later) == 1
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("abandoned")
    assert job.finished_at is not None and job.lease_until is None
    assert not stored(job).exists()


def test_a_running_import_is_left_alone(actors, later):
    job = uploaded_job(actors)
    ImportJob.objects.filter(pk=job.pk).update(
        status="importing", lease_until=later + timedelta(minutes=5)
    )
    assert import_uploads_sweep(now=later) == 0
    assert stored(job).exists()


def test_the_sweep_holds_the_lease_so_no_run_starts_meanwhile(
    actors, later, monkeypatch
):
    """GIVEN a failed upload past its retention WHEN a run of it is asked for
    while the sweep removes the file THEN the run is refused (the sweep holds
    the import's lease) and the job is left failed, not running."""
    from mailarchive.imports import cleanup

    job = uploaded_job(actors)
    ImportJob.objects.filter(pk=job.pk).update(
        status="failed", finished_at=timezone.now()
    )
    attempts = []
    real_remove = cleanup.upload_delete

    def remove_while_a_run_starts(name):
        attempts.append(mbox_import_run(job.pk).status)
        return real_remove(name)

    monkeypatch.setattr(cleanup, "upload_delete", remove_while_a_run_starts)
    assert import_uploads_sweep(now=later) == 1
    assert attempts == ["failed"]
    job.refresh_from_db()
    assert job.attempts == 0


def test_files_no_import_refers_to_are_swept_after_a_day(actors, tmp_path):
    upload_dir().mkdir(parents=True, exist_ok=True)
    stray = upload_dir() / "stray.upload"
    stray.write_bytes(b"left by a crash")
    fresh = upload_dir() / "fresh.upload"
    fresh.write_bytes(b"being accepted right now")
    temporary = Path(django_settings.FILE_UPLOAD_TEMP_DIR) / "tmpabc.upload.mbox"
    temporary.write_bytes(b"an upload cut short")
    job = uploaded_job(actors)
    for path in (stray, temporary, stored(job)):
        age(path, STRAY_GRACE + timedelta(hours=1))
    assert import_uploads_sweep() == 2
    assert not stray.exists() and not temporary.exists()
    assert fresh.exists() and stored(job).exists()


def test_files_outside_the_upload_directory_are_never_removed(actors, tmp_path, later):
    """A server-side or command-line import, or a row pointing anywhere, never
    makes the sweep delete a file outside the upload directories."""
    outside = tmp_path / "precious.mbox"
    outside.write_bytes(mbox_of(message("keep")))
    job = import_job_create(
        space=actors.space,
        path=outside,
        file_name="precious.mbox",
        origin="upload",
        requested_by=None,
        delete_file_when_done=True,
    )
    ImportJob.objects.filter(pk=job.pk).update(status="done")
    server = import_job_create(
        space=actors.space,
        path=outside,
        file_name="precious.mbox",
        origin="server",
        requested_by=None,
    )
    ImportJob.objects.filter(pk=server.pk).update(
        status="failed", finished_at=timezone.now()
    )
    import_uploads_sweep(now=later)
    assert outside.exists()


def test_an_upload_an_earlier_version_kept_in_the_data_dir_is_still_imported(
    actors, later
):
    """GIVEN an upload recorded before uploads went to the storage (its file
    under DATA_DIR/imports/) WHEN its import runs THEN it is imported and the
    file removed; a stray file there is swept like any other."""
    legacy = Path(django_settings.DATA_DIR) / "imports"
    legacy.mkdir(parents=True)
    path = legacy / "0123abcd.upload"
    path.write_bytes(mbox_of(message("old"), message("older")))
    stray = legacy / "stray.upload"
    stray.write_bytes(b"left by a crash")
    age(stray, STRAY_GRACE + timedelta(hours=1))
    job = import_job_create(
        space=actors.space,
        path=path,
        file_name="old.mbox",
        origin="upload",
        requested_by=None,
        delete_file_when_done=True,
    )
    assert upload_exists(job.path)
    job = mbox_import_run(job.pk)
    assert (job.status, job.imported) == ("done", 2)
    assert not path.exists()
    assert import_uploads_sweep() == 1
    assert not stray.exists()


def test_the_sweep_runs_hourly_from_beat():
    entry = django_settings.CELERY_BEAT_SCHEDULE["sweep-import-uploads"]
    assert entry["task"] == "mailarchive.tasks.import_uploads_sweep_task"
    assert entry["schedule"] <= 3600


def test_the_spool_of_a_killed_index_run_is_swept_after_a_day(actors):
    """GIVEN spool directories of index runs, one a day old (its process was
    killed outright) and one in use
    WHEN the sweep runs
    THEN only the old one is removed, with what it held."""
    temporary = Path(django_settings.FILE_UPLOAD_TEMP_DIR)
    old, running = temporary / "index-old", temporary / "index-running"
    for directory in (old, running):
        directory.mkdir()
        (directory / "part-1").write_bytes(b"a decoded attachment")
    age(old, STRAY_GRACE + timedelta(hours=1))
    assert import_uploads_sweep() == 1
    assert not old.exists()
    assert (running / "part-1").exists()
