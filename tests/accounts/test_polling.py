"""The poll service against a real Dovecot: archive, then delete, exactly once."""

from __future__ import annotations

import hashlib
import socket
import threading

import pytest
from django.db import OperationalError, connection

from accounts.models import FetchedMessage, MailAccount, PollRun
from accounts.services import lease, mail_account_poll, polling
from mailarchive import services as archive_services
from mailarchive.models import Message
from tests.accounts.conftest import archived_raws, make_message, source_messages
from tests.factories import SpaceFactory

PROTOCOLS = [
    pytest.param("imap", False, id="IMAP"),
    pytest.param("imaps", False, id="IMAPS"),
    pytest.param("pop", False, id="POP3"),
    pytest.param("pops", False, id="POP3S"),
    pytest.param("imap", True, id="IMAP+STARTTLS"),
    pytest.param("pop", True, id="POP3+STARTTLS"),
]


def poll(account: MailAccount, trigger: str = PollRun.Trigger.COMMAND):
    return mail_account_poll(account_id=account.pk, trigger=trigger)


def digests(raws: list[bytes]) -> list[str]:
    return sorted(hashlib.sha256(raw).hexdigest() for raw in raws)


@pytest.mark.django_db
@pytest.mark.parametrize(("protocol", "starttls"), PROTOCOLS)
def test_each_protocol_archives_then_empties_the_server(
    dovecot, mail_user, make_account, protocol, starttls
):
    source = source_messages(12, tag=protocol)
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, protocol, starttls=starttls)

    summary = poll(account)

    assert summary.status == PollRun.Status.OK, summary.error
    assert summary.fetched == 12
    assert summary.deleted == 12
    assert dovecot.message_count(mail_user.username) == 0
    assert digests(archived_raws(account.space)) == digests(source)
    assert (
        FetchedMessage.objects.filter(
            account=account, deleted_from_server_at__isnull=False
        ).count()
        == 12
    )
    account.refresh_from_db()
    assert account.consecutive_failures == 0
    assert account.last_success_at is not None
    assert account.lease_owner == ""

    again = poll(account)
    assert (again.status, again.fetched, again.duplicates) == ("ok", 0, 0)
    assert Message.objects.filter(space=account.space).count() == 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_failed_and_untouched(dovecot, mail_user, account, summary, kind, count):
    assert summary.status == PollRun.Status.FAILED
    assert summary.error_kind == kind
    assert dovecot.message_count(mail_user.username) == count
    assert not Message.objects.filter(space=account.space).exists()
    run = PollRun.objects.get(pk=summary.poll_run_id)
    assert (run.status, run.error_kind) == ("failed", kind)
    assert run.error
    account.refresh_from_db()
    assert account.consecutive_failures == 1
    assert account.last_error_kind == kind
    assert account.last_error == run.error
    assert account.lease_owner == ""


@pytest.mark.django_db
def test_untrusted_certificate_is_named_and_nothing_is_deleted(
    dovecot, mail_user, make_account, settings
):
    dovecot.deliver_many(mail_user.username, source_messages(3))
    account = make_account(mail_user, "imaps")
    settings.SSL_CERT_FILE = ""

    summary = poll(account)

    assert_failed_and_untouched(
        dovecot, mail_user, account, summary, "certificate_untrusted", 3
    )
    assert "mailarchive test CA" in summary.error  # the issuer, for the admin


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_wrong_password_is_reported(dovecot, mail_user, make_account, protocol):
    dovecot.deliver_many(mail_user.username, source_messages(2))
    account = make_account(mail_user, protocol, password="not-the-password")
    summary = poll(account)
    assert_failed_and_untouched(
        dovecot, mail_user, account, summary, "login_rejected", 2
    )
    assert "not-the-password" not in summary.error


@pytest.mark.django_db
def test_refused_connection_is_reported(dovecot, mail_user, make_account):
    account = make_account(mail_user, "imap", port=free_port())
    summary = poll(account)
    assert_failed_and_untouched(
        dovecot, mail_user, account, summary, "connection_refused", 0
    )


@pytest.mark.django_db
def test_silent_server_times_out(dovecot, mail_user, make_account, settings):
    settings.MAILARCHIVE_MAIL_TIMEOUT = 1.0
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        account = make_account(mail_user, "imap", port=silent.getsockname()[1])
        summary = poll(account)
    assert_failed_and_untouched(dovecot, mail_user, account, summary, "timeout", 0)


