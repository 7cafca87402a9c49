"""Sign-in pages: the providers page, the sign-in redirect, the callback."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from accounts.models import MailAccount
from accounts.services import mail_account_create
from tests.conftest import login_client
from tests.factories import SpaceFactory, SuperUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def microsoft(settings):
    settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_ID = "app-id"
    settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_SECRET = "app-secret-value"
    settings.MAILARCHIVE_OAUTH2_MICROSOFT_TENANT = "contoso.onmicrosoft.com"
    return settings


def microsoft_account(space) -> MailAccount:
    return mail_account_create(
        space=space,
        name="Sales (M365)",
        protocol="imaps",
        host="outlook.office365.com",
        username="conf-sales@contoso.onmicrosoft.com",
        auth_method="microsoft",
    )


def test_providers_page_is_for_site_admins_and_names_the_redirect_uri(microsoft):
    url = reverse("accounts:providers")
    assert login_client(UserFactory()).get(url).status_code == 403
    page = login_client(SuperUserFactory()).get(url)
    text = page.content.decode()
    assert "http://testserver/accounts/oauth2/callback/" in text
    assert "app-id" in text
    assert "app-secret-value" not in text
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in text
    assert "MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_ID" in text


def test_sign_in_goes_to_the_provider_with_pkce_and_state(microsoft):
    space = SpaceFactory()
    account = microsoft_account(space)
    assert account.signin_needed and account.port == 993
    client = login_client(SuperUserFactory())
    answer = client.post(
        reverse(
            "accounts:account-signin",
            kwargs={"key": space.key, "account_id": account.pk},
        )
    )
    # A page that goes on to the provider, not a redirect: the page policy's
    # form-action would stop a redirect that follows a form post.
    assert answer.status_code == 200
    location = html.unescape(
        re.search(r'id="signin-continue" href="([^"]+)"', answer.text).group(1)
    )
    target = urlsplit(location)
    assert target.netloc == "login.microsoftonline.com"
    assert target.path == "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "http://testserver/accounts/oauth2/callback/"
    assert "https://outlook.office.com/POP.AccessAsUser.All" in query["scope"]
    assert "offline_access" in query["scope"]
    assert query["login_hint"] == account.username
    pending = client.session["accounts.oauth2_signins"]
    assert list(pending) == [query["state"]]
    assert pending[query["state"]]["code_verifier"] not in answer.text

    # Coming back without consent says what to do and stores nothing.
    back = client.get(
        reverse("accounts:oauth2-callback"),
        {"state": query["state"], "error": "consent_required"},
        follow=True,
    )
    assert "an administrator of the organisation must consent" in (
        back.content.decode()
    )
    assert MailAccount.objects.get(pk=account.pk).signin_needed


def test_callback_refuses_a_state_this_session_did_not_start(microsoft):
    client = login_client(SuperUserFactory())
    answer = client.get(
        reverse("accounts:oauth2-callback"), {"state": "forged", "code": "x"}
    )
    assert answer.status_code == 400
    assert "Sign-in not recognised" in answer.content.decode()


def test_sign_in_needed_is_shown_and_fetching_waits_for_it(microsoft):
    space = SpaceFactory()
    account = microsoft_account(space)
    client = login_client(SuperUserFactory())
    page = client.get(reverse("accounts:account-list", kwargs={"key": space.key}))
    text = page.content.decode()
    assert "Sign-in needed" in text and "Sign in again" in text
    assert "Fetch new mail" not in text
    refused = client.post(
        reverse(
            "accounts:account-fetch",
            kwargs={"key": space.key, "account_id": account.pk},
        ),
        follow=True,
    )
    assert "needs someone to sign in" in refused.content.decode()
    report = client.get(reverse("accounts:report")).content.decode()
    assert "Sign-in needed" in report


def test_unconfigured_providers_are_not_offered(settings):
    space = SpaceFactory()
    form = login_client(SuperUserFactory()).get(
        reverse("accounts:account-create", kwargs={"key": space.key})
    )
    assert "Microsoft 365" not in form.content.decode()
    with pytest.raises(Exception, match="not registered"):
        microsoft_account(space)
