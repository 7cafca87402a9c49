"""``manage.py importmbox``: output, progress, summary and exit status."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mailarchive.models import ImportJob, Message
from tests.conftest import database_url
from tests.factories import PersonalSpaceFactory, SpaceFactory
from tests.mailarchive.test_import import mbox_of, message

ROOT = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def space(db):
    return SpaceFactory(key="CMD")


@pytest.fixture
def three(tmp_path) -> Path:
    path = tmp_path / "three.mbox"
    path.write_bytes(mbox_of(message("a"), message("b"), message("c")))
    return path


def run(*args: str, stdout: io.StringIO | None = None) -> tuple[str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    call_command("importmbox", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_prints_plain_progress_and_the_summary(space, three):
    out, _err = run("--space", "CMD", str(three))
    lines = out.splitlines()
    assert lines[0].startswith("importing three.mbox into CMD")
    assert "3 messages in the file" in lines
    assert "3/3 messages, imported 3, duplicates 0, errors 0" in lines
    assert lines[-1] == "imported 3, duplicates 0, failed to parse 0, errors 0"
    assert "\r" not in out
    assert Message.objects.filter(space=space).count() == 3
    assert ImportJob.objects.get().origin == "command"


def test_progress_bar_on_a_terminal(space, three):
    out, _err = run("--space", "CMD", str(three), stdout=Terminal())
    assert "\r[" + "#" * 30 + "] 100%" in out
    assert (
        out.splitlines()[-1] == "imported 3, duplicates 0, failed to parse 0, errors 0"
    )


def test_second_import_reports_duplicates(space, three):
    run("--space", "CMD", str(three))
    out, _err = run("--space", "CMD", str(three))
    assert (
        out.splitlines()[-1] == "imported 0, duplicates 3, failed to parse 0, errors 0"
    )


def test_a_message_not_stored_means_exit_status_1(space, tmp_path, settings):
    settings.MAILARCHIVE_MAX_MESSAGE_BYTES = 1000
    path = tmp_path / "big.mbox"
    path.write_bytes(mbox_of(message("small"), message("big", body="x" * 2000 + "\n")))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 message") as raised:
        call_command("importmbox", "--space", "CMD", str(path), stdout=out, stderr=err)
    assert raised.value.returncode == 1
    assert "imported 1, duplicates 0, failed to parse 0, errors 1" in out.getvalue()
    assert "message 2 at offset" in err.getvalue()


def test_unparseable_message_is_archived_and_exit_status_stays_0(space, tmp_path):
    path = tmp_path / "odd.mbox"
    path.write_bytes(mbox_of(b"\x00\x01 not a message\n"))
    out, _err = run("--space", "CMD", str(path))
    assert (
        out.splitlines()[-1] == "imported 1, duplicates 0, failed to parse 1, errors 0"
    )


def test_bad_file_is_a_clear_error(space, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Dear diary,\n")
    with pytest.raises(CommandError, match="import failed: not an mbox file") as raised:
        run("--space", "CMD", str(path))
    assert raised.value.returncode == 1


@pytest.mark.parametrize(
    ("args", "message_text"),
    [
        (["--space", "NOPE", "x.mbox"], "no space with key NOPE"),
        (["--space", "CMD", "/nonexistent/x.mbox"], "file not found"),
        (["--space", "CMD"], "give --space KEY and PATH"),
        (["--resume", "999"], "no import with id 999"),
    ],
)
def test_wrong_arguments_are_explained(space, args, message_text):
    with pytest.raises(CommandError, match=message_text):
        run(*args)


def test_personal_space_is_refused(db, three):
    PersonalSpaceFactory(key="MINE")
    with pytest.raises(CommandError, match="Personal spaces do not hold mail"):
        run("--space", "MINE", str(three))


def test_resume_continues_a_failed_import(space, three):
    run("--space", "CMD", str(three))
    job = ImportJob.objects.get()
    # The state a crash leaves: the last batch (message 3) rolled back.
    Message.objects.get(subject="c").delete()
    ImportJob.objects.filter(pk=job.pk).update(
        status="failed", checkpoint=2, processed=2, imported=2
    )
    out, _err = run("--resume", str(job.pk))
    job.refresh_from_db()
    assert job.status == "done"
    assert job.attempts == 2
    assert (
        out.splitlines()[-1] == "imported 3, duplicates 0, failed to parse 0, errors 0"
    )


@pytest.mark.django_db(transaction=True)
def test_exit_status_of_the_real_command(tmp_path):
    """The command run as operators run it: a separate process on the same
    database; exit status 0 when all is stored, 1 when a message was not."""
    SpaceFactory(key="PROC")
    good = tmp_path / "good.mbox"
    good.write_bytes(mbox_of(message("p1"), message("p2")))
    big = tmp_path / "big.mbox"
    big.write_bytes(mbox_of(message("p3"), message("huge", body="x" * 5000 + "\n")))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_DATABASE_URL": database_url(),
        "MAILARCHIVE_MAX_MESSAGE_BYTES": "2000",
    }

    def importmbox(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "importmbox", "--space", "PROC", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    ok = importmbox(good)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == (
        "imported 2, duplicates 0, failed to parse 0, errors 0"
    )
    failed = importmbox(big)
    assert failed.returncode == 1
    assert "imported 1, duplicates 0, failed to parse 0, errors 1" in failed.stdout
    assert "could not be stored" in failed.stderr
    assert Message.objects.filter(space__key="PROC").count() == 3