@pytest.mark.django_db
def test_missing_folder_is_reported(dovecot, mail_user, make_account):
    dovecot.deliver_many(mail_user.username, source_messages(2))
    account = make_account(mail_user, "imaps", folder="Archive/Nope")
    summary = poll(account)
    assert_failed_and_untouched(
        dovecot, mail_user, account, summary, "folder_missing", 2
    )
    assert "Archive/Nope" in summary.error


@pytest.mark.django_db
def test_loopback_is_refused_unless_allowed(dovecot, mail_user, make_account, settings):
    dovecot.deliver_many(mail_user.username, source_messages(1))
    account = make_account(mail_user, "imaps")
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = []
    summary = poll(account)
    assert_failed_and_untouched(
        dovecot, mail_user, account, summary, "blocked_destination", 1
    )
    assert "MAILARCHIVE_ALLOWED_MAIL_HOSTS" in summary.error


@pytest.mark.django_db
def test_failures_count_up_and_reset_on_success(dovecot, mail_user, make_account):
    account = make_account(mail_user, "imaps", password="wrong")
    poll(account)
    poll(account)
    account.refresh_from_db()
    assert account.consecutive_failures == 2
    from accounts.services import mail_account_update

    mail_account_update(account=account, changes={}, password=mail_user.password)
    assert poll(account).status == "ok"
    account.refresh_from_db()
    assert account.consecutive_failures == 0
    assert account.last_error_kind == "login_rejected"  # kept as history


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_oversize_message_stays_on_the_server_and_is_reported(
    dovecot, mail_user, make_account, settings, protocol
):
    settings.MAILARCHIVE_MAX_MESSAGE_BYTES = 20_000
    small = source_messages(3, tag="small")
    big = make_message(99, size=60_000, tag="big")
    dovecot.deliver_many(mail_user.username, [small[0], big, *small[1:]])
    account = make_account(mail_user, protocol)

    summary = poll(account)

    assert summary.status == "ok"
    assert (summary.fetched, summary.left_on_server) == (3, 1)
    assert dovecot.mailbox_raws(mail_user.username) == [big]
    assert digests(archived_raws(account.space)) == digests(small)
    account.refresh_from_db()
    [entry] = account.left_on_server
    assert entry["reason"] == "too_large"
    assert entry["size"] >= 60_000
    assert PollRun.objects.get(pk=summary.poll_run_id).left_on_server == 1

    again = poll(account)
    assert (again.fetched, again.left_on_server) == (0, 1)
    assert dovecot.message_count(mail_user.username) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_database_outage_mid_poll_deletes_nothing_unarchived(
    dovecot, mail_user, make_account, monkeypatch, protocol
):
    """GIVEN 20 messages polled in batches of 5
    WHEN the database fails while storing the 12th (a fault injected into the
    ingest, since a real server cannot be made to fail on demand)
    THEN every message is archived or still on the server, nothing missing from
    the server is unarchived, and the next poll finishes the job exactly once.
    """
    source = source_messages(20, tag=f"outage-{protocol}")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, protocol)
    monkeypatch.setattr(polling, "BATCH_MAX_COUNT", 5)
    real_secure = archive_services.messages_secure
    calls = {"n": 0}

    def failing_secure(**kwargs):
        calls["n"] += len(kwargs["raws"])
        if calls["n"] >= 12:
            raise OperationalError("server closed the connection unexpectedly")
        return real_secure(**kwargs)

    monkeypatch.setattr(archive_services, "messages_secure", failing_secure)

    summary = poll(account)

    assert (summary.status, summary.error_kind) == ("failed", "database")
    archived = set(digests(archived_raws(account.space)))
    on_server = set(digests(dovecot.mailbox_raws(mail_user.username)))
    everything = set(digests(source))
    assert archived == set(digests(source[:10]))  # two whole batches committed
    assert archived | on_server == everything
    assert everything - on_server <= archived  # deleted ⇒ archived

    monkeypatch.setattr(archive_services, "messages_secure", real_secure)
    assert poll(account).status == "ok"
    assert digests(archived_raws(account.space)) == digests(source)
    assert dovecot.message_count(mail_user.username) == 0


