"""Acceptance in headless Chromium: a space admin adds an account that signs in
with the site's custom OAuth2 provider (the session's real test provider),
fetches mail, loses the grant at the provider, sees "Sign-in needed", signs
in again with one click and fetches the rest.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.crypto import secret_decrypt
from accounts.models import MailAccount
from tests.accounts.conftest import archived_raws, source_messages
from tests.browser.fixtures import log_in
from tests.conftest import login_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def consent(page, provider, user) -> None:
    """At the provider's page: the person signs in and allows the archive."""
    page.wait_for_url(re.compile(re.escape(provider.url) + r"/authorize\?"))
    assert page.input_value("input[name=username]") == user.username
    page.fill("input[name=password]", user.password)
    page.click("button[value=allow]")


def fetch_and_wait(page, live_server, worker) -> str:
    page.goto(f"{live_server.url}/spaces/SALES/accounts/")
    page.click("text=Fetch new mail")
    page.wait_for_url(re.compile(r"/accounts/polls/\d+/$"))
    worker.set()
    page.wait_for_function(
        "() => document.getElementById('poll-run').dataset.done === '1'",
        timeout=60_000,
    )
    return page.inner_text("#poll-run-sentence")


def test_custom_provider_sign_in_fetch_revoke_and_sign_in_again(
    actors,
    dovecot,
    mail_user,
    mail_settings,
    oauth2_provider,
    live_server,
    context,
    worker,
):
    oauth2_provider.add_user(mail_user.username, mail_user.password)
    source = source_messages(5, tag="browser-oauth2")
    dovecot.deliver_many(mail_user.username, source[:3])
    page = context.new_page()
    log_in(page, live_server.url, "spaceadmin")
    page.goto(f"{live_server.url}/spaces/SALES/accounts/new/")
    page.fill("input[name=name]", "Sales (OAuth2)")
    page.select_option("select[name=auth_method]", "custom")
    assert not page.is_visible("input[name=password]")
    page.select_option("select[name=protocol]", "imaps")
    page.fill("input[name=host]", "127.0.0.1")
    page.fill("input[name=port]", str(dovecot.imaps_port))
    page.fill("input[name=username]", mail_user.username)
    page.click("text=Save and test")

    consent(page, oauth2_provider, mail_user)
    page.wait_for_url(re.compile(r"/spaces/SALES/accounts/\d+/edit/$"))
    flash = page.inner_text(".flash")
    assert f"signed in as {mail_user.username}" in flash
    assert "holds 3 messages" in flash
    assert f"as {mail_user.username}" in page.inner_text("#oauth2-state")

    assert fetch_and_wait(page, live_server, worker) == (
        "Sales (OAuth2) retrieved 3 new messages"
    )

    # The person removes the app at the provider; an hour later the access
    # token runs out.
    page.goto(f"{oauth2_provider.url}/apps?user={mail_user.username}")
    page.click("text=Remove access")
    assert "Access removed (1)" in page.inner_text("#removed")
    dovecot.deliver_many(mail_user.username, source[3:])
    MailAccount.objects.update(oauth2_access_token_expires_at=timezone.now())

    sentence = fetch_and_wait(page, live_server, worker)
    assert sentence.startswith("Sales (OAuth2) failed: Sign-in needed")
    page.click("text=Back to the mail accounts")
    row = page.inner_text("table.table tbody tr")
    assert "Sign-in needed" in row
    assert not page.is_visible("text=Fetch new mail")
    report = login_client(actors.site_admin).get("/site/mail-accounts/")
    assert "Sign-in needed" in report.content.decode()

    page.click("text=Sign in again")
    consent(page, oauth2_provider, mail_user)
    page.wait_for_url(re.compile(r"/spaces/SALES/accounts/\d+/edit/$"))
    assert f"signed in as {mail_user.username}" in page.inner_text(".flash")

    assert fetch_and_wait(page, live_server, worker) == (
        "Sales (OAuth2) retrieved 2 new messages"
    )
    assert sorted(archived_raws(actors.space)) == sorted(source)
    account = MailAccount.objects.get()
    for secret in (
        account.oauth2_refresh_token_encrypted,
        account.oauth2_access_token_encrypted,
    ):
        assert secret and secret_decrypt(secret) not in page.content()
    assert dovecot.message_count(mail_user.username) == 0
    expires = account.oauth2_access_token_expires_at
    assert expires > timezone.now() + timedelta(minutes=30)
