"""Errors in one shape (RFC 9457), in the caller's language; rate limits."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.api.conftest import bearer, token_for

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
JA = {"accept-language": "ja"}


def problem_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:mailarchive:problem:")
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    return body


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/no/such/thing/", 404, "not_found"),
        ("/api/v1/spaces/SALES/messages/999999/", 404, "not_found"),
        ("/api/v1/spaces/NOPE/messages/", 404, "not_found"),
        ("/api/v1/spaces/SALES/messages/?limit=0", 400, "invalid"),
        ("/api/v1/spaces/SALES/messages/?after=bm90IGEgY3Vyc29y", 400, "invalid"),
        ("/api/v1/spaces/SALES/messages/?month=2024-13", 400, "invalid"),
        ("/api/v1/spaces/SALES/search/", 400, "invalid"),
        ("/api/v1/spaces/SALES/permissions/", 403, "permission_denied"),
    ],
)
def test_every_error_is_a_problem(actors, path, status, code):
    body = problem_of(bearer(token_for(actors.viewer)).get(path), status)
    assert body["type"] == f"urn:mailarchive:problem:{code}"
    assert body["instance"] == path.split("?")[0]
    if status == 400:
        assert body["errors"] and all(
            isinstance(v, list) and v for v in body["errors"].values()
        )


def test_wrong_method_and_wrong_media_type(actors):
    client = bearer(token_for(actors.viewer))
    body = problem_of(client.delete("/api/v1/spaces/"), 405)
    assert body["type"].endswith("method_not_allowed")
    admin = bearer(token_for(actors.admin))
    url = reverse("api:permission-list", kwargs={"key": "SALES"})
    problem_of(admin.post(url, "level=view", content_type="text/plain"), 415)


def test_validation_errors_name_the_fields(actors):
    admin = bearer(token_for(actors.admin))
    url = reverse("api:permission-list", kwargs={"key": "SALES"})
    body = problem_of(
        admin.post(
            url, {"level": "root", "passwd": 1}, content_type="application/json"
        ),
        400,
    )
    assert set(body["errors"]) == {"level", "passwd"}
    body = problem_of(
        admin.post(url, {"level": "view"}, content_type="application/json"), 400
    )
    assert body["errors"] == {"non_field_errors": ["Choose either a user or a group."]}


def test_problems_are_in_japanese_for_a_japanese_caller(actors):
    client = bearer(token_for(actors.viewer))
    body = problem_of(client.get("/api/v1/spaces/NOPE/", headers=JA), 404)
    assert body["title"] == "見つかりません"
    assert body["detail"] == "スペースが見つかりません。"
    body = problem_of(client.get("/api/v1/spaces/SALES/permissions/", headers=JA), 403)
    assert body["title"] == "許可されていません"
    body = problem_of(Client().get("/api/v1/me/", headers=JA), 401)
    assert body["title"] == "認証が必要です"
    assert "認証" in body["detail"]


def test_rate_limit_answers_429_with_retry_after(actors, settings):
    """GIVEN a limit of 3 requests a minute WHEN a token makes a fourth THEN 429
    with Retry-After; another token and a session have buckets of their own."""
    settings.MAILARCHIVE_API_RATE = "3/minute"
    client = bearer(token_for(actors.viewer))
    for _ in range(3):
        assert client.get("/api/v1/me/").status_code == 200
    body = problem_of(client.get("/api/v1/me/"), 429)
    response = client.get("/api/v1/spaces/")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert body["retry_after"] >= 1
    assert (
        bearer(token_for(actors.viewer, "second")).get("/api/v1/me/").status_code == 200
    )


def test_anonymous_callers_have_their_own_smaller_limit(actors, settings):
    settings.MAILARCHIVE_API_ANONYMOUS_RATE = "2/minute"
    client = Client()
    for _ in range(2):
        assert client.get("/api/v1/spaces/").status_code == 200
    assert client.get("/api/v1/spaces/").status_code == 429
    assert Client(REMOTE_ADDR="10.0.0.9").get("/api/v1/spaces/").status_code == 200
    assert bearer(token_for(actors.viewer)).get("/api/v1/spaces/").status_code == 200


def test_a_forged_forwarded_for_does_not_escape_the_anonymous_limit(settings):
    settings.MAILARCHIVE_API_ANONYMOUS_RATE = "1/minute"
    assert Client().get("/api/v1/spaces/").status_code == 200
    forged = Client(headers={"x-forwarded-for": "203.0.113.7"})
    assert forged.get("/api/v1/spaces/").status_code == 429


def test_options_describes_nothing(actors):
    response = bearer(token_for(actors.viewer)).options("/api/v1/spaces/SALES/")
    problem_of(response, 405)
