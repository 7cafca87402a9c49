"""The import service: every message once, bad files in clear words, resumable."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.utils import timezone

from mailarchive import imports
from mailarchive.exports import mbox_export_chunks, messages_for_export
from mailarchive.imports import (
    ImportPathError,
    import_dir_files,
    import_dir_resolve,
    import_job_create,
    import_job_rerunnable,
    mbox_import_run,
)
from mailarchive.imports import run as import_run
from mailarchive.mbox import iter_mbox
from mailarchive.models import ImportJob, Message
from mailarchive.storage import blob_read, upload_exists, upload_save
from spaces.models import Space
from tests.factories import PersonalSpaceFactory, SpaceFactory

# MimeKit's own tests (MimeParserTests) expect these counts for the two corpus
# files that come without a summary; the other files list their messages in
# ``*-summary.txt``, one "From " line per message.
COUNTS_WITHOUT_SUMMARY = {"simple.mbox.txt": 3, "unmunged.mbox.txt": 4}


def corpus_mboxes(corpus: Path) -> list[Path]:
    found = sorted((corpus / "mimekit" / "mbox").glob("*.mbox.txt"))
    assert found, f"no mbox files in {corpus}/mimekit/mbox"
    return found


def summary_of(mbox: Path) -> Path:
    return mbox.with_name(mbox.name.removesuffix(".mbox.txt") + "-summary.txt")


def expected_count(mbox: Path) -> int:
    summary = summary_of(mbox)
    if summary.exists():
        lines = summary.read_text(encoding="utf-8").splitlines()
        return sum(1 for line in lines if line.startswith("From "))
    return COUNTS_WITHOUT_SUMMARY[mbox.name]


def expected_subjects(mbox: Path) -> list[str]:
    lines = summary_of(mbox).read_text(encoding="utf-8").splitlines()
    subjects = [
        line[len("Subject: ") :] for line in lines if line.startswith("Subject: ")
    ]
    return sorted(folded(subject) for subject in subjects)


def folded(text: str) -> str:
    """Whitespace runs as one space: the summaries keep folding, the archive not."""
    return " ".join(text.split())


def run_import(space: Space, path: Path, origin: str = "command") -> ImportJob:
    job = import_job_create(
        space=space, path=path, file_name=path.name, origin=origin, requested_by=None
    )
    return mbox_import_run(job.pk)


def archived_raws(space: Space) -> list[bytes]:
    names = Message.objects.filter(space=space).values_list("raw_name", flat=True)
    return [blob_read(name) for name in names]


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def message(subject: str, body: str = "Hello.\n", msgid: str | None = None) -> bytes:
    msgid = msgid or f"{sha(subject.encode())[:16]}@example.com"
    return (
        f"From: Alice <alice@example.com>\nTo: team@example.com\n"
        f"Subject: {subject}\nDate: Fri, 01 Mar 2024 09:00:00 +0000\n"
        f"Message-ID: <{msgid}>\n\n{body}"
    ).encode()


def mbox_of(*raws: bytes) -> bytes:
    out = io.BytesIO()
    for raw in raws:
        quoted = b"\n".join(
            b">" + line if line.lstrip(b">").startswith(b"From ") else line
            for line in raw.split(b"\n")
        )
        out.write(b"From alice@example.com Fri Mar  1 09:00:00 2024\n" + quoted + b"\n")
    return out.getvalue()


@pytest.fixture
def space(db) -> Space:
    return SpaceFactory(key="IMPORT")


def test_every_corpus_mbox_imports_every_message_once(space, corpus_dir):
    """GIVEN the corpus mbox files WHEN each is imported THEN the archive holds
    each message of each file once, byte for byte as the reader yields it."""
    for mbox in corpus_mboxes(corpus_dir):
        target = SpaceFactory()
        job = run_import(target, mbox)
        count = expected_count(mbox)
        assert job.status == ImportJob.Status.DONE, (mbox.name, job.error)
        assert (job.total, job.processed, job.imported) == (count, count, count), (
            mbox.name
        )
        assert (job.duplicates, job.failed, job.errors) == (0, 0, [])
        assert Message.objects.filter(space=target).count() == count
        with mbox.open("rb") as fp:
            file_raws = sorted(sha(entry.raw) for entry in iter_mbox(fp))
        assert sorted(sha(raw) for raw in archived_raws(target)) == file_raws
        if summary_of(mbox).exists():
            subjects = Message.objects.filter(space=target).values_list(
                "subject", flat=True
            )
            assert sorted(map(folded, subjects)) == expected_subjects(mbox)


def test_export_then_reimport_adds_nothing_and_is_byte_identical(
    space, corpus_dir, tmp_path
):
    """GIVEN a space with every corpus mbox imported WHEN it is exported and the
    export imported into the same space and into a new one THEN the first adds
    nothing and the second holds the same raw bytes."""
    total = 0
    for mbox in corpus_mboxes(corpus_dir):
        total += run_import(space, mbox).imported
    export_file = tmp_path / "export.mbox"
    export_file.write_bytes(b"".join(mbox_export_chunks(messages_for_export(space))))

    again = run_import(space, export_file)
    assert (again.imported, again.duplicates, again.failed) == (0, total, 0)
    assert Message.objects.filter(space=space).count() == total

    fresh = SpaceFactory()
    assert run_import(fresh, export_file).imported == total
    assert sorted(map(sha, archived_raws(fresh))) == sorted(
        map(sha, archived_raws(space))
    )


def test_importing_twice_adds_nothing_and_reports_duplicates(space, corpus_dir):
    mbox = corpus_dir / "mimekit" / "mbox" / "issue1189.mbox.txt"
    first = run_import(space, mbox)
    second = run_import(space, mbox)
    assert first.imported == 4
    assert (second.imported, second.duplicates, second.status) == (0, 4, "done")
    assert Message.objects.filter(space=space).count() == 4


def test_gzip_file_imports_like_the_plain_one(space, corpus_dir, tmp_path):
    mbox = corpus_dir / "mimekit" / "mbox" / "content-length.mbox.txt"
    packed = tmp_path / "archive.bin"  # recognised by its content, not its name
    packed.write_bytes(gzip.compress(mbox.read_bytes()))
    job = run_import(space, packed)
    assert job.status == "done", job.error
    assert job.imported == expected_count(mbox)


def test_single_eml_file_is_one_message(space, corpus_dir):
    eml = corpus_dir / "mimekit" / "messages" / "simple-multipart.eml"
    job = run_import(space, eml)
    assert (job.status, job.total, job.imported) == ("done", 1, 1)
    (raw,) = archived_raws(space)
    assert raw == eml.read_bytes().removeprefix(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "empty file", id="empty"),
        pytest.param(b"%PDF-1.4\nnot mail at all\n", "not an mbox", id="not-mbox"),
        pytest.param(
            gzip.compress(mbox_of(message("a"), message("b")) * 50)[:-40],
            "truncated gzip file",
            id="truncated-gzip",
        ),
    ],
)
def test_bad_file_fails_with_clear_words_and_stores_nothing(
    space, tmp_path, content, reason
):
    path = tmp_path / "bad.mbox"
    path.write_bytes(content)
    job = run_import(space, path)
    assert job.status == ImportJob.Status.FAILED
    assert reason in job.error
    assert (job.imported, job.processed) == (0, 0)
    assert not Message.objects.filter(space=space).exists()
    assert job.lease_until is None and job.finished_at is not None


def test_unreadable_file_says_permission_denied(space, tmp_path, monkeypatch):
    """A fake for a fault a root process cannot get on demand: the suite runs as
    root, which may read any file, so opening the file is made to raise the
    PermissionError an unprivileged worker gets."""

    def denied(path: Path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(import_run, "open_mbox_source", denied)
    path = tmp_path / "secret.mbox"
    path.write_bytes(mbox_of(message("a")))
    job = run_import(space, path)
    assert job.status == ImportJob.Status.FAILED
    assert "permission denied" in job.error


def test_missing_file_says_so(space, tmp_path):
    path = tmp_path / "gone.mbox"
    path.write_bytes(mbox_of(message("a")))
    job = import_job_create(
        space=space,
        path=path,
        file_name="gone.mbox",
        origin="upload",
        requested_by=None,
    )
    path.unlink()
    job = mbox_import_run(job.pk)
    assert job.status == "failed"
    assert "file not found" in job.error


def test_unparseable_message_is_counted_and_archived_raw(space, tmp_path):
    garbage = b"\x00\x01 no header here at all\n\x02\x03\n"
    path = tmp_path / "mixed.mbox"
    path.write_bytes(mbox_of(message("fine"), garbage))
    job = run_import(space, path)
    assert (job.status, job.imported, job.failed_to_parse) == ("done", 2, 1)
    broken = Message.objects.get(space=space, parseable=False)
    assert blob_read(broken.raw_name) == garbage


def test_oversized_message_is_listed_with_its_offset(space, tmp_path, settings):
    settings.MAILARCHIVE_MAX_MESSAGE_BYTES = 2000
    small = message("small")
    big = message("big", body="x" * 70 + "\n" * 100 + "y" * 3000 + "\n")
    content = mbox_of(small, big, message("after"))
    path = tmp_path / "big.mbox"
    path.write_bytes(content)
    job = run_import(space, path)
    assert (job.status, job.total, job.processed) == ("done", 3, 3)
    assert (job.imported, job.failed) == (2, 1)
    (error,) = job.errors
    assert error["number"] == 2
    assert error["offset"] == content.index(b"From ", 1)
    assert "larger than the limit" in error["reason"]


def test_an_error_storing_one_message_does_not_stop_the_import(
    space, tmp_path, monkeypatch
):
    real = import_run.messages_secure

    def flaky(*, space_id, raws, source):
        if any(b"Subject: poison" in raw for raw in raws):
            raise ValueError("cannot store this one")
        return real(space_id=space_id, raws=raws, source=source)

    monkeypatch.setattr(import_run, "messages_secure", flaky)
    path = tmp_path / "poison.mbox"
    path.write_bytes(mbox_of(message("a"), message("poison"), message("c")))
    job = run_import(space, path)
    assert (job.status, job.imported, job.failed) == ("done", 2, 1)
    assert "cannot store this one" in job.errors[0]["reason"]


def test_outage_mid_import_fails_with_exact_counts_and_rerun_continues(
    space, tmp_path, monkeypatch
):
    """GIVEN an import in batches of 3 WHEN the database fails at message 8
    THEN the job fails and its counters say exactly what was committed (two
    batches); WHEN it is run again THEN it continues after its checkpoint and
    ends with every message once and no duplicate counted."""
    monkeypatch.setattr(import_run, "BATCH_MESSAGES", 3)
    real = import_run.messages_secure
    calls = {"n": 0}

    def failing(*, space_id, raws, source):
        calls["n"] += len(raws)
        if calls["n"] >= 8:
            raise OperationalError("server closed the connection unexpectedly")
        return real(space_id=space_id, raws=raws, source=source)

    monkeypatch.setattr(import_run, "messages_secure", failing)
    path = tmp_path / "ten.mbox"
    path.write_bytes(mbox_of(*(message(f"m{i}") for i in range(10))))
    job = run_import(space, path)
    assert job.status == ImportJob.Status.FAILED
    assert "database was unavailable" in job.error
    assert (job.checkpoint, job.processed, job.imported) == (6, 6, 6)
    assert Message.objects.filter(space=space).count() == 6
    assert import_job_rerunnable(job)

    monkeypatch.setattr(import_run, "messages_secure", real)
    job = mbox_import_run(job.pk)
    assert job.status == ImportJob.Status.DONE
    assert (job.processed, job.imported, job.duplicates) == (10, 10, 0)
    assert job.attempts == 2
    assert Message.objects.filter(space=space).count() == 10


def test_a_full_disk_stops_the_import_with_a_storage_error_and_rerun_continues(
    space, tmp_path, settings, monkeypatch
):
    """GIVEN batches of 3 and room on the disk for the first batch only WHEN
    the file is imported THEN the job fails saying the storage failed, keeps
    exactly the first batch and no temporary file; WHEN there is room again
    THEN a re-run imports the rest once."""
    from tests.full_storage import FullDiskStorage

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.full_storage.FullDiskStorage",
            "OPTIONS": {"location": str(tmp_path / "store")},
        },
    }
    monkeypatch.setattr(import_run, "BATCH_MESSAGES", 3)
    raws = [message(f"full {i}") for i in range(7)]
    path = tmp_path / "seven.mbox"
    path.write_bytes(mbox_of(*raws))
    FullDiskStorage.room = sum(len(entry.raw) for entry in iter_mbox_of(path)[:3])

    job = run_import(space, path)

    assert job.status == ImportJob.Status.FAILED
    assert "storage failed" in job.error and "No space left on device" in job.error
    assert (job.checkpoint, job.imported, job.failed) == (3, 3, 0)
    assert Message.objects.filter(space=space).count() == 3
    assert not [p for p in (tmp_path / "store").rglob(".*.tmp")]

    FullDiskStorage.room = 10**9
    job = mbox_import_run(job.pk)
    assert (job.status, job.imported, job.duplicates) == ("done", 7, 0)


def iter_mbox_of(path: Path) -> list:
    with path.open("rb") as fp:
        return list(iter_mbox(fp))


def test_rerun_from_the_start_is_harmless(space, tmp_path):
    """Identity rules make running the whole file again correct: nothing new."""
    path = tmp_path / "three.mbox"
    path.write_bytes(mbox_of(*(message(f"m{i}") for i in range(3))))
    job = run_import(space, path)
    job.status, job.checkpoint = ImportJob.Status.FAILED, 0
    job.save()
    job = mbox_import_run(job.pk)
    assert (job.status, job.imported, job.duplicates) == ("done", 3, 3)
    assert Message.objects.filter(space=space).count() == 3


def test_a_job_held_by_another_worker_is_not_run_twice(space, tmp_path):
    path = tmp_path / "one.mbox"
    path.write_bytes(mbox_of(message("a")))
    job = import_job_create(
        space=space, path=path, file_name="one.mbox", origin="upload", requested_by=None
    )
    ImportJob.objects.filter(pk=job.pk).update(
        status="importing", lease_until=timezone.now() + imports.LEASE
    )
    job = mbox_import_run(job.pk)
    assert (job.status, job.attempts, job.processed) == ("importing", 0, 0)
    assert not import_job_rerunnable(job)
    assert not Message.objects.filter(space=space).exists()


def test_a_done_job_is_left_alone(space, tmp_path):
    path = tmp_path / "one.mbox"
    path.write_bytes(mbox_of(message("a")))
    job = run_import(space, path)
    again = mbox_import_run(job.pk)
    assert (again.attempts, again.imported, again.duplicates) == (1, 1, 0)


def test_a_file_that_changed_after_a_partial_import_is_refused(space, tmp_path):
    path = tmp_path / "grows.mbox"
    path.write_bytes(mbox_of(message("a"), message("b")))
    job = run_import(space, path)
    ImportJob.objects.filter(pk=job.pk).update(status="failed")
    path.write_bytes(mbox_of(message("a"), message("b"), message("c")))
    job = mbox_import_run(job.pk)
    assert job.status == "failed"
    assert "changed" in job.error


def test_personal_space_refuses_imports(db, tmp_path):
    from django.core.exceptions import ValidationError

    path = tmp_path / "one.mbox"
    path.write_bytes(mbox_of(message("a")))
    with pytest.raises(ValidationError, match="Personal spaces"):
        import_job_create(
            space=PersonalSpaceFactory(),
            path=path,
            file_name="one.mbox",
            origin="command",
            requested_by=None,
        )


def test_uploaded_file_is_deleted_when_done_and_kept_when_failed(space):
    good = upload_save(SimpleUploadedFile("good", mbox_of(message("a"))))
    bad = upload_save(SimpleUploadedFile("bad", b"nothing like mail\n"))
    for name in (good, bad):
        job = import_job_create(
            space=space,
            path=name,
            file_name=name,
            origin="upload",
            requested_by=None,
            delete_file_when_done=True,
            file_size=1,
        )
        mbox_import_run(job.pk)
    assert not upload_exists(good)
    assert upload_exists(bad)


def test_a_done_upload_never_deletes_a_file_outside_the_uploads(space, tmp_path):
    outside = tmp_path / "precious.mbox"
    outside.write_bytes(mbox_of(message("a")))
    job = import_job_create(
        space=space,
        path=outside,
        file_name=outside.name,
        origin="upload",
        requested_by=None,
        delete_file_when_done=True,
    )
    assert mbox_import_run(job.pk).status == "done"
    assert outside.exists()


@pytest.fixture
def import_dir(tmp_path, settings) -> Path:
    root = tmp_path / "drop"
    (root / "2023").mkdir(parents=True)
    (root / "a.mbox").write_bytes(mbox_of(message("a")))
    (root / "2023" / "b.mbox.gz").write_bytes(gzip.compress(mbox_of(message("b"))))
    (root / ".hidden").write_bytes(b"x")
    outside = tmp_path / "secret.mbox"
    outside.write_bytes(mbox_of(message("secret")))
    (root / "escape.mbox").symlink_to(outside)
    (root / "inside-link.mbox").symlink_to(root / "a.mbox")
    settings.MAILARCHIVE_IMPORT_DIR = str(root)
    return root


def test_import_dir_lists_files_inside_only(import_dir):
    names = [f.name for f in import_dir_files()]
    assert names == ["a.mbox", "inside-link.mbox", "2023/b.mbox.gz"]


@pytest.mark.parametrize(
    "name",
    [
        "../secret.mbox",
        "escape.mbox",
        "2023/../../secret.mbox",
        "/etc/passwd",
        "",
        "2023",
    ],
)
def test_import_dir_refuses_paths_leading_outside(import_dir, name):
    with pytest.raises(ImportPathError):
        import_dir_resolve(name)


def test_import_dir_unset_refuses_everything(settings):
    settings.MAILARCHIVE_IMPORT_DIR = ""
    assert import_dir_files() == []
    with pytest.raises(ImportPathError):
        import_dir_resolve("a.mbox")


def test_server_file_imports(space, import_dir, django_capture_on_commit_callbacks):
    job = imports.import_server_file_accept(
        space=space, name="2023/b.mbox.gz", requested_by=None
    )
    job = mbox_import_run(job.pk)
    assert (job.status, job.imported) == ("done", 1)
    assert (import_dir / "2023" / "b.mbox.gz").exists()


def test_crlf_mbox_keeps_crlf_messages(space, tmp_path):
    raws = [message(f"crlf {i}").replace(b"\n", b"\r\n") for i in range(3)]
    content = b"".join(
        b"From alice@example.com Fri Mar  1 09:00:00 2024\r\n" + raw + b"\r\n"
        for raw in raws
    )
    path = tmp_path / "windows.mbox"
    path.write_bytes(content)
    job = run_import(space, path)
    assert (job.status, job.imported) == ("done", 3)
    assert sorted(archived_raws(space)) == sorted(raws)
