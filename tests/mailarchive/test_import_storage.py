"""Import uploads kept in the storage, so that web and workers may be on
different machines: an S3-compatible object store shared by both."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mailarchive.imports import (
    import_upload_accept,
    import_upload_missing,
    import_uploads_sweep,
    mbox_import_run,
)
from mailarchive.models import Attachment, ImportJob, Message
from mailarchive.services import message_ingest
from mailarchive.storage import blob_read, upload_save
from spaces.models import Level
from tests.factories import PASSWORD, SpaceFactory, SpacePermissionFactory, UserFactory
from tests.mailarchive.test_import import mbox_of, message
from tests.mailarchive.test_index import large_attachment_message
from tests.operations.helpers import PROJECT_DIR, child_env, closed_port


@pytest.fixture
def in_bucket(settings, object_store):
    """This test's storage is a fresh bucket of the object store."""
    bucket = object_store.new_bucket()
    settings.STORAGES = object_store.storages(bucket, settings.STORAGES)
    return bucket


@pytest.mark.django_db
def test_an_upload_in_the_object_store_is_imported_then_removed(
    actors, object_store, in_bucket
):
    content = mbox_of(message("one"), message("two"))
    job = import_upload_accept(
        space=actors.space,
        upload=SimpleUploadedFile("two.mbox", content),
        requested_by=None,
    )
    assert object_store.names(in_bucket, "imports/") == [job.path]
    assert job.file_size == len(content)
    job = mbox_import_run(job.pk)
    assert (job.status, job.imported) == ("done", 2), job.error
    assert object_store.names(in_bucket, "imports/") == []
    assert len(object_store.names(in_bucket, "raw/")) == 2
    # The local copy the worker read is gone too.
    temporary = Path(django_settings.FILE_UPLOAD_TEMP_DIR)
    assert not list(temporary.glob("import-*.copy"))


@pytest.mark.django_db
def test_the_sweep_removes_uploads_from_the_object_store(
    actors, object_store, in_bucket
):
    """GIVEN a failed import's upload and an object no import refers to
    WHEN the sweep runs past the retention THEN both are deleted, the
    import says its file is gone, and nothing else in the bucket is touched."""
    job = import_upload_accept(
        space=actors.space,
        upload=SimpleUploadedFile("a.mbox", mbox_of(message("a"))),
        requested_by=None,
    )
    ImportJob.objects.filter(pk=job.pk).update(
        status="failed", finished_at=timezone.now()
    )
    stray = upload_save(SimpleUploadedFile("stray", b"left by a crash"))
    object_store.client().put_object(Bucket=in_bucket, Key="raw/keep.eml", Body=b"x")
    assert import_uploads_sweep() == 0
    later = timezone.now() + timedelta(
        days=django_settings.MAILARCHIVE_UPLOAD_RETENTION_DAYS, hours=1
    )
    assert import_uploads_sweep(now=later) == 2
    assert object_store.names(in_bucket) == ["raw/keep.eml"]
    job.refresh_from_db()
    assert import_upload_missing(job)
    assert stray not in object_store.names(in_bucket)


@pytest.mark.django_db
def test_a_missing_upload_fails_the_import_clearly(actors, object_store, in_bucket):
    job = import_upload_accept(
        space=actors.space,
        upload=SimpleUploadedFile("a.mbox", mbox_of(message("a"))),
        requested_by=None,
    )
    object_store.client().delete_object(Bucket=in_bucket, Key=job.path)
    job = mbox_import_run(job.pk)
    assert (job.status, job.error) == (
        "failed",
        "file not found: it was moved or deleted",
    )


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the web process stopped:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"the web process did not answer:\n{log.read_text()}")


