"""The pages' permission matrix, repeated for every endpoint of the API.

Every role of ``tests.conftest.ROLES`` signs in with a token of its own, plus a
revoked and an expired token of the site admin. A space the caller may not see
is 404 (401 without credentials), a missing level 403, a dead token 401; and a
refused request changes nothing.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import MailAccount, PollRun
from accounts.services import mail_account_create
from mailarchive.models import ImportJob, Message
from mailarchive.services import message_trash
from spaces.models import Level, SpacePermission
from tests.api.conftest import API_ROLES, ApiMail, api_client, api_expected, make_mail
from tests.conftest import Actors
from tests.factories import SpaceFactory, UserFactory

pytestmark = pytest.mark.django_db
MBOX = b"From a@example.com Fri Mar  1 09:00:00 2024\nSubject: x\n\nbody\n"


@dataclass
class Objects:
    """One of everything an endpoint can name, in the matrix's space."""

    mail: ApiMail
    trashed: Message
    account: MailAccount
    run: PollRun
    job: ImportJob
    grant: SpacePermission


@pytest.fixture
def objects(actors: Actors, mail: ApiMail, settings) -> Objects:
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    settings.MAILARCHIVE_FETCH_DISABLED = False
    return make_objects(actors.space, actors, mail)


def make_objects(space, actors: Actors, mail: ApiMail | None = None) -> Objects:
    """One of everything in ``space``."""
    mail = mail or make_mail(space)
    trashed = mail.reply
    message_trash(space=space, message_pk=trashed.pk, actor=actors.admin)
    account = mail_account_create(
        space=space,
        name="Sales (clone)",
        protocol="imaps",
        host="127.0.0.1",
        username="sales",
        password="secret",
    )
    run = PollRun.objects.create(account=account, trigger="manual")
    # A failed upload whose file is still there, so that it may run again.
    upload = Path(tempfile.mkdtemp(prefix="api-access-")) / "old.mbox"
    upload.write_bytes(
        b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nx\n"
    )
    job = ImportJob.objects.create(
        space=space,
        origin=ImportJob.Origin.UPLOAD,
        file_name="old.mbox",
        path=str(upload),
        status=ImportJob.Status.FAILED,
    )
    grant = SpacePermission.objects.create(
        space=space,
        user=UserFactory(username=f"granted-{space.key}"),
        level=Level.VIEW,
    )
    return Objects(mail, trashed, account, run, job, grant)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    needed: int
    ok: int = 200
    kwargs: Callable[[Objects], dict[str, Any]] = lambda o: {}
    query: str = ""
    body: Callable[[], dict[str, Any]] | None = None
    multipart: bool = False
    # Whether the change happened, asked after the request.
    changed: Callable[[Objects], bool] | None = None


def _message(o: Objects) -> dict[str, Any]:
    return {"id": o.mail.files.pk}


def _account(o: Objects) -> dict[str, Any]:
    return {"id": o.account.pk}


