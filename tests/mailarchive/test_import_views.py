"""Import pages: permissions, upload, server files, progress, the Celery task."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailarchive import celery_app, storage
from mailarchive.imports import import_job_create
from mailarchive.models import ImportJob, Message
from mailarchive.storage import upload_exists
from mailarchive.tasks import mbox_import_task
from spaces.models import AuditEvent
from tests.conftest import ROLES, client_for, expected_status, login_client
from tests.factories import PersonalSpaceFactory
from tests.mailarchive.test_import import mbox_of, message


@pytest.fixture
def eager_tasks():
    """Tasks run in the calling process, as CELERY_TASK_ALWAYS_EAGER does."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def job(actors, tmp_path) -> ImportJob:
    path = tmp_path / "one.mbox"
    path.write_bytes(mbox_of(message("a")))
    return import_job_create(
        space=actors.space,
        path=path,
        file_name="one.mbox",
        origin="command",
        requested_by=None,
    )


def url(name: str, job: ImportJob) -> str:
    kwargs = {"key": job.space.key}
    if name in ("import-detail", "import-status", "import-rerun"):
        kwargs["import_id"] = job.pk
    return reverse(f"mbox:{name}", kwargs=kwargs)


# (url name, method, status when allowed): a POST of an empty form is a 400;
# re-running redirects to the import's page.
PAGES = [
    ("import-list", "get", 200),
    ("import-detail", "get", 200),
    ("import-status", "get", 200),
    ("import-upload", "post", 400),
    ("import-rerun", "post", 302),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("name", "method", "allowed"), PAGES, ids=[p[0] for p in PAGES]
)
def test_import_pages_need_space_admin(actors, job, role, name, method, allowed):
    response = getattr(client_for(actors, role), method)(url(name, job))
    expected = expected_status(role, 30)
    assert response.status_code == (allowed if expected == 200 else expected)
    if role == "anonymous":
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ROLES)
def test_server_import_needs_site_admin(actors, job, role):
    response = client_for(actors, role).post(url("import-server", job))
    expected = {
        "anonymous": 302,
        "outsider": 404,
        "viewer": 403,
        "group_viewer": 403,
        "deleter": 403,
        "admin": 403,
        "site_admin": 400,
    }[role]
    assert response.status_code == expected


def test_import_of_another_space_is_not_found(actors, job):
    from tests.factories import SpaceFactory

    other = SpaceFactory(key="OTHER")
    response = client_for(actors, "site_admin").get(
        reverse("mbox:import-detail", kwargs={"key": other.key, "import_id": job.pk})
    )
    assert response.status_code == 404


def test_space_home_links_to_imports_for_admins_only(actors):
    home = reverse("spaces:space-home", kwargs={"key": actors.space.key})
    link = reverse("mbox:import-list", kwargs={"key": actors.space.key})
    assert link in client_for(actors, "admin").get(home).content.decode()
    assert link not in client_for(actors, "viewer").get(home).content.decode()


