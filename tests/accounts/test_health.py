"""Health that tells the truth: storage faults are poll failures, the pages
say what is on the server and archived, and a connection test and the polls
make one statement."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.models import FetchedMessage, MailAccount, PollRun
from accounts.services import mail_account_poll, polling
from mailarchive import services as archive_services
from mailarchive.models import Message
from spaces.models import Level, SpacePermission
from tests.accounts.conftest import archived_raws, make_message, source_messages
from tests.factories import SpacePermissionFactory, SuperUserFactory, UserFactory
from tests.full_storage import FullDiskStorage

STORAGE_SENTENCE = "The archive could not store the mail it fetched"
STORAGE_SENTENCE_JA = "取得したメールを保存できませんでした"


def poll(account: MailAccount):
    return mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)


@pytest.fixture
def full_disk(settings, tmp_path) -> Path:
    """The site's storage on a disk with no room left (see FullDiskStorage)."""
    store = tmp_path / "store"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.full_storage.FullDiskStorage",
            "OPTIONS": {"location": str(store)},
        },
    }
    FullDiskStorage.room = 0
    return store


def leftovers(store: Path) -> list[Path]:
    return [p for p in store.rglob("*") if p.is_file()] if store.exists() else []


@pytest.fixture
def admin_client(client, db):
    admin = UserFactory(username="health-admin")
    client.force_login(admin)
    client.admin = admin
    return client


def accounts_page(client, account: MailAccount, language: str = "en") -> str:
    SpacePermission.objects.get_or_create(
        space=account.space, user=client.admin, defaults={"level": Level.ADMIN}
    )
    page = client.get(
        f"/spaces/{account.space.key}/accounts/", HTTP_ACCEPT_LANGUAGE=language
    )
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.django_db
def test_disk_full_stops_the_poll_keeps_every_message_and_counts_a_failure(
    dovecot, mail_user, make_account, full_disk, admin_client
):
    """GIVEN a mailbox of 5 and a full disk WHEN the account is polled THEN
    the poll fails with the kind "storage", every message is still on the
    server, nothing is listed as unarchivable, the failure is counted, no
    success is recorded and no temporary file is left behind; the accounts
    page says so in English and in Japanese."""
    source = source_messages(5, tag="full")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")

    summary = poll(account)

    assert (summary.status, summary.error_kind) == ("failed", "storage")
    assert "No space left on device" in summary.error
    assert dovecot.message_count(mail_user.username) == 5
    assert not Message.objects.filter(space=account.space).exists()
    assert not FetchedMessage.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.consecutive_failures == 1
    assert account.last_success_at is None
    assert account.last_error_kind == "storage"
    assert account.left_on_server == []
    assert account.on_server_count == 5
    assert leftovers(full_disk) == []
    run = PollRun.objects.get(pk=summary.poll_run_id)
    assert (run.status, run.error_kind, run.fetched, run.deleted) == (
        "failed",
        "storage",
        0,
        0,
    )

    body = accounts_page(admin_client, account)
    assert STORAGE_SENTENCE in body
    assert "Failing: the last poll failed." in body
    assert "5 not fetched yet, as the last poll failed" in body
    assert STORAGE_SENTENCE_JA in accounts_page(admin_client, account, "ja")

    FullDiskStorage.room = 10**9
    assert poll(account).status == PollRun.Status.OK
    account.refresh_from_db()
    assert (account.consecutive_failures, account.on_server_count) == (0, 0)
    assert sorted(archived_raws(account.space)) == sorted(source)


@pytest.mark.django_db
def test_disk_filling_up_mid_poll_keeps_what_was_stored_and_the_rest_on_the_server(
    dovecot, mail_user, make_account, full_disk, monkeypatch
):
    """GIVEN batches of 2 and room for exactly the first batch WHEN polled
    THEN the first 2 are archived and deleted, the other 3 stay on the
    server, and the poll is a storage failure."""
    monkeypatch.setattr(polling, "BATCH_MAX_COUNT", 2)
    source = [make_message(n, tag="filling") for n in range(5)]
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "pops")
    FullDiskStorage.room = len(source[0]) + len(source[1])

    summary = poll(account)

    assert (summary.status, summary.error_kind) == ("failed", "storage")
    assert (summary.fetched, summary.left_on_server) == (2, 0)
    assert sorted(dovecot.mailbox_raws(mail_user.username)) == sorted(source[2:])
    assert sorted(archived_raws(account.space)) == sorted(source[:2])
    account.refresh_from_db()
    assert account.consecutive_failures == 1
    assert account.last_success_at is None


@pytest.mark.django_db
def test_a_storage_read_failure_while_indexing_leaves_the_message_pending_and_says_so(
    dovecot, mail_user, make_account, admin_client
):
    """GIVEN a message secured by an earlier poll whose stored object cannot
    be read WHEN the next poll indexes what is waiting THEN the poll itself
    succeeds (its mail is safe), the message stays pending, and the accounts
    page says why; WHEN the object is back THEN the next poll indexes it and
    the sentence goes."""
    account = make_account(mail_user, "imaps")
    raw = make_message(3, tag="unreadable")
    with transaction.atomic():
        secured = archive_services.messages_secure(
            space_id=account.space_id, raws=[raw], source=Message.Source.POLL
        )[0]
    FetchedMessage.objects.create(
        account=account,
        server_id="gone/1",
        message_id=secured.message_pk,
        raw_sha256=secured.raw_sha256,
    )
    message = Message.objects.get(pk=secured.message_pk)
    stored = Path(default_storage.path(message.raw_name))
    stored.rename(stored.with_name("moved-away"))

    summary = poll(account)

    assert summary.status == PollRun.Status.OK
    message.refresh_from_db()
    assert message.index_state == Message.IndexState.PENDING
    account.refresh_from_db()
    assert "reading raw/" in account.index_error
    body = accounts_page(admin_client, account)
    assert "Indexing stopped: the archived messages could not be read back" in body
    assert "1 message waiting to be indexed" in body

    stored.with_name("moved-away").rename(stored)
    assert poll(account).status == PollRun.Status.OK
    message.refresh_from_db()
    assert message.index_state == Message.IndexState.INDEXED
    account.refresh_from_db()
    assert account.index_error == ""