ENDPOINTS = [
    Endpoint("space-detail", "get", Level.VIEW),
    Endpoint("message-list", "get", Level.VIEW),
    Endpoint("message-detail", "get", Level.VIEW, kwargs=_message),
    Endpoint("message-raw", "get", Level.VIEW, kwargs=_message),
    Endpoint(
        "attachment-download",
        "get",
        Level.VIEW,
        kwargs=lambda o: {"id": o.mail.files.pk, "position": 0},
    ),
    Endpoint(
        "thread-detail",
        "get",
        Level.VIEW,
        kwargs=lambda o: {"id": o.mail.root.thread_id},
    ),
    Endpoint(
        "thread-export",
        "get",
        Level.VIEW,
        kwargs=lambda o: {"id": o.mail.root.thread_id},
    ),
    Endpoint("space-export", "get", Level.VIEW),
    Endpoint("space-search", "get", Level.VIEW, query="?q=plans"),
    Endpoint("search-export", "get", Level.VIEW, query="?q=plans"),
    Endpoint(
        "message-trash",
        "post",
        Level.DELETE,
        ok=204,
        kwargs=_message,
        changed=lambda o: (
            Message.objects.get(pk=o.mail.files.pk).deleted_at is not None
        ),
    ),
    Endpoint(
        "message-restore",
        "post",
        Level.ADMIN,
        ok=204,
        kwargs=lambda o: {"id": o.trashed.pk},
        changed=lambda o: Message.objects.get(pk=o.trashed.pk).deleted_at is None,
    ),
    Endpoint("trash-list", "get", Level.ADMIN),
    Endpoint("mail-account-list", "get", Level.ADMIN),
    Endpoint(
        "mail-account-list",
        "post",
        Level.ADMIN,
        ok=201,
        body=lambda: {
            "name": "Support (clone)",
            "protocol": "imaps",
            "host": "127.0.0.1",
            "username": "support",
            "password": "secret",
        },
        changed=lambda o: MailAccount.objects.filter(name="Support (clone)").exists(),
    ),
    Endpoint("mail-account-detail", "get", Level.ADMIN, kwargs=_account),
    Endpoint(
        "mail-account-detail",
        "patch",
        Level.ADMIN,
        kwargs=_account,
        body=lambda: {"description": "changed"},
        changed=lambda o: (
            MailAccount.objects.get(pk=o.account.pk).description == "changed"
        ),
    ),
    Endpoint(
        "mail-account-detail",
        "delete",
        Level.ADMIN,
        ok=204,
        kwargs=_account,
        changed=lambda o: not MailAccount.objects.filter(pk=o.account.pk).exists(),
    ),
    Endpoint(
        "mail-account-enabled",
        "post",
        Level.ADMIN,
        kwargs=_account,
        body=lambda: {"enabled": False},
        changed=lambda o: not MailAccount.objects.get(pk=o.account.pk).enabled,
    ),
    Endpoint("mail-account-test", "post", Level.ADMIN, kwargs=_account),
    Endpoint(
        "mail-account-fetch",
        "post",
        Level.ADMIN,
        ok=202,
        kwargs=_account,
        changed=lambda o: PollRun.objects.filter(account=o.account).count() == 2,
    ),
    Endpoint("poll-run-detail", "get", Level.ADMIN, kwargs=lambda o: {"id": o.run.pk}),
    Endpoint("import-list", "get", Level.ADMIN),
    Endpoint(
        "import-list",
        "post",
        Level.ADMIN,
        ok=202,
        body=lambda: {"file": io.BytesIO(MBOX)},
        multipart=True,
        changed=lambda o: ImportJob.objects.count() == 2,
    ),
    Endpoint("import-detail", "get", Level.ADMIN, kwargs=lambda o: {"id": o.job.pk}),
    Endpoint(
        "import-rerun", "post", Level.ADMIN, ok=202, kwargs=lambda o: {"id": o.job.pk}
    ),
    Endpoint("permission-list", "get", Level.ADMIN),
    Endpoint(
        "permission-list",
        "post",
        Level.ADMIN,
        ok=201,
        body=lambda: {"user": "granted-SALES", "level": "delete"},
        changed=lambda o: (
            SpacePermission.objects.get(pk=o.grant.pk).level == Level.DELETE
        ),
    ),
    Endpoint(
        "permission-detail",
        "delete",
        Level.ADMIN,
        ok=204,
        kwargs=lambda o: {"id": o.grant.pk},
        changed=lambda o: not SpacePermission.objects.filter(pk=o.grant.pk).exists(),
    ),
]


def _call(client, endpoint: Endpoint, url: str):
    send = getattr(client, endpoint.method)
    if endpoint.body is None:
        return send(url)
    if endpoint.multipart:
        return send(url, endpoint.body())
    return send(url, endpoint.body(), content_type="application/json")


def _id(endpoint: Endpoint) -> str:
    return f"{endpoint.method}-{endpoint.name}"


