"""Personal API tokens: made once, stored hashed, used, expired, revoked;
the token page, the command, and signing in by session with CSRF."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import TOKEN_PREFIX, ApiToken
from api.services import api_token_create, api_token_revoke
from spaces.models import AuditEvent
from tests.api.conftest import bearer, token_for
from tests.conftest import login_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ME = "/api/v1/me/"


def test_a_token_is_stored_only_as_its_digest(actors):
    created = api_token_create(user=actors.viewer, name="ticket bot")
    secret = created.secret
    assert secret.startswith(TOKEN_PREFIX) and len(secret) >= 40
    row = ApiToken.objects.get(pk=created.token.pk)
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret[len(TOKEN_PREFIX) + 4 :] not in str(row.__dict__)
    assert AuditEvent.objects.filter(action="api.token.create").count() == 1


def test_a_token_stands_for_its_user_and_notes_its_last_use(actors):
    created = api_token_create(user=actors.viewer, name="bot")
    assert created.token.last_used_at is None
    response = bearer(created.secret).get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "username": "viewer",
        "site_admin": False,
        "authenticated_by": "token",
        "token": {"name": "bot", "expires_at": None},
    }
    used = ApiToken.objects.get(pk=created.token.pk).last_used_at
    assert used is not None and timezone.now() - used < timedelta(seconds=30)


def test_last_use_is_written_at_most_once_a_minute(actors, django_assert_num_queries):
    """GIVEN a token used a moment ago WHEN it is used again THEN no write."""
    secret = token_for(actors.viewer)
    client = bearer(secret)
    client.get(ME)
    first = ApiToken.objects.get().last_used_at
    with django_assert_num_queries(1):  # the token and its user, nothing else
        assert client.get(ME).status_code == 200
    assert ApiToken.objects.get().last_used_at == first


@pytest.mark.parametrize(
    "header",
    [
        "Bearer mat_unknown",
        "Bearer",
        "Bearer a b",
        "Bearer not-one-of-ours",
        "bearer mat_" + "x" * 300,
    ],
)
def test_a_bad_token_is_refused_even_with_a_session(actors, header):
    client = login_client(actors.viewer)
    response = client.get(ME, headers={"authorization": header})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response["Content-Type"] == "application/problem+json"


def test_revoked_expired_and_deactivated_say_why(actors):
    revoked = api_token_create(user=actors.viewer, name="a")
    api_token_revoke(user=actors.viewer, token_id=revoked.token.pk)
    expired = api_token_create(user=actors.viewer, name="b", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.token.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    dormant = UserFactory(username="dormant", is_active=False)
    inactive = api_token_create(user=dormant, name="c")
    details = {
        name: bearer(created.secret).get(ME).json()["detail"]
        for name, created in [
            ("revoked", revoked),
            ("expired", expired),
            ("inactive", inactive),
        ]
    }
    assert details == {
        "revoked": "That token was revoked.",
        "expired": "That token has expired.",
        "inactive": "That token is not valid.",
    }


def test_revoking_is_for_the_owner_only_and_safe_to_repeat(actors):
    created = api_token_create(user=actors.viewer, name="a")
    assert not api_token_revoke(user=actors.admin, token_id=created.token.pk)
    assert bearer(created.secret).get(ME).status_code == 200
    assert api_token_revoke(user=actors.viewer, token_id=created.token.pk)
    assert not api_token_revoke(user=actors.viewer, token_id=created.token.pk)
    assert AuditEvent.objects.filter(action="api.token.revoke").count() == 1


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_expiry_out_of_range_is_refused(actors, days):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        api_token_create(user=actors.viewer, name="x", expires_in_days=days)


# The token page -----------------------------------------------------------


def test_token_page_needs_a_login():
    response = Client().get(reverse("api-tokens:token-list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_token_page_shows_a_new_token_once_then_only_its_hint(actors):
    client = login_client(actors.viewer)
    url = reverse("api-tokens:token-list")
    made = client.post(url, {"name": "ticket bot", "expires_in_days": "30"})
    assert made.status_code == 302 and made.url == url
    response = client.get(url)
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    token = ApiToken.objects.get(user=actors.viewer)
    secret = text.split('class="feed-url token-secret"')[0].rsplit('value="', 1)[1]
    secret = secret.split('"', 1)[0]
    assert secret.startswith(token.hint)
    assert hashlib.sha256(secret.encode()).hexdigest() == token.digest
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(30)
    again = client.get(url).content.decode()
    assert secret not in again
    assert "ticket bot" in again and f"{token.hint}…" in again
    assert bearer(secret).get(ME).status_code == 200


def test_token_page_revokes_only_the_users_own_tokens(actors):
    own = api_token_create(user=actors.viewer, name="mine")
    other = api_token_create(user=actors.admin, name="theirs")
    client = login_client(actors.viewer)
    for created in (own, other):
        response = client.post(
            reverse("api-tokens:token-revoke", kwargs={"token_id": created.token.pk})
        )
        assert response.status_code == 302
    assert bearer(own.secret).get(ME).status_code == 401
    assert bearer(other.secret).get(ME).status_code == 200
    assert "revoked" in client.get(reverse("api-tokens:token-list")).content.decode()


def test_the_top_bar_leads_to_the_token_page(actors):
    text = login_client(actors.viewer).get("/").content.decode()
    assert f'href="{reverse("api-tokens:token-list")}"' in text


# The command ----------------------------------------------------------------


def test_createapitoken_prints_the_token_on_its_own_last_line(actors):
    out = io.StringIO()
    call_command(
        "createapitoken", "viewer", "--name", "cron", "--expires-days", "7", stdout=out
    )
    secret = out.getvalue().splitlines()[-1]
    assert secret.startswith(TOKEN_PREFIX) and " " not in secret
    token = ApiToken.objects.get(user=actors.viewer)
    assert token.name == "cron"
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(7)
    assert bearer(secret).get(ME).json()["username"] == "viewer"


def test_createapitoken_without_expiry_and_for_an_unknown_user(actors):
    out = io.StringIO()
    call_command("createapitoken", "viewer", stdout=out)
    assert ApiToken.objects.get().expires_at is None
    with pytest.raises(CommandError, match="nobody"):
        call_command("createapitoken", "nobody")


# Signing in by session --------------------------------------------------------


def test_a_session_reads_without_a_token(actors):
    response = login_client(actors.viewer).get(ME)
    assert response.status_code == 200
    assert response.json()["authenticated_by"] == "session"


def test_a_session_must_send_the_csrf_token_to_write(actors, mail):
    """GIVEN a browser session WHEN it posts without the CSRF token THEN 403;
    with the token from its cookie THEN the write goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        actors.deleter, backend="django.contrib.auth.backends.ModelBackend"
    )
    url = reverse("api:message-trash", kwargs={"key": "SALES", "id": mail.root.pk})
    refused = client.post(url)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get(reverse("api-tokens:token-list"))  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    assert client.post(url, headers={"x-csrftoken": csrf}).status_code == 204


def test_a_token_needs_no_csrf_token(actors, mail):
    client = Client(
        enforce_csrf_checks=True,
        headers={"authorization": f"Bearer {token_for(actors.deleter)}"},
    )
    url = reverse("api:message-trash", kwargs={"key": "SALES", "id": mail.root.pk})
    assert client.post(url).status_code == 204


def test_token_page_in_japanese(actors):
    text = (
        login_client(actors.viewer)
        .get(reverse("api-tokens:token-list"), headers={"accept-language": "ja"})
        .content.decode()
    )
    assert "あなたの API トークン" in text and "トークンを作成" in text
    assert "Your API tokens" not in text
