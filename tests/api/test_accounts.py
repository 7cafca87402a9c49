"""Mail accounts through the API: health, changes through the services,
connection tests and "fetch now" against the test Dovecot; passwords never
come back."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.crypto import password_decrypt
from accounts.models import MailAccount, PollRun
from accounts.services import mail_account_create, mail_account_poll
from mailarchive.models import Message
from spaces.models import AuditEvent
from tests.accounts.conftest import mail_settings, source_messages  # noqa: F401
from tests.api.conftest import bearer, token_for
from tests.factories import PersonalSpaceFactory

pytestmark = pytest.mark.django_db
SECRET = "Pa55-unusual-Secret-7731"


def api(name: str, **kwargs) -> str:
    return reverse(f"api:{name}", kwargs={"key": "SALES", **kwargs})


@pytest.fixture
def admin(actors):
    return bearer(token_for(actors.admin))


def post(client, url: str, data: dict | None = None):
    return client.post(url, data or {}, content_type="application/json")


def patch(client, url: str, data: dict):
    return client.patch(url, data, content_type="application/json")


def test_create_defaults_the_port_and_never_returns_the_password(admin, settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    response = post(
        admin,
        api("mail-account-list"),
        {
            "name": "Sales (clone)",
            "protocol": "imaps",
            "host": "127.0.0.1",
            "username": "sales",
            "password": SECRET,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == body["url"]
    assert (body["port"], body["folder"], body["enabled"]) == (993, "INBOX", True)
    assert body["health"]["consecutive_failures"] == 0
    assert body["latest_run"] is None and body["sends_password_in_clear"] is False
    account = MailAccount.objects.get(pk=body["id"])
    assert password_decrypt(account.password_encrypted) == SECRET
    assert AuditEvent.objects.filter(action="mail_account.create").exists()
    for answer in (
        response,
        admin.get(api("mail-account-list")),
        admin.get(api("mail-account-detail", id=account.pk)),
    ):
        text = answer.content.decode()
        assert SECRET not in text and account.password_encrypted not in text
        assert "password" not in json.loads(text).get("results", [json.loads(text)])[0]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"protocol": "imaps", "starttls": True}, "starttls"),
        ({"name": "Taken"}, "non_field_errors"),
        ({"port": 70000}, "port"),
        ({"host": "mail example org"}, "host"),
        ({"protocol": "smtp"}, "protocol"),
        ({"password": ""}, "password"),
        ({"lease_owner": "me"}, "lease_owner"),
    ],
    ids=[
        "starttls-with-imaps",
        "taken",
        "port",
        "host",
        "protocol",
        "password",
        "unknown",
    ],
)
def test_create_refuses_bad_input_as_a_problem(actors, admin, changes, field):
    mail_account_create(
        space=actors.space,
        name="Taken",
        protocol="imap",
        host="mail.example.org",
        username="u",
        password="p",
    )
    data = {
        "name": "New",
        "protocol": "imap",
        "host": "mail.example.org",
        "username": "u",
        "password": "p",
        **changes,
    }
    response = post(admin, api("mail-account-list"), data)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"], response.json()
    assert MailAccount.objects.count() == 1


def test_personal_spaces_have_no_mail_accounts(actors):
    space = PersonalSpaceFactory(owner=actors.viewer, key="MINE")
    client = bearer(token_for(actors.viewer))
    url = reverse("api:mail-account-list", kwargs={"key": space.key})
    assert client.get(url).json() == {"results": []}
    response = post(
        client,
        url,
        {
            "name": "x",
            "protocol": "imaps",
            "host": "h.example",
            "username": "u",
            "password": "p",
        },
    )
    assert response.status_code == 400
    assert "personal space" in response.json()["detail"]


def test_update_changes_only_what_is_given_through_the_service(actors, admin):
    account = mail_account_create(
        space=actors.space,
        name="Sales",
        protocol="imaps",
        host="mail.example.org",
        username="sales",
        password=SECRET,
    )
    stored = account.password_encrypted
    response = patch(
        admin, api("mail-account-detail", id=account.pk), {"name": "Renamed"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    account.refresh_from_db()
    assert (account.name, account.host) == ("Renamed", "mail.example.org")
    assert account.password_encrypted == stored
    event = AuditEvent.objects.get(action="mail_account.update")
    assert event.detail["changed"] == ["name"]
    patch(admin, api("mail-account-detail", id=account.pk), {"password": "new"})
    account.refresh_from_db()
    assert password_decrypt(account.password_encrypted) == "new"
    bad = patch(admin, api("mail-account-detail", id=account.pk), {"port": 0})
    assert bad.status_code == 400 and "port" in bad.json()["errors"]


def test_enable_disable_and_delete(actors, admin):
    account = mail_account_create(
        space=actors.space,
        name="Sales",
        protocol="imaps",
        host="mail.example.org",
        username="sales",
        password=SECRET,
    )
    url = api("mail-account-enabled", id=account.pk)
    assert post(admin, url, {"enabled": False}).json()["enabled"] is False
    assert AuditEvent.objects.filter(action="mail_account.disable").count() == 1
    assert post(admin, url, {"enabled": True}).json()["enabled"] is True
    assert post(admin, url, {}).status_code == 400
    assert admin.delete(api("mail-account-detail", id=account.pk)).status_code == 204
    assert admin.get(api("mail-account-detail", id=account.pk)).status_code == 404


def test_connection_test_reports_in_words(actors, admin, settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    account = mail_account_create(
        space=actors.space,
        name="Sales",
        protocol="imaps",
        host="127.0.0.1",
        username="sales",
        password=SECRET,
    )
    body = post(admin, api("mail-account-test", id=account.pk)).json()
    assert body["ok"] is False and body["message_count"] is None
    assert body["kind"] and "MAILARCHIVE_ALLOWED_MAIL_HOSTS" in body["detail"]


def test_fetch_now_queues_a_poll_to_follow(
    actors,
    admin,
    dovecot,
    mail_user,
    mail_settings,  # noqa: F811
):
    """GIVEN an account on the test Dovecot with three messages WHEN fetch now
    is asked THEN a queued poll comes back at once; once it ran, following its
    URL shows it done with what it fetched, and the health shows it too."""
    dovecot.deliver_many(mail_user.username, source_messages(3, tag="api"))
    account = mail_account_create(
        space=actors.space,
        name="Support",
        protocol="imaps",
        host=dovecot.host,
        port=dovecot.imaps_port,
        username=mail_user.username,
        password=mail_user.password,
    )
    test = post(admin, api("mail-account-test", id=account.pk)).json()
    assert test["ok"] is True and test["message_count"] == 3
    response = post(admin, api("mail-account-fetch", id=account.pk))
    assert response.status_code == 202
    queued = response.json()
    assert response["Location"] == queued["url"]
    assert (queued["status"], queued["done"], queued["trigger"]) == (
        "queued",
        False,
        "manual",
    )
    mail_account_poll(
        account_id=account.pk, trigger=PollRun.Trigger.MANUAL, poll_run_id=queued["id"]
    )
    done = admin.get(queued["url"]).json()
    assert (done["status"], done["done"], done["fetched"]) == ("ok", True, 3)
    assert "3" in done["summary"]
    assert Message.objects.filter(space=actors.space).count() == 3
    listed = admin.get(api("mail-account-list")).json()["results"][0]
    assert listed["latest_run"]["id"] == queued["id"]
    assert listed["health"]["last_success_at"] is not None


def test_fetch_now_conflicts_when_fetching_is_off(actors, admin, settings):
    account = mail_account_create(
        space=actors.space,
        name="Sales",
        protocol="imaps",
        host="mail.example.org",
        username="sales",
        password=SECRET,
        enabled=False,
    )
    settings.MAILARCHIVE_FETCH_DISABLED = False
    disabled = post(admin, api("mail-account-fetch", id=account.pk))
    assert disabled.status_code == 409
    assert "disabled" in disabled.json()["detail"]
    settings.MAILARCHIVE_FETCH_DISABLED = True
    account.enabled = True
    account.save()
    off = post(admin, api("mail-account-fetch", id=account.pk))
    assert off.status_code == 409
    assert "MAILARCHIVE_FETCH_DISABLED" in off.json()["detail"]
    assert not PollRun.objects.exists()


def test_unknown_account_and_poll_run_are_translated_404s(admin):
    for url in (api("mail-account-detail", id=999), api("poll-run-detail", id=999)):
        body = admin.get(url, headers={"accept-language": "ja"}).json()
        assert body["status"] == 404
        assert not body["detail"].isascii()


def test_an_oauth2_account_is_created_waiting_with_the_address_that_signs_it_in(
    admin, settings
):
    """GIVEN Microsoft 365 configured WHEN a space admin adds an account that
    signs in with it THEN it waits in "Sign-in needed", no password is asked,
    and signin_url starts the provider's sign-in in a browser."""
    settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_ID = "app-id"
    settings.MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_SECRET = "app-secret-value"
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    response = post(
        admin,
        api("mail-account-list"),
        {
            "name": "Sales (M365)",
            "protocol": "imaps",
            "host": "outlook.office365.com",
            "username": "conf-sales@contoso.onmicrosoft.com",
            "auth_method": "microsoft",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["auth_method"], body["auth_state"]) == ("microsoft", "signin_needed")
    assert body["signin_url"].endswith(
        reverse(
            "accounts:account-signin", kwargs={"key": "SALES", "account_id": body["id"]}
        )
    )
    assert "app-secret-value" not in response.content.decode()


def test_a_password_account_needs_its_password(admin, settings):
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    response = post(
        admin,
        api("mail-account-list"),
        {
            "name": "No password",
            "protocol": "imaps",
            "host": "127.0.0.1",
            "username": "sales",
        },
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert not MailAccount.objects.filter(name="No password").exists()