def test_every_endpoint_of_a_space_is_in_the_matrix() -> None:
    """GIVEN the API's URLs THEN each one under /spaces/<key>/ is tested below
    with each of its methods (a new endpoint must join the matrix)."""
    from api import urls

    served = {
        (p.name, method)
        for p in urls.urlpatterns
        if "<str:key>" in str(p.pattern)
        for method in ("get", "post", "put", "patch", "delete")
        if hasattr(p.callback.cls, method)
    }
    assert served == {(e.name, e.method) for e in ENDPOINTS}


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_space_endpoint_permissions(actors, objects, role, endpoint):
    url = reverse(
        f"api:{endpoint.name}",
        kwargs={"key": actors.space.key, **endpoint.kwargs(objects)},
    )
    response = _call(api_client(actors, role), endpoint, url + endpoint.query)
    expected = api_expected(role, endpoint.needed, endpoint.ok)
    assert response.status_code == expected, response.content[:300]
    if expected >= 400:
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == expected
    if expected == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    if endpoint.changed is not None:
        assert endpoint.changed(objects) == (expected == endpoint.ok)


class _AnyObjects:
    """Answers every attribute, to see which endpoints name an object."""

    def __getattr__(self, name: str) -> Any:
        return self


_EXAMPLE: Any = _AnyObjects()
ADDRESSED = [e for e in ENDPOINTS if "id" in e.kwargs(_EXAMPLE)]


@pytest.mark.parametrize("role", ["deleter", "admin", "site_admin"])
@pytest.mark.parametrize("endpoint", ADDRESSED, ids=_id)
def test_objects_of_another_space_are_not_found_through_this_one(
    actors, objects, role, endpoint
):
    """GIVEN a caller who may act in SALES WHEN they name an object of another
    space through SALES's URLs THEN it does not exist for them, and stays."""
    other = make_objects(SpaceFactory(key="OTHER"), actors)
    url = reverse(
        f"api:{endpoint.name}",
        kwargs={"key": actors.space.key, **endpoint.kwargs(other)},
    )
    response = _call(api_client(actors, role), endpoint, url + endpoint.query)
    expected = api_expected(role, endpoint.needed, endpoint.ok)
    if expected == endpoint.ok:
        if endpoint.name == "permission-detail":
            # Revoking is idempotent: a grant that is not this space's is
            # simply not there to remove.
            assert response.status_code == 204
        else:
            assert response.status_code == 404, response.content[:300]
    else:
        assert response.status_code == expected
    if endpoint.changed is not None:
        assert not endpoint.changed(other)


SITE_ENDPOINTS = [
    # name, what anonymous callers get with no public space, with one
    ("me", 401, 401),
    ("space-list", 200, 200),
    ("search", 401, 200),
    ("root", 200, 200),
]


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize(("name", "closed", "open_"), SITE_ENDPOINTS)
def test_site_endpoints(actors, role, name, closed, open_):
    url = reverse(f"api:{name}") + ("?q=plans" if name == "search" else "")
    response = api_client(actors, role).get(url)
    if role in ("revoked", "expired"):
        assert response.status_code == 401
    elif role == "anonymous":
        assert response.status_code == closed
        SpaceFactory(key="OPEN", allow_anonymous=True)
        assert api_client(actors, role).get(url).status_code == open_
    else:
        assert response.status_code == 200


def test_spaces_list_shows_only_what_the_caller_may_see(actors):
    SpaceFactory(key="HIDDEN")
    SpaceFactory(key="OPEN", allow_anonymous=True)
    seen = {}
    for role in ("anonymous", "outsider", "viewer", "site_admin"):
        body = api_client(actors, role).get("/api/v1/spaces/").json()
        seen[role] = sorted(s["key"] for s in body["results"])
    assert seen == {
        "anonymous": ["OPEN"],
        "outsider": ["OPEN"],
        "viewer": ["OPEN", "SALES"],
        "site_admin": ["HIDDEN", "OPEN", "SALES"],
    }


def test_a_public_space_is_read_anonymously_but_not_written(actors, mail):
    actors.space.allow_anonymous = True
    actors.space.save()
    client = api_client(actors, "anonymous")
    message = reverse("api:message-detail", kwargs={"key": "SALES", "id": mail.root.pk})
    assert client.get(message).status_code == 200
    trash = reverse("api:message-trash", kwargs={"key": "SALES", "id": mail.root.pk})
    assert client.post(trash).status_code == 403
    assert Message.objects.get(pk=mail.root.pk).deleted_at is None
    accounts = reverse("api:mail-account-list", kwargs={"key": "SALES"})
    assert client.get(accounts).status_code == 403