@pytest.mark.parametrize("in_memory", [True, False], ids=["small", "temp-file"])
def test_upload_is_imported_by_the_task(
    actors,
    settings,
    eager_tasks,
    django_capture_on_commit_callbacks,
    monkeypatch,
    in_memory,
):
    """GIVEN a space admin WHEN they upload an mbox THEN the task imports it, the
    page shows the summary and the uploaded copy is removed once done. A large
    upload, which Django streams to a temporary file, is moved, not read."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10**9 if in_memory else 0
    moved: list[str] = []
    real_move = storage.file_move_safe

    def spy(old: str, new: str, **kwargs) -> None:
        moved.append(old)
        real_move(old, new, **kwargs)

    monkeypatch.setattr(storage, "file_move_safe", spy)
    content = mbox_of(message("one"), message("two"), message("three"))
    upload = SimpleUploadedFile("team.mbox", content, "application/mbox")
    client = client_for(actors, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("mbox:import-upload", kwargs={"key": actors.space.key}),
            {"file": upload},
        )
    job = ImportJob.objects.get(space=actors.space)
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    assert (job.status, job.origin, job.file_name) == ("done", "upload", "team.mbox")
    assert (job.total, job.imported, job.requested_by) == (3, 3, actors.admin)
    assert Message.objects.filter(space=actors.space, source="import").count() == 3
    assert job.path.startswith("imports/")
    assert not upload_exists(job.path)
    assert AuditEvent.objects.filter(action="mail.import.request").count() == 1
    assert len(moved) == (0 if in_memory else 1)

    page = client.get(job.get_absolute_url()).content.decode()
    assert "team.mbox" in page and "Done" in page
    listing = client.get(reverse("mbox:import-list", kwargs={"key": actors.space.key}))
    assert job.get_absolute_url() in listing.content.decode()


def test_gzip_upload_failing_midway_keeps_the_file_and_says_why(
    actors, eager_tasks, django_capture_on_commit_callbacks
):
    packed = gzip.compress(mbox_of(*(message(f"m{i}") for i in range(200))))
    upload = SimpleUploadedFile("big.mbox.gz", packed[: len(packed) // 2])
    client = client_for(actors, "admin")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("mbox:import-upload", kwargs={"key": actors.space.key}),
            {"file": upload},
        )
    job = ImportJob.objects.get(space=actors.space)
    assert (job.status, job.error) == ("failed", "truncated gzip file")
    assert upload_exists(job.path)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "truncated gzip file" in page
    assert reverse(
        "mbox:import-rerun", kwargs={"key": "SALES", "import_id": job.pk}
    ) in (page)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"<html><body>hello</body></html>\n", "not an mbox")],
    ids=["empty", "html"],
)
def test_upload_of_no_mail_file_is_refused_in_the_form(actors, content, reason):
    response = client_for(actors, "admin").post(
        reverse("mbox:import-upload", kwargs={"key": actors.space.key}),
        {"file": SimpleUploadedFile("x.mbox", content)},
    )
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not ImportJob.objects.exists()


def test_personal_space_explains_and_refuses(db, tmp_path):
    space = PersonalSpaceFactory(key="ME")
    client = login_client(space.owner)
    page = client.get(reverse("mbox:import-list", kwargs={"key": "ME"}))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Personal spaces do not hold mail" in text
    assert 'enctype="multipart/form-data"' not in text
    response = client.post(
        reverse("mbox:import-upload", kwargs={"key": "ME"}),
        {"file": SimpleUploadedFile("a.mbox", mbox_of(message("a")))},
    )
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_status_endpoint_reports_progress(actors, job):
    ImportJob.objects.filter(pk=job.pk).update(
        status="importing", total=10, processed=4, imported=3, duplicates=1
    )
    response = client_for(actors, "admin").get(url("import-status", job))
    assert response["Content-Type"] == "application/json"
    state = json.loads(response.content)
    assert state["status"] == "importing"
    assert state["finished"] is False
    assert (state["total"], state["processed"], state["percent"]) == (10, 4, 40)
    assert (state["imported"], state["duplicates"], state["failed"]) == (3, 1, 0)


def test_progress_page_polls_with_script_and_offers_a_reload_link(actors, job):
    page = client_for(actors, "admin").get(url("import-detail", job)).content.decode()
    assert "js/imports.js" in page
    assert url("import-status", job) in page
    assert "Reload to see the latest progress" in page
    assert "<script>" not in page  # no inline script: the page works under a CSP


def test_errors_are_listed_on_the_summary(actors, job):
    ImportJob.objects.filter(pk=job.pk).update(
        status="done",
        failed=1,
        errors=[{"number": 7, "offset": 12345, "size": 99, "reason": "too big"}],
    )
    page = client_for(actors, "admin").get(url("import-detail", job)).content.decode()
    assert "#7" in page and "12345" in page and "too big" in page


def test_rerun_queues_a_failed_import_which_continues(
    actors, job, eager_tasks, django_capture_on_commit_callbacks
):
    ImportJob.objects.filter(pk=job.pk).update(status="failed", error="outage")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(actors, "admin").post(url("import-rerun", job))
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.imported, job.error) == ("done", 1, "")


def test_rerun_of_a_done_import_changes_nothing(actors, job):
    mbox_import_task(job.pk)
    response = client_for(actors, "admin").post(url("import-rerun", job), follow=True)
    assert "done or still running" in response.content.decode()
    job.refresh_from_db()
    assert job.attempts == 1


def test_task_runs_the_import_and_returns_the_summary(job):
    summary = mbox_import_task(job.pk)
    assert summary == (
        f"import {job.pk} done: imported 1, duplicates 0, failed to parse 0, errors 0"
    )


def test_task_delivered_twice_imports_once(job):
    mbox_import_task(job.pk)
    mbox_import_task(job.pk)
    job.refresh_from_db()
    assert (job.attempts, job.imported, job.duplicates) == (1, 1, 0)


@pytest.fixture
def import_dir(tmp_path, settings) -> Path:
    root = tmp_path / "drop"
    root.mkdir()
    (root / "old.mbox").write_bytes(mbox_of(message("old"), message("older")))
    outside = tmp_path / "private.mbox"
    outside.write_bytes(mbox_of(message("private")))
    (root / "link.mbox").symlink_to(outside)
    settings.MAILARCHIVE_IMPORT_DIR = str(root)
    return root


def test_site_admin_imports_a_server_file(
    actors, import_dir, eager_tasks, django_capture_on_commit_callbacks
):
    client = client_for(actors, "site_admin")
    listing = client.get(reverse("mbox:import-list", kwargs={"key": "SALES"}))
    text = listing.content.decode()
    assert "old.mbox" in text and "link.mbox" not in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("mbox:import-server", kwargs={"key": "SALES"}), {"name": "old.mbox"}
        )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert (job.origin, job.status, job.imported) == ("server", "done", 2)
    assert (import_dir / "old.mbox").exists()


@pytest.mark.parametrize("name", ["../private.mbox", "link.mbox", "/etc/passwd"])
def test_server_paths_outside_the_directory_are_refused(actors, import_dir, name):
    response = client_for(actors, "site_admin").post(
        reverse("mbox:import-server", kwargs={"key": "SALES"}), {"name": name}
    )
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_space_admin_sees_no_server_import(actors, import_dir):
    text = (
        client_for(actors, "admin")
        .get(reverse("mbox:import-list", kwargs={"key": "SALES"}))
        .content.decode()
    )
    assert "old.mbox" not in text
    assert reverse("mbox:import-server", kwargs={"key": "SALES"}) not in text
