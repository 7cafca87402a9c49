"""OAuth2 mail accounts end to end: the session's real provider, the real Dovecot.

Sign-ins go through the provider's own pages over HTTP (the authorization
code with PKCE and state, or the device code), polls sign in to Dovecot with
the access tokens it issued, refreshes and revocations happen at the
provider.
"""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.crypto import secret_decrypt
from accounts.models import MailAccount, PollRun
from accounts.selectors import mail_accounts_due
from accounts.services import (
    mail_account_create,
    mail_account_poll,
    mail_account_signin_finish,
    mail_account_signin_start,
    mail_account_test,
    mail_account_update,
    oauth2_access_token_get,
)
from accounts.services.signin import SignInNeededError
from tests.accounts.conftest import (
    BOOTSTRAP,
    PORT_ATTRIBUTES,
    PROJECT_DIR,
    archived_raws,
    child_env,
    source_messages,
)
from tests.factories import SpaceFactory
from tests.oauth2_server import CALLBACK_PATH, CLIENT_ID, CLIENT_SECRET

REDIRECT_URI = f"http://localhost:8000{CALLBACK_PATH}"


@pytest.fixture
def provider_user(oauth2_provider, mail_user):
    """The mail user, known to the provider with the same password."""
    oauth2_provider.add_user(mail_user.username, mail_user.password)
    return mail_user


def oauth2_account(dovecot, user, protocol="imaps", **fields) -> MailAccount:
    return mail_account_create(
        space=fields.pop("space", None) or SpaceFactory(),
        name=fields.pop("name", f"{user.username} ({protocol}, OAuth2)"),
        protocol=protocol,
        host=dovecot.host,
        port=getattr(dovecot, PORT_ATTRIBUTES[protocol]),
        username=user.username,
        auth_method=MailAccount.AuthMethod.CUSTOM,
        **fields,
    )


def provider_consent(url: str, username: str, password: str, decision="allow"):
    """Approve (or deny) at the provider's page, as a person would; returns the
    query of the redirect back to the archive."""
    with requests.Session() as browser:
        assert browser.get(url, timeout=10).status_code == 200
        answer = browser.post(
            url,
            data={"username": username, "password": password, "decision": decision},
            allow_redirects=False,
            timeout=10,
        )
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(account: MailAccount, username: str, password: str) -> MailAccount:
    started = mail_account_signin_start(account=account, redirect_uri=REDIRECT_URI)
    query = urlsplit(started.url).query
    assert "code_challenge_method=S256" in query
    assert "code_challenge=" in query
    assert started.code_verifier not in started.url
    back = provider_consent(started.url, username, password)
    assert back["state"] == started.state
    return mail_account_signin_finish(
        account=account,
        code=back["code"],
        code_verifier=started.code_verifier,
        redirect_uri=REDIRECT_URI,
    )


def poll(account: MailAccount):
    return mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)


def expire_access_token(account: MailAccount, left: timedelta = timedelta(0)) -> None:
    """Let time pass: the stored access token is (nearly) used up."""
    MailAccount.objects.filter(pk=account.pk).update(
        oauth2_access_token_expires_at=timezone.now() + left
    )


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_signed_in_account_polls_with_its_access_token(
    dovecot, provider_user, oauth2_provider, mail_settings, protocol
):
    account = oauth2_account(dovecot, provider_user, protocol)
    assert account.signin_needed
    assert account.pk not in list(mail_accounts_due())
    account = sign_in(account, provider_user.username, provider_user.password)
    assert not account.signin_needed
    assert account.oauth2_signed_in_as == provider_user.username
    stored = MailAccount.objects.get(pk=account.pk)
    refresh = secret_decrypt(stored.oauth2_refresh_token_encrypted)
    assert refresh in oauth2_provider.refresh_tokens
    # Encrypted at rest: neither token appears in the row as it is.
    assert refresh not in stored.oauth2_refresh_token_encrypted
    assert stored.password_encrypted == ""

    source = source_messages(6, tag=f"oauth2-{protocol}")
    dovecot.deliver_many(provider_user.username, source)
    summary = poll(account)
    assert summary.status == PollRun.Status.OK, summary.error
    assert summary.fetched == 6
    assert dovecot.message_count(provider_user.username) == 0
    assert sorted(archived_raws(account.space)) == sorted(source)
    assert mail_account_test(account).ok


