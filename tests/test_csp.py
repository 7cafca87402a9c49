"""Every page has a Content-Security-Policy, and no page needs inline code.

The site's default policy allows no inline script or style, so every
template must do without: no ``<script>`` without ``src``, no ``on…=``
handlers, no ``style=`` attributes, no ``<style>`` elements. The reading
pages and the files keep their own, stricter policies.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import MailAccount, PollRun
from mailarchive.middleware import DEFAULT_POLICY
from mailarchive.models import ImportJob
from tests.conftest import client_for, login_client
from tests.mailarchive.test_views import Mail, url
from tests.mailarchive.test_views import mail as mail  # noqa: F401 (fixture)

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[a-z][^>]*\sstyle\s*=|<style[\s>]", re.IGNORECASE)


def directives(policy: str) -> dict[str, str]:
    parts = (p.strip().split(" ", 1) for p in policy.split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


@pytest.fixture
def site(actors, mail: Mail):
    """Mail, an import, a mail account and a poll of the space."""
    job = ImportJob.objects.create(
        space=actors.space, origin="command", file_name="x.mbox", path="/none"
    )
    account = MailAccount.objects.create(
        space=actors.space,
        name="Sales",
        protocol="imaps",
        host="mail.example.com",
        port=993,
        username="u",
    )
    run = PollRun.objects.create(account=account, trigger="manual")
    return {"mail": mail, "job": job, "account": account, "run": run}


def pages(actors, site) -> dict[str, str]:
    """One address of every kind of page, as the site admin sees them."""
    key = actors.space.key
    mail: Mail = site["mail"]
    return {
        "dashboard": reverse("spaces:dashboard"),
        "space-home": reverse("spaces:space-home", kwargs={"key": key}),
        "permissions": reverse("spaces:space-permissions", kwargs={"key": key}),
        "space-create": reverse("spaces:space-create"),
        "mail-list": url("mail-list", key=key),
        "months": url("mail-months", key=key),
        "message": url("message-detail", key=key, message_pk=mail.files.pk),
        "thread": url("thread-detail", key=key, thread_id=mail.root.thread_id),
        "search": url("space-search", key=key) + "?q=report",
        "search-all": reverse("mailarchive:search") + "?q=report",
        "trash": url("trash", key=key),
        "delete-all": url("delete-all", key=key),
        "feed": url("feed", key=key),
        "feed-token": reverse("mailarchive:feed-token"),
        "time-zone": reverse("mailarchive:time-zone"),
        "imports": reverse("mbox:import-list", kwargs={"key": key}),
        "import": site["job"].get_absolute_url(),
        "import-status": reverse(
            "mbox:import-status", kwargs={"key": key, "import_id": site["job"].pk}
        ),
        "accounts": reverse("accounts:account-list", kwargs={"key": key}),
        "account-new": reverse("accounts:account-create", kwargs={"key": key}),
        "account-edit": reverse(
            "accounts:account-edit",
            kwargs={"key": key, "account_id": site["account"].pk},
        ),
        "poll-run": reverse(
            "accounts:poll-run", kwargs={"key": key, "poll_run_id": site["run"].pk}
        ),
        "report": reverse("accounts:report"),
        "fetching": reverse("accounts:fetch-settings"),
        "users": reverse("users:user-list"),
        "user-new": reverse("users:user-create"),
        "user-password": reverse("users:user-password", args=[actors.viewer.pk]),
        "password-change": reverse("users:password-change"),
        "admin": reverse("admin:index"),
        "admin-messages": reverse("admin:mailarchive_message_changelist"),
        "admin-message": reverse(
            "admin:mailarchive_message_change", args=[mail.files.pk]
        ),
        "admin-space": reverse("admin:spaces_space_change", args=[actors.space.pk]),
        "admin-user": reverse("admin:auth_user_change", args=[actors.viewer.pk]),
        "admin-user-add": reverse("admin:auth_user_add"),
        "not-found": "/no/such/page/",
        "export": reverse("mbox:export-space", kwargs={"key": key}),
        "raw": url("message-raw", key=key, message_pk=mail.files.pk),
        "attachment": url(
            "attachment-download", key=key, message_pk=mail.files.pk, position=1
        ),
    }


# Pages with a policy of their own, stricter than the default.
OWN_POLICY = {"mail-list", "months", "message", "thread", "search", "search-all"}
OWN_POLICY |= {"trash", "delete-all", "feed-token", "time-zone", "raw", "attachment"}


@pytest.mark.django_db
def test_every_page_has_a_policy_without_inline_code(actors, site):
    """GIVEN every kind of page WHEN it is fetched THEN it carries a
    Content-Security-Policy that lets no inline script run, from anywhere but
    the site, and its HTML holds no inline script, handler or style."""
    client = client_for(actors, "site_admin")
    client.raise_request_exception = False
    seen = []
    for name, address in pages(actors, site).items():
        response = client.get(address)
        assert response.status_code in (200, 404), name
        policy = response.get("Content-Security-Policy", "")
        assert policy, name
        rules = directives(policy)
        script = rules.get("script-src", rules.get("default-src", ""))
        assert "'unsafe-inline'" not in script and "*" not in script, name
        assert "'unsafe-hashes'" not in script, name
        if name not in OWN_POLICY:
            assert policy == DEFAULT_POLICY, name
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html"):
            body = response.content.decode()
            assert not INLINE_SCRIPT.search(body), name
            assert not INLINE_HANDLER.search(body), name
            if name != "message":  # its frame's srcdoc holds the mail's own styles
                assert not INLINE_STYLE.search(body), (name, INLINE_STYLE.search(body))
        seen.append(name)
    assert len(seen) == len(pages(actors, site))


@pytest.mark.django_db
def test_login_and_error_pages_have_the_default_policy(actors):
    anonymous = login_client(None)
    for address in (reverse("login"), "/no/such/page/", "/static/css/app.css"):
        assert anonymous.get(address)["Content-Security-Policy"] == DEFAULT_POLICY
    forbidden = client_for(actors, "viewer").get(url("trash", key="SALES"))
    assert forbidden.status_code == 403
    assert forbidden["Content-Security-Policy"] == DEFAULT_POLICY


def test_the_default_policy_is_strict():
    rules = directives(DEFAULT_POLICY)
    assert rules == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "frame-ancestors": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
    }


@pytest.mark.django_db
def test_a_policy_set_by_a_view_is_kept(actors, site):
    client = client_for(actors, "viewer")
    message = url("message-detail", key="SALES", message_pk=site["mail"].files.pk)
    policy = client.get(message)["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'")
    assert "style-src 'self' 'unsafe-inline'" in policy  # the mail's own layout


@pytest.mark.django_db
def test_pages_name_a_favicon_and_favicon_ico_finds_it(client):
    page = client.get("/login/").content.decode()
    assert 'rel="icon"' in page and "img/favicon.svg" in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("img/favicon.svg")


@pytest.mark.django_db
def test_an_ordinary_403_is_logged_as_one_line_without_traceback(caplog):
    from django.test import Client

    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(username="plain-member"))
    with caplog.at_level("WARNING", logger="django.request"):
        response = client.get("/spaces/new/")
    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert "Forbidden" in record.getMessage()
    assert record.exc_info is None
