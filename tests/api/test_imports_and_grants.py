"""Imports (upload, then follow the progress) and a space's grants."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from mailarchive.imports import mbox_import_run
from mailarchive.models import ImportJob, Message
from spaces.models import AuditEvent, Level, SpacePermission
from tests.api.conftest import bearer, token_for
from tests.factories import GroupFactory, PersonalSpaceFactory, UserFactory
from tests.mailarchive.test_views import raw_message

pytestmark = pytest.mark.django_db


def api(name: str, **kwargs) -> str:
    return reverse(f"api:{name}", kwargs={"key": "SALES", **kwargs})


def mbox(count: int) -> bytes:
    parts = []
    for n in range(count):
        raw = raw_message(subject=f"Imported {n}", msgid=f"imp{n}@x")
        parts.append(b"From sender@example.com Fri Mar  1 09:00:00 2024\n" + raw)
    return b"\n".join(parts) + b"\n"


def upload(client, data: bytes, name: str = "archive.mbox"):
    handle = io.BytesIO(data)
    handle.name = name
    return client.post(api("import-list"), {"file": handle})


def test_upload_then_follow_the_import_to_its_end(actors):
    admin = bearer(token_for(actors.admin))
    response = upload(admin, mbox(3))
    assert response.status_code == 202
    job = response.json()
    assert response["Location"] == job["url"]
    assert (job["status"], job["file_name"], job["finished"]) == (
        "queued",
        "archive.mbox",
        False,
    )
    assert job["requested_by"] == "spaceadmin"
    mbox_import_run(job["id"])  # what the worker does with the queued task
    done = admin.get(job["url"]).json()
    assert (done["status"], done["finished"], done["percent"]) == ("done", True, 100)
    assert (done["total"], done["imported"], done["duplicates"]) == (3, 3, 0)
    assert Message.objects.filter(space=actors.space).count() == 3
    listed = admin.get(api("import-list")).json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]
    again = upload(admin, mbox(3))
    mbox_import_run(again.json()["id"])
    assert admin.get(again.json()["url"]).json()["duplicates"] == 3
    rerun = admin.post(api("import-rerun", id=job["id"]))
    assert rerun.status_code == 409


@pytest.mark.parametrize(
    ("data", "field"),
    [(b"\x89PNG not mail at all", "file"), (None, "file")],
    ids=["not-mail", "no-file"],
)
def test_upload_refuses_what_is_no_mail_file(actors, data, field):
    admin = bearer(token_for(actors.admin))
    if data is None:
        response = admin.post(api("import-list"), {})
    else:
        response = upload(admin, data, "picture.png")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not ImportJob.objects.exists()


def test_personal_spaces_take_no_imports(actors):
    space = PersonalSpaceFactory(owner=actors.viewer, key="MINE")
    handle = io.BytesIO(mbox(1))
    handle.name = "a.mbox"
    response = bearer(token_for(actors.viewer)).post(
        reverse("api:import-list", kwargs={"key": space.key}), {"file": handle}
    )
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_grants_are_listed_given_and_removed_with_audit(actors):
    admin = bearer(token_for(actors.admin))
    listed = admin.get(api("permission-list")).json()["results"]
    assert {(g["user"], g["group"], g["level"]) for g in listed} == {
        ("viewer", None, "view"),
        ("deleter", None, "delete"),
        ("spaceadmin", None, "admin"),
        (None, "readers", "view"),
    }
    newcomer = UserFactory(username="newcomer")
    GroupFactory(name="auditors")
    given = admin.post(
        api("permission-list"),
        {"user": "newcomer", "level": "delete"},
        content_type="application/json",
    )
    assert given.status_code == 201
    assert given.json()["level"] == "delete"
    assert given["Location"] == given.json()["url"]
    grant = SpacePermission.objects.get(space=actors.space, user=newcomer)
    assert grant.level == Level.DELETE
    group = admin.post(
        api("permission-list"),
        {"group": "auditors", "level": "view"},
        content_type="application/json",
    )
    assert group.status_code == 201 and group.json()["group"] == "auditors"
    assert AuditEvent.objects.filter(action="space.permission.grant").count() == 2
    assert admin.delete(api("permission-detail", id=grant.pk)).status_code == 204
    assert not SpacePermission.objects.filter(pk=grant.pk).exists()
    assert AuditEvent.objects.filter(action="space.permission.revoke").count() == 1
    newcomer_client = bearer(token_for(newcomer))
    assert newcomer_client.get(api("space-detail")).status_code == 404


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"user": "ghost", "level": "view"}, "user"),
        ({"group": "ghosts", "level": "view"}, "group"),
        ({"user": "viewer", "group": "readers", "level": "view"}, "non_field_errors"),
        ({"user": "viewer", "level": "owner"}, "level"),
    ],
)
def test_grants_refuse_unknown_principals_and_levels(actors, data, field):
    response = bearer(token_for(actors.admin)).post(
        api("permission-list"), data, content_type="application/json"
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]