@pytest.mark.django_db
def test_access_token_is_refreshed_before_it_expires_and_rotation_is_stored(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    account = sign_in(
        oauth2_account(dovecot, provider_user),
        provider_user.username,
        provider_user.password,
    )
    first = MailAccount.objects.get(pk=account.pk)
    before = oauth2_provider.refresh_count
    assert poll(account).status == PollRun.Status.OK
    assert oauth2_provider.refresh_count == before, "a fresh token is not refreshed"

    expire_access_token(account, timedelta(minutes=2))
    dovecot.deliver_many(provider_user.username, source_messages(2, tag="refresh"))
    summary = poll(account)
    assert summary.status == PollRun.Status.OK, summary.error
    assert summary.fetched == 2
    assert oauth2_provider.refresh_count == before + 1
    second = MailAccount.objects.get(pk=account.pk)
    old_refresh = secret_decrypt(first.oauth2_refresh_token_encrypted)
    new_refresh = secret_decrypt(second.oauth2_refresh_token_encrypted)
    assert new_refresh != old_refresh, "the rotated refresh token is stored"
    assert second.oauth2_access_token_expires_at > timezone.now() + timedelta(
        minutes=30
    )

    # Using the new refresh token retires the old one at the provider.
    expire_access_token(account)
    assert oauth2_access_token_get(account_id=account.pk)
    assert oauth2_provider.valid_refresh_token(old_refresh) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_polls_never_refresh_twice(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    account = sign_in(
        oauth2_account(dovecot, provider_user),
        provider_user.username,
        provider_user.password,
    )
    expire_access_token(account)
    oauth2_provider.refresh_delay = 1.0
    before = oauth2_provider.refresh_count
    tokens: list[str] = []
    errors: list[BaseException] = []

    def fetch_token() -> None:
        try:
            tokens.append(oauth2_access_token_get(account_id=account.pk))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch_token) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert oauth2_provider.refresh_count == before + 1
    assert len(set(tokens)) == 1


@pytest.mark.django_db
def test_revoked_grant_needs_sign_in_then_polling_resumes_losing_nothing(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    """GIVEN a signed-in account that archived mail
    WHEN the person removes the app at the provider and the access token expires
    THEN the account is "Sign-in needed", is not polled nor sent to the
         provider again, and after signing in again the rest of the mail is
         archived, nothing twice.
    """
    account = sign_in(
        oauth2_account(dovecot, provider_user),
        provider_user.username,
        provider_user.password,
    )
    source = source_messages(5, tag="revoked")
    dovecot.deliver_many(provider_user.username, source[:3])
    assert poll(account).fetched == 3

    assert oauth2_provider.revoke_user(provider_user.username) == 1
    dovecot.deliver_many(provider_user.username, source[3:])
    expire_access_token(account)
    summary = poll(account)
    assert summary.status == PollRun.Status.FAILED
    assert summary.error_kind == "signin_needed"
    assert summary.error.startswith("Sign-in needed")
    stored = MailAccount.objects.get(pk=account.pk)
    assert stored.signin_needed
    assert stored.oauth2_refresh_token_encrypted == ""
    assert stored.pk not in list(mail_accounts_due())
    assert dovecot.message_count(provider_user.username) == 2

    asked = oauth2_provider.refresh_count
    assert poll(account).error_kind == "signin_needed"
    assert not mail_account_test(stored).ok
    assert oauth2_provider.refresh_count == asked, "no retry storm"

    account = sign_in(stored, provider_user.username, provider_user.password)
    assert account.pk in list(mail_accounts_due())
    summary = poll(account)
    assert summary.status == PollRun.Status.OK, summary.error
    assert summary.fetched == 2
    assert sorted(archived_raws(account.space)) == sorted(source)
    assert MailAccount.objects.get(pk=account.pk).last_error_kind == ""


@pytest.mark.django_db
def test_signing_in_as_another_mailbox_is_refused(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    oauth2_provider.add_user("someone-else", "their-password")
    account = oauth2_account(dovecot, provider_user)
    with pytest.raises(ValidationError) as refused:
        sign_in(account, "someone-else", "their-password")
    assert (
        f"You signed in as someone-else, but this account reads the mailbox "
        f"{provider_user.username}" in refused.value.messages[0]
    )
    stored = MailAccount.objects.get(pk=account.pk)
    assert stored.signin_needed
    assert stored.oauth2_refresh_token_encrypted == ""
    # The unwanted grant was revoked at the provider (RFC 7009).
    assert oauth2_provider.grants_of("someone-else") == set()


@pytest.mark.django_db
def test_denied_consent_and_a_reused_code_store_nothing(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    account = oauth2_account(dovecot, provider_user)
    started = mail_account_signin_start(account=account, redirect_uri=REDIRECT_URI)
    back = provider_consent(
        started.url, provider_user.username, provider_user.password, "deny"
    )
    assert back["error"] == "access_denied"
    account = sign_in(account, provider_user.username, provider_user.password)
    started = mail_account_signin_start(account=account, redirect_uri=REDIRECT_URI)
    back = provider_consent(started.url, provider_user.username, provider_user.password)
    mail_account_signin_finish(
        account=account,
        code=back["code"],
        code_verifier=started.code_verifier,
        redirect_uri=REDIRECT_URI,
    )
    from accounts.providers import ProviderError

    with pytest.raises(ProviderError, match="invalid_grant|invalid_request"):
        mail_account_signin_finish(
            account=account,
            code=back["code"],
            code_verifier=started.code_verifier,
            redirect_uri=REDIRECT_URI,
        )
    with pytest.raises(ProviderError):
        other = mail_account_signin_start(account=account, redirect_uri=REDIRECT_URI)
        code = provider_consent(
            other.url, provider_user.username, provider_user.password
        )["code"]
        mail_account_signin_finish(
            account=account,
            code=code,
            code_verifier="not-the-verifier-" + "x" * 40,
            redirect_uri=REDIRECT_URI,
        )


@pytest.mark.django_db
def test_pointing_the_account_elsewhere_needs_signing_in_again(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    account = sign_in(
        oauth2_account(dovecot, provider_user),
        provider_user.username,
        provider_user.password,
    )
    account = mail_account_update(account=account, changes={"description": "x"})
    assert not account.signin_needed
    account = mail_account_update(
        account=account, changes={"port": dovecot.pop3s_port, "protocol": "pops"}
    )
    assert account.signin_needed
    assert account.oauth2_refresh_token_encrypted == ""
    with pytest.raises(SignInNeededError):
        oauth2_access_token_get(account_id=account.pk)
    with pytest.raises(ValidationError, match="has no password"):
        mail_account_update(account=account, changes={}, password="pw")


def _run_addmailaccount(args: list[str], out: io.StringIO, err: io.StringIO, result):
    try:
        call_command("addmailaccount", *args, stdout=out, stderr=err)
        result.append(0)
    except CommandError as error:
        result.append(error.returncode)
        err.write(str(error))
    finally:
        connection.close()


def _add_args(dovecot, user) -> list[str]:
    return [
        "--space",
        "SALES",
        "--name",
        "Sales (device)",
        "--protocol",
        "pops",
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.pop3s_port),
        "--username",
        user.username,
        "--auth",
        "oauth2",
        "--provider",
        "custom",
    ]


@pytest.mark.django_db(transaction=True)
def test_addmailaccount_signs_in_with_the_device_code(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    SpaceFactory(key="SALES")
    out, err, result = io.StringIO(), io.StringIO(), []
    command = threading.Thread(
        target=_run_addmailaccount,
        args=(_add_args(dovecot, provider_user), out, err, result),
    )
    command.start()
    deadline = time.monotonic() + 20
    while not (
        found := re.search(r"open (\S+) and enter the code (\S+?)[ .]", err.getvalue())
    ):
        assert time.monotonic() < deadline, err.getvalue()
        time.sleep(0.05)
    address, code = found.groups()
    assert address == f"{oauth2_provider.url}/device"
    # The person approves at the provider's page.
    approved = requests.post(
        address,
        data={
            "user_code": code,
            "username": provider_user.username,
            "password": provider_user.password,
            "decision": "allow",
        },
        timeout=10,
    )
    assert approved.status_code == 200
    command.join(timeout=30)
    assert result == [0], err.getvalue()
    account = MailAccount.objects.get(pk=int(out.getvalue().strip()))
    assert account.auth_method == "custom" and not account.signin_needed
    assert f"Signed in as {provider_user.username}" in err.getvalue()
    dovecot.deliver_many(provider_user.username, source_messages(2, tag="device"))
    assert poll(account).fetched == 2


@pytest.mark.django_db(transaction=True)
def test_addmailaccount_exits_1_when_the_code_expires(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    SpaceFactory(key="SALES")
    oauth2_provider.device_code_lifetime = 2
    out, err, result = io.StringIO(), io.StringIO(), []
    _run_addmailaccount(_add_args(dovecot, provider_user), out, err, result)
    assert result == [1]
    assert "expired" in err.getvalue()
    assert out.getvalue() == ""
    assert not MailAccount.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_poll_killed_during_a_token_refresh_does_not_lose_the_grant(
    dovecot, provider_user, oauth2_provider, mail_settings
):
    """GIVEN an account whose access token has expired
    WHEN fetchmail is killed (SIGKILL) while the provider holds back its answer
         to the refresh, having already rotated the refresh token
    THEN the next poll still signs in and archives everything once.
    """
    account = sign_in(
        oauth2_account(dovecot, provider_user),
        provider_user.username,
        provider_user.password,
    )
    source = source_messages(4, tag="killed-refresh")
    dovecot.deliver_many(provider_user.username, source)
    expire_access_token(account)
    stored_before = MailAccount.objects.get(
        pk=account.pk
    ).oauth2_refresh_token_encrypted
    rotations = oauth2_provider.refresh_count
    oauth2_provider.refresh_delay = 60.0
    env = child_env(dovecot)
    env.update(
        MAILARCHIVE_OAUTH2_CUSTOM_ISSUER=oauth2_provider.url,
        MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_ID=CLIENT_ID,
        MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_SECRET=CLIENT_SECRET,
    )
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                BOOTSTRAP,
                "fetchmail",
                "--account",
                str(account.pk),
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            arrived = oauth2_provider.refresh_started.wait(timeout=60)
            log.seek(0)
            assert arrived, log.read().decode(errors="replace")
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert oauth2_provider.refresh_count == rotations + 1, "the provider rotated"
    assert (
        MailAccount.objects.get(pk=account.pk).oauth2_refresh_token_encrypted
        == stored_before
    ), "the killed refresh stored nothing"

    oauth2_provider.refresh_delay = 0.0
    summary = poll(account)
    assert summary.status == PollRun.Status.OK, summary.error
    assert summary.fetched == 4
    assert sorted(archived_raws(account.space)) == sorted(source)
    assert not MailAccount.objects.get(pk=account.pk).signin_needed