@pytest.mark.django_db
def test_one_bad_message_does_not_stop_the_account(
    dovecot, mail_user, make_account, monkeypatch
):
    source = source_messages(6, tag="bad")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")
    real_secure = archive_services.messages_secure

    def picky_secure(**kwargs):
        if source[2] in kwargs["raws"]:
            raise ValueError("storage bug")
        return real_secure(**kwargs)

    monkeypatch.setattr(archive_services, "messages_secure", picky_secure)
    summary = poll(account)

    assert summary.status == "ok"
    assert (summary.fetched, summary.left_on_server) == (5, 1)
    assert dovecot.mailbox_raws(mail_user.username) == [source[2]]
    account.refresh_from_db()
    assert account.left_on_server[0]["reason"] == "unarchivable"

    monkeypatch.setattr(archive_services, "messages_secure", real_secure)
    assert poll(account).fetched == 1
    assert digests(archived_raws(account.space)) == digests(source)


@pytest.mark.django_db
def test_same_message_to_two_accounts_of_a_space_is_archived_once(
    dovecot, make_account
):
    from tests.dovecot import MailUser

    users = [MailUser(f"twin{i}{id(dovecot) % 9999}", f"pw-{i}-x") for i in range(2)]
    for user in users:
        dovecot.add_user(user.username, user.password)
    raw = make_message(7, tag="twin")
    space = SpaceFactory()
    accounts = []
    for user in users:
        dovecot.deliver(user.username, raw)
        accounts.append(make_account(user, "imaps", space=space))

    first, second = (poll(account) for account in accounts)

    assert (first.fetched, first.duplicates) == (1, 0)
    assert (second.fetched, second.duplicates) == (0, 1)
    assert Message.objects.filter(space=space).count() == 1
    message = Message.objects.get(space=space)
    assert set(
        FetchedMessage.objects.filter(message=message).values_list(
            "account_id", flat=True
        )
    ) == {a.pk for a in accounts}
    assert all(dovecot.message_count(u.username) == 0 for u in users)


def _crash_on_delete(monkeypatch, client_class):
    def crash(self, server_ids):
        raise RuntimeError("worker killed between commit and delete")

    monkeypatch.setattr(client_class, "delete", crash)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imaps", "pops"])
def test_crash_between_commit_and_delete_is_finished_by_the_ledger(
    dovecot, mail_user, make_account, monkeypatch, protocol
):
    from accounts.clients import IMAPMailClient, POP3Client

    client_class = IMAPMailClient if protocol == "imaps" else POP3Client
    source = source_messages(8, tag=f"ledger-{protocol}")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, protocol)
    with monkeypatch.context() as patch:
        _crash_on_delete(patch, client_class)
        crashed = poll(account)
    assert crashed.status == "failed"
    assert dovecot.message_count(mail_user.username) == 8
    assert Message.objects.filter(space=account.space).count() == 8

    def no_secure(**kwargs):
        raise AssertionError("a message in the ledger was fetched again")

    monkeypatch.setattr(archive_services, "messages_secure", no_secure)
    summary = poll(account)

    assert (summary.status, summary.fetched, summary.deleted) == ("ok", 0, 8)
    assert dovecot.message_count(mail_user.username) == 0
    assert Message.objects.filter(space=account.space).count() == 8
    assert not FetchedMessage.objects.filter(
        account=account, deleted_from_server_at__isnull=True
    ).exists()


@pytest.mark.django_db
def test_uidvalidity_reset_after_a_crash_archives_nothing_twice(
    dovecot, mail_user, make_account, monkeypatch
):
    from accounts.clients import IMAPMailClient

    source = source_messages(10, tag="uidvalidity")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")
    with monkeypatch.context() as patch:
        _crash_on_delete(patch, IMAPMailClient)
        assert poll(account).status == "failed"
    dovecot.recreate_mailbox(mail_user.username)

    summary = poll(account)

    assert summary.status == "ok"
    assert (summary.fetched, summary.duplicates, summary.deleted) == (0, 10, 10)
    assert Message.objects.filter(space=account.space).count() == 10
    assert digests(archived_raws(account.space)) == digests(source)
    assert dovecot.message_count(mail_user.username) == 0