@pytest.mark.django_db
def test_completeness_is_on_the_accounts_page(
    dovecot, mail_user, make_account, mail_settings, admin_client
):
    big = make_message(2, size=8000, tag="complete")
    small = [make_message(n, tag="complete") for n in (0, 1)]
    dovecot.deliver_many(mail_user.username, [small[0], big, small[1]])
    mail_settings.MAILARCHIVE_MAX_MESSAGE_BYTES = 4000
    account = make_account(mail_user, "imaps")
    assert poll(account).status == PollRun.Status.OK
    account.refresh_from_db()
    assert account.on_server_count == 1

    body = accounts_page(admin_client, account)

    assert "Working, but 1 message stays on the server." in body
    assert "On the server" in body and "Archived in total" in body
    assert "1 too large" in body
    assert "Last successful poll" in body
    assert '<span class="archived-total">2</span>' in body
    assert '<span class="on-server">1</span>' in body


@pytest.mark.django_db
def test_report_lists_an_account_with_no_poll_for_a_day_first(
    client, dovecot, mail_user, make_account, settings
):
    settings.MAILARCHIVE_ALERT_STALE_HOURS = 24
    healthy = make_account(mail_user, "imaps", name="A healthy")
    quiet = make_account(mail_user, "imaps", name="Z quiet")
    now = timezone.now()
    MailAccount.objects.filter(pk=healthy.pk).update(last_success_at=now)
    MailAccount.objects.filter(pk=quiet.pk).update(
        last_success_at=now - timedelta(hours=30)
    )
    client.force_login(SuperUserFactory())
    body = client.get("/site/mail-accounts/").content.decode()
    assert body.index("Z quiet") < body.index("A healthy")
    assert "No poll has completed for 30 hours" in body
    assert "1 account is failing." in body


@pytest.mark.django_db
def test_a_good_connection_test_after_failures_says_the_next_poll_will_tell(
    dovecot, mail_user, make_account, admin_client
):
    """A test that connects, on an account whose last poll failed, is neither
    a green "Connected" nor hidden: the flash and the page say the connection
    works again and that the next poll decides."""
    account = make_account(mail_user, "imaps")
    MailAccount.objects.filter(pk=account.pk).update(
        consecutive_failures=1,
        last_poll_at=timezone.now() - timedelta(minutes=5),
        last_error_kind="timeout",
        last_error_at=timezone.now() - timedelta(minutes=5),
    )
    SpacePermissionFactory(
        space=account.space, user=admin_client.admin, level=Level.ADMIN
    )
    response = admin_client.post(
        f"/spaces/{account.space.key}/accounts/{account.pk}/test/", follow=True
    )
    body = response.content.decode()
    flashes = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert len(flashes) == 1
    level, text = flashes[0]
    assert level == "warning"
    assert "Connected to" in text and "the next poll will tell" in text
    assert "The connection works again" in body
    assert 'data-state="failing"' in body
    account.refresh_from_db()
    assert account.last_test_ok is True


@pytest.mark.django_db
def test_a_failed_connection_test_shows_the_account_as_failing(
    dovecot, mail_user, make_account, admin_client
):
    account = make_account(mail_user, "imaps", password="wrong-password")
    MailAccount.objects.filter(pk=account.pk).update(
        last_poll_at=timezone.now() - timedelta(minutes=5),
        last_success_at=timezone.now() - timedelta(minutes=5),
    )
    SpacePermissionFactory(
        space=account.space, user=admin_client.admin, level=Level.ADMIN
    )
    response = admin_client.post(
        f"/spaces/{account.space.key}/accounts/{account.pk}/test/", follow=True
    )
    body = response.content.decode()
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert 'data-state="failing"' in body
    assert "the connection test of" in body and "although the last poll worked" in (
        body
    )
    assert "rejected the user name or password" in body


@pytest.mark.django_db
def test_fixing_a_failing_account_says_the_next_poll_will_tell(
    dovecot, mail_user, make_account, admin_client
):
    """GIVEN an account failing on a wrong password WHEN the admin enters the
    right one THEN the save's own test connects, and the message says that
    the polls have yet to confirm it, not a plain success."""
    account = make_account(mail_user, "imaps", password="wrong-password")
    assert poll(account).error_kind == "login_rejected"
    SpacePermissionFactory(
        space=account.space, user=admin_client.admin, level=Level.ADMIN
    )
    response = admin_client.post(
        f"/spaces/{account.space.key}/accounts/{account.pk}/edit/",
        {
            "name": account.name,
            "protocol": "imaps",
            "host": account.host,
            "port": str(account.port),
            "username": account.username,
            "password": mail_user.password,
            "folder": "INBOX",
            "enabled": "on",
        },
        follow=True,
    )
    flashes = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert [level for level, _text in flashes] == ["warning"]
    assert "The connection works again" in flashes[0][1]
    assert poll(account).status == PollRun.Status.OK
    body = accounts_page(admin_client, account)
    assert "Working: the last poll completed at" in body
