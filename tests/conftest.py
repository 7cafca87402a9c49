"""Fixtures shared by the whole suite."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client

from spaces.models import Level, Space
from tests.factories import (
    GroupFactory,
    SpaceFactory,
    SpacePermissionFactory,
    SuperUserFactory,
    UserFactory,
)

# One Dovecot, one Chromium and one object store for the whole session,
# whichever tests use them.
pytest_plugins = [
    "tests.dovecot",
    "tests.oauth2_server",
    "tests.browser.fixtures",
    "tests.object_store",
]


def database_url() -> str:
    """The URL of the database this test runs on, for the processes it starts.

    ``sqlite:///<file>`` in the SQLite run, ``postgres://…`` otherwise; give it
    to a child as ``TEST_DATABASE_URL`` (the test settings) or
    ``DATABASE_URL`` (the production settings).
    """
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    login = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        login += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{login}@{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared real-world message corpus; the run fails without it."""
    value = os.environ.get("MAILARCHIVE_TEST_CORPUS", "")
    path = (
        Path(value) if value else Path(__file__).parent.parent.parent / "shared/corpus"
    )
    if not (path / "mimekit").is_dir():
        pytest.fail(
            f"test corpus not found at {path}: set MAILARCHIVE_TEST_CORPUS to the "
            "shared/corpus folder"
        )
    return path


@dataclass
class Actors:
    """One space and a user at every permission level, for permission matrices."""

    space: Space
    anonymous: None
    outsider: object
    viewer: object
    deleter: object
    admin: object
    group_viewer: object
    site_admin: object


ROLES = [
    "anonymous",
    "outsider",
    "viewer",
    "group_viewer",
    "deleter",
    "admin",
    "site_admin",
]
ROLE_LEVEL: dict[str, int | None] = {
    "anonymous": None,
    "outsider": None,
    "viewer": Level.VIEW,
    "group_viewer": Level.VIEW,
    "deleter": Level.DELETE,
    "admin": Level.ADMIN,
    "site_admin": Level.ADMIN,
}


@pytest.fixture
def actors(db) -> Actors:
    space = SpaceFactory(key="SALES", name="Sales")
    viewer = UserFactory(username="viewer")
    deleter = UserFactory(username="deleter")
    admin = UserFactory(username="spaceadmin")
    group_viewer = UserFactory(username="groupie")
    group = GroupFactory(name="readers")
    group_viewer.groups.add(group)
    SpacePermissionFactory(space=space, user=viewer, level=Level.VIEW)
    SpacePermissionFactory(space=space, user=deleter, level=Level.DELETE)
    SpacePermissionFactory(space=space, user=admin, level=Level.ADMIN)
    SpacePermissionFactory(space=space, user=None, group=group, level=Level.VIEW)
    return Actors(
        space=space,
        anonymous=None,
        outsider=UserFactory(username="outsider"),
        viewer=viewer,
        deleter=deleter,
        admin=admin,
        group_viewer=group_viewer,
        site_admin=SuperUserFactory(username="root"),
    )


def login_client(user) -> Client:
    """A test client logged in as ``user`` (None: not logged in)."""
    client = Client()
    if user is not None:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def client_for(actors: Actors, role: str) -> Client:
    """A test client logged in as ``role`` (anonymous: not logged in)."""
    return login_client(getattr(actors, role))


def expected_status(role: str, needed: int) -> int:
    """What a space page answers ``role`` when it needs ``needed``.

    Invisible space: 302 to the login page for anonymous visitors, 404 for
    logged-in users (no existence leak); visible but not allowed: 403.
    """
    held = ROLE_LEVEL[role]
    if held is None:
        return 302 if role == "anonymous" else 404
    return 200 if held >= needed else 403


@pytest.fixture(autouse=True)
def _audit_log_emptied_before_sqlite_flush(request):
    """After a transactional test on SQLite, empty the audit log past its trigger.

    Django empties the test database after such a test with DELETE, which the
    append-only trigger refuses on SQLite (PostgreSQL truncates, which row
    triggers do not see). The database fixture is set up before this one, so
    that it is flushed after this one's teardown.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    from django.db import connection

    if connection.vendor != "sqlite":
        return
    guard = importlib.import_module("spaces.migrations.0002_audit_append_only")
    guard.drop_append_only_triggers(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {guard.TABLE}")
    finally:
        guard.create_append_only_triggers(connection)