@pytest.mark.django_db
def test_fetch_disabled_polls_nothing(dovecot, mail_user, make_account, settings):
    dovecot.deliver_many(mail_user.username, source_messages(2))
    account = make_account(mail_user, "imaps")
    settings.MAILARCHIVE_FETCH_DISABLED = True
    summary = poll(account)
    assert (summary.status, summary.error_kind) == ("skipped", "fetch_disabled")
    assert "MAILARCHIVE_FETCH_DISABLED" in summary.line()
    assert dovecot.message_count(mail_user.username) == 2
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_lease_of_a_live_poller_elsewhere_is_respected(
    dovecot, mail_user, make_account
):
    from datetime import timedelta

    from django.utils import timezone

    dovecot.deliver_many(mail_user.username, source_messages(2))
    account = make_account(mail_user, "imaps")
    MailAccount.objects.filter(pk=account.pk).update(
        lease_owner="another-machine:4242:abcd",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    summary = poll(account)
    assert (summary.status, summary.error_kind) == ("skipped", "busy")
    assert dovecot.message_count(mail_user.username) == 2

    MailAccount.objects.filter(pk=account.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert poll(account).fetched == 2


@pytest.mark.django_db
def test_lease_of_a_dead_local_process_is_taken_over_at_once(
    dovecot, mail_user, make_account
):
    import subprocess
    from datetime import timedelta

    from django.utils import timezone

    dovecot.deliver_many(mail_user.username, source_messages(2))
    account = make_account(mail_user, "imaps")
    gone = subprocess.Popen(["true"])
    gone.wait()
    MailAccount.objects.filter(pk=account.pk).update(
        lease_owner=f"{lease._process_namespace()}:{gone.pid}:dead",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    assert poll(account).fetched == 2


def _in_thread(target, results, key):
    def run():
        try:
            results[key] = target()
        except BaseException as error:  # reported by the test
            results[key] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=key)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_second_worker_skips_while_the_first_holds_the_lease(
    dovecot, mail_user, make_account, monkeypatch
):
    source = source_messages(6, tag="workers")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")
    # The poll stalls with its batch fetched and not yet secured: before the
    # batch's transaction, so that on SQLite, one writer at a time, the other
    # poll is not simply made to wait for the stalled one's write lock.
    real_archive_batch = polling._archive_batch
    inside, release = threading.Event(), threading.Event()

    def slow_archive_batch(*args, **kwargs):
        if threading.current_thread().name == "first":
            inside.set()
            release.wait(timeout=60)
        return real_archive_batch(*args, **kwargs)

    monkeypatch.setattr(polling, "_archive_batch", slow_archive_batch)
    results: dict[str, object] = {}
    first = _in_thread(lambda: poll(account), results, "first")
    assert inside.wait(timeout=60)
    second = _in_thread(lambda: poll(account), results, "second")
    second.join(timeout=60)
    release.set()
    first.join(timeout=60)

    assert results["second"].status == "skipped", results["second"]
    assert results["second"].error_kind == "busy"
    assert results["first"].status == "ok", results["first"]
    assert results["first"].fetched == 6
    assert Message.objects.filter(space=account.space).count() == 6
    assert dovecot.message_count(mail_user.username) == 0


@pytest.mark.django_db(transaction=True)
def test_overlapping_polls_never_archive_twice(
    dovecot, mail_user, make_account, monkeypatch
):
    """GIVEN a poll that stalls inside its batch until its lease runs out
    WHEN a second poll takes the account over and archives everything
    THEN the stalled poll, resuming, archives nothing again (the database's
    constraints decide, not timing) and stops without deleting.
    """
    source = source_messages(6, tag="overlap")
    dovecot.deliver_many(mail_user.username, source)
    account = make_account(mail_user, "imaps")
    # The poll stalls with its batch fetched and not yet secured: before the
    # batch's transaction, so that on SQLite, one writer at a time, the other
    # poll is not simply made to wait for the stalled one's write lock.
    real_archive_batch = polling._archive_batch
    inside, release = threading.Event(), threading.Event()

    def slow_archive_batch(*args, **kwargs):
        if threading.current_thread().name == "stalled":
            inside.set()
            release.wait(timeout=60)
        return real_archive_batch(*args, **kwargs)

    monkeypatch.setattr(polling, "_archive_batch", slow_archive_batch)
    results: dict[str, object] = {}
    stalled = _in_thread(lambda: poll(account), results, "stalled")
    assert inside.wait(timeout=60)
    from datetime import timedelta

    from django.utils import timezone

    MailAccount.objects.filter(pk=account.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    takeover = _in_thread(lambda: poll(account), results, "takeover")
    takeover.join(timeout=60)
    release.set()
    stalled.join(timeout=60)

    assert results["takeover"].status == "ok", results["takeover"]
    assert results["takeover"].fetched == 6
    assert results["stalled"].error_kind == "lease_lost", results["stalled"]
    assert Message.objects.filter(space=account.space).count() == 6
    assert FetchedMessage.objects.filter(account=account).count() == 6
    assert digests(archived_raws(account.space)) == digests(source)
    assert dovecot.message_count(mail_user.username) == 0