def _log_in(session: requests.Session, base: str, username: str) -> None:
    session.get(f"{base}/login/", timeout=30)
    answer = session.post(
        f"{base}/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text


def _upload(session: requests.Session, url: str, name: str, content: bytes):
    return session.post(
        url,
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        files={"file": (name, content, "application/mbox")},
        timeout=60,
        allow_redirects=False,
    )


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.django_db(transaction=True)
def test_web_and_worker_with_their_own_data_dirs(object_store, tmp_path):
    """GIVEN a web process (gunicorn) and a Celery worker, each with its own
    MAILARCHIVE_DATA_DIR, sharing only the database, Redis and the object store
    WHEN a space admin uploads an mbox to the web process
    THEN the file is in the object store (not on the web machine), the worker
    imports it from there, and the upload is removed once done; an upload past
    the limit is still refused as it streams in."""
    space = SpaceFactory(key="MULTI")
    admin = UserFactory(username=f"admin{uuid.uuid4().hex[:6]}")
    SpacePermissionFactory(space=space, user=admin, level=Level.ADMIN)
    bucket = object_store.new_bucket()
    queue = f"test-import-{uuid.uuid4().hex[:8]}"
    limit = 256 * 1024
    shared = {
        **object_store.environment(bucket),
        "MAILARCHIVE_TEST_QUEUE": queue,
        "MAILARCHIVE_MAX_UPLOAD_BYTES": str(limit),
    }
    web_dir, worker_dir = tmp_path / "web-machine", tmp_path / "worker-machine"
    port = closed_port()
    web_log = tmp_path / "web.log"
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--error-logfile",
            str(web_log),
            "mailarchive.wsgi",
        ],
        env=child_env(MAILARCHIVE_TEST_DATA_DIR=str(web_dir), **shared),
        cwd=PROJECT_DIR,
    )
    worker = None
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", web, web_log)
        ready = requests.get(f"{base}/readyz", timeout=30)
        assert ready.json()["checks"]["storage"] == "ok", ready.text
        session = requests.Session()
        _log_in(session, base, admin.username)
        url = base + reverse("mbox:import-upload", kwargs={"key": space.key})
        content = mbox_of(*(message(f"multi{i}") for i in range(5)))

        answer = _upload(session, url, "team.mbox", content)

        assert answer.status_code == 302, answer.text
        job = ImportJob.objects.get(space=space)
        assert job.status == "queued"
        assert object_store.names(bucket, "imports/") == [job.path]
        stored = object_store.client().get_object(Bucket=bucket, Key=job.path)
        assert stored["Body"].read() == content
        assert not [f for f in _files(web_dir) if f.startswith(("store", "imports"))]

        refused = _upload(session, url, "big.mbox", b"x" * (limit + 100_000))
        assert refused.status_code == 413
        assert ImportJob.objects.filter(space=space).count() == 1
        assert object_store.names(bucket, "imports/") == [job.path]

        worker_log = tmp_path / "worker.log"
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mailarchive",
                "worker",
                "--pool=solo",
                "--queues",
                queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            env=child_env(MAILARCHIVE_TEST_DATA_DIR=str(worker_dir), **shared),
            cwd=PROJECT_DIR,
            stdout=worker_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while job.status not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
            job.refresh_from_db()
        assert job.status == "done", (
            f"{job.status} {job.error}\n{worker_log.read_text()}"
        )
    finally:
        for process in (worker, web):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)
    assert job.imported == 5
    assert Message.objects.filter(space=space).count() == 5
    assert object_store.names(bucket, "imports/") == []
    assert len(object_store.names(bucket, "raw/")) == 5
    assert re.fullmatch(r"imports/[0-9a-f]{32}\.upload", job.path)
    # Neither machine kept mail or an upload on its own disk.
    for machine in (web_dir, worker_dir):
        kept = [
            f for f in _files(machine) if f.startswith(("store", "imports", "upload"))
        ]
        assert kept == [], (machine, kept)


@pytest.mark.django_db
def test_the_copy_from_the_object_store_keeps_the_lease(
    actors, object_store, in_bucket, monkeypatch
):
    from mailarchive import storage

    monkeypatch.setattr(storage, "COPY_CHUNK", 1024)
    monkeypatch.setattr(storage, "HEARTBEAT_BYTES", 4096)
    content = mbox_of(*(message(f"m{i}", body="y" * 2000 + "\n") for i in range(10)))
    name = upload_save(SimpleUploadedFile("a.mbox", content))
    beats = []
    with storage.upload_local_file(name, heartbeat=lambda: beats.append(1)) as path:
        assert path.read_bytes() == content
        assert path.parent == Path(django_settings.FILE_UPLOAD_TEMP_DIR)
    assert len(beats) == len(content) // 4096
    assert not path.exists()


@pytest.mark.django_db
def test_a_large_message_in_the_object_store_is_parsed_from_a_local_copy(
    actors, object_store, in_bucket
):
    """GIVEN storage in an object store and a message with a 3 MB attachment
    WHEN it is archived
    THEN the parse reads a local copy, the attachment is stored in the bucket
    from its spool file, and neither copy is left behind."""
    raw, content = large_attachment_message()
    result = message_ingest(space_id=actors.space.pk, raw=raw, source="poll")
    assert result.parseable
    [attachment] = Attachment.objects.filter(message_id=result.message_pk)
    assert object_store.names(in_bucket, "att/") == [attachment.blob_name]
    assert blob_read(attachment.blob_name) == content
    assert blob_read(Message.objects.get(pk=result.message_pk).raw_name) == raw
    temporary = Path(django_settings.FILE_UPLOAD_TEMP_DIR)
    assert not list(temporary.glob("index-*"))
