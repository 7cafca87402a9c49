"""Beat dispatch, the poll task's retries, and "Fetch new mail" end to end."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import tasks
from accounts.models import MailAccount, PollRun
from accounts.services import (
    fetch_settings_set,
    mail_account_create,
    mail_accounts_poll_due_dispatch,
)
from mailarchive.celery import app as celery_app
from tests.accounts.conftest import source_messages
from tests.conftest import login_client
from tests.factories import PersonalSpaceFactory, SpaceFactory, SuperUserFactory


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every poll task handed to the broker, instead of the broker."""
    calls: list[dict] = []

    def record(args=None, kwargs=None, **options):
        calls.append({"args": tuple(args or ()), **options})

    monkeypatch.setattr(tasks.mail_account_poll_task, "apply_async", record)
    return calls


def _account(space, name: str, enabled: bool = True) -> MailAccount:
    return mail_account_create(
        space=space,
        name=name,
        protocol="imaps",
        host="mail.example.org",
        username=name,
        password="secret",
        enabled=enabled,
    )


@pytest.fixture
def accounts(db):
    space = SpaceFactory()
    enabled = [_account(space, "one"), _account(space, "two")]
    _account(space, "off", enabled=False)
    personal = PersonalSpaceFactory()
    # Created behind the service's back: the schedule must still skip it.
    MailAccount.objects.create(
        space=personal,
        name="personal",
        protocol="imaps",
        host="mail.example.org",
        port=993,
        username="u",
        password_encrypted="x",
    )
    return enabled


def test_beat_queues_one_poll_per_enabled_global_account_after_commit(
    accounts, sent, settings, django_capture_on_commit_callbacks
):
    settings.MAILARCHIVE_POLL_INTERVAL = 1800
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queued = tasks.mail_accounts_poll_due()
        assert sent == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    assert queued == 2
    assert sorted(call["args"][0] for call in sent) == sorted(a.pk for a in accounts)
    assert all(call["args"][1:] == ("schedule", None) for call in sent)
    assert all(0 < call["expires"] < 1800 for call in sent)


def test_switch_off_queues_nothing(accounts, sent, django_capture_on_commit_callbacks):
    fetch_settings_set(automatic_polling=False, actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.mail_accounts_poll_due() == 0
    assert sent == []
    fetch_settings_set(automatic_polling=True, actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.mail_accounts_poll_due() == 2
    assert len(sent) == 2


def test_fetch_disabled_queues_nothing(
    accounts, sent, settings, django_capture_on_commit_callbacks
):
    settings.MAILARCHIVE_FETCH_DISABLED = True
    with django_capture_on_commit_callbacks(execute=True):
        assert mail_accounts_poll_due_dispatch() == 0
    assert sent == []


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


@pytest.mark.django_db
def test_network_failures_are_retried(dovecot, mail_user, make_account, eager):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    account = make_account(mail_user, "imap", port=port)

    result = tasks.mail_account_poll_task.apply(args=(account.pk, "schedule", None))

    assert result.failed()
    account.refresh_from_db()
    # The first attempt and every retry each recorded their failure.
    assert account.consecutive_failures == 1 + tasks.mail_account_poll_task.max_retries
    assert account.last_error_kind == "connection_refused"


@pytest.mark.django_db
def test_rejected_login_is_not_retried(dovecot, mail_user, make_account, eager):
    account = make_account(mail_user, "imaps", password="wrong")
    result = tasks.mail_account_poll_task.apply(args=(account.pk, "schedule", None))
    assert result.successful()
    assert "failed" in result.get()
    account.refresh_from_db()
    assert account.consecutive_failures == 1


@pytest.mark.django_db
def test_fetch_new_mail_queues_then_shows_the_result(
    dovecot, mail_user, make_account, eager, django_capture_on_commit_callbacks
):
    dovecot.deliver_many(mail_user.username, source_messages(12, tag="button"))
    account = make_account(mail_user, "imaps", name="Sales (clone)")
    admin = SuperUserFactory()
    client = login_client(admin)
    key = account.space.key

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse(
                "accounts:account-fetch", kwargs={"key": key, "account_id": account.pk}
            )
        )
    run = PollRun.objects.get(account=account)
    assert response.status_code == 302
    assert response.url == reverse(
        "accounts:poll-run", kwargs={"key": key, "poll_run_id": run.pk}
    )
    assert (run.status, run.trigger, run.requested_by) == ("queued", "manual", admin)
    status_url = reverse(
        "accounts:poll-run-status", kwargs={"key": key, "poll_run_id": run.pk}
    )
    queued = client.get(status_url).json()
    assert (queued["status"], queued["done"]) == ("queued", False)
    assert "waiting" in client.get(response.url).content.decode()

    for callback in callbacks:
        callback()

    done = client.get(status_url).json()
    assert done["done"] is True
    assert done["sentence"] == "Sales (clone) retrieved 12 new messages"
    page = client.get(response.url).content.decode()
    assert "Sales (clone) retrieved 12 new messages" in page
    assert dovecot.message_count(mail_user.username) == 0


@pytest.mark.django_db
def test_fetch_new_mail_is_refused_when_fetching_is_disabled(
    settings, sent, django_capture_on_commit_callbacks
):
    settings.MAILARCHIVE_FETCH_DISABLED = True
    space = SpaceFactory()
    account = _account(space, "one")
    client = login_client(SuperUserFactory())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(
                "accounts:account-fetch",
                kwargs={"key": space.key, "account_id": account.pk},
            ),
            follow=True,
        )
    assert "MAILARCHIVE_FETCH_DISABLED" in response.content.decode()
    assert not PollRun.objects.exists()
    assert sent == []


@pytest.mark.django_db
def test_queued_polls_honour_switches_flipped_after_queueing(
    dovecot, mail_user, make_account
):
    from accounts.services import mail_account_poll, mail_account_set_enabled

    dovecot.deliver_many(mail_user.username, source_messages(2, tag="late"))
    account = make_account(mail_user, "imaps")
    fetch_settings_set(automatic_polling=False, actor=None)
    scheduled = mail_account_poll(account_id=account.pk, trigger="schedule")
    assert (scheduled.status, scheduled.error_kind) == ("skipped", "automatic_off")
    mail_account_set_enabled(account=account, enabled=False)
    manual = mail_account_poll(account_id=account.pk, trigger="manual")
    assert (manual.status, manual.error_kind) == ("skipped", "disabled")
    assert dovecot.message_count(mail_user.username) == 2
    command = mail_account_poll(account_id=account.pk, trigger="command")
    assert (command.status, command.fetched) == ("ok", 2)
