"""/metrics: the figures after real polls, who may read them, and their cost."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import MailAccount, PollRun
from accounts.services import mail_account_poll
from mailarchive.models import ImportJob
from operations.metrics import metrics_text
from tests.accounts.conftest import archived_raws, source_messages
from tests.factories import (
    MailAccountFactory,
    PollRunFactory,
    SpaceFactory,
    UserFactory,
)
from tests.operations.helpers import parse, sample

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **extra: str) -> str:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def test_figures_match_real_polls_against_dovecot(dovecot, mail_user, make_account):
    """GIVEN one account that archived three messages and then a duplicate,
    and one whose password is wrong and failed three polls in a row
    WHEN /metrics is scraped
    THEN every figure says exactly that."""
    space = SpaceFactory(key="SALES")
    source = source_messages(3, tag="metrics")
    dovecot.deliver_many(mail_user.username, source)
    good = make_account(mail_user, "imaps", space=space, name="sales")
    first = mail_account_poll(account_id=good.pk, trigger=PollRun.Trigger.COMMAND)
    assert first.status == PollRun.Status.OK, first.error
    dovecot.deliver(mail_user.username, source[0])
    again = mail_account_poll(account_id=good.pk, trigger=PollRun.Trigger.COMMAND)
    assert again.status == PollRun.Status.OK, again.error
    bad = make_account(
        mail_user, "imap", space=space, name="broken", password="not-the-password"
    )
    for _ in range(3):
        mail_account_poll(account_id=bad.pk, trigger=PollRun.Trigger.COMMAND)

    samples = parse(scrape())

    def get(name: str, **labels: str) -> float:
        return sample(samples, name, **labels)

    sales = {"space": "SALES", "account": "sales"}
    broken = {"space": "SALES", "account": "broken"}
    assert get("mailarchive_polls_total", outcome="ok", **sales) == 2
    assert get("mailarchive_polls_total", outcome="failed", **broken) == 3
    assert get("mailarchive_messages_archived_total", space="SALES") == 3
    stored = archived_raws(space)
    assert sorted(stored) == sorted(source)
    assert get("mailarchive_archived_bytes_total", space="SALES") == sum(
        len(raw) for raw in stored
    )
    assert get("mailarchive_messages_waiting_index", space="SALES") == 0
    assert get("mailarchive_duplicates_total", **sales) == 1
    assert get("mailarchive_duplicates_total", **broken) == 0
    assert get("mailarchive_account_consecutive_failures", **sales) == 0
    assert get("mailarchive_account_consecutive_failures", **broken) == 3
    good.refresh_from_db()
    assert get(
        "mailarchive_account_last_success_timestamp_seconds", **sales
    ) == pytest.approx(good.last_success_at.timestamp())
    assert (
        "mailarchive_account_last_success_timestamp_seconds",
        tuple(sorted(broken.items())),
    ) not in samples
    assert get("mailarchive_account_signin_needed", **sales) == 0
    assert get("mailarchive_account_left_on_server", **sales) == 0
    # The broken account never succeeded: its age counts from its creation.
    bad.refresh_from_db()
    age = get("mailarchive_oldest_unsuccessful_account_age_seconds")
    assert 0 < age <= (timezone.now() - bad.created_at).total_seconds() + 1
    # Five finished polls, each well under a minute against a local Dovecot.
    assert get("mailarchive_poll_duration_seconds_count", **sales) == 2
    assert get("mailarchive_poll_duration_seconds_count", **broken) == 3
    assert get("mailarchive_poll_duration_seconds_bucket", le="+Inf", **sales) == 2
    assert get("mailarchive_poll_duration_seconds_bucket", le="60.0", **sales) == 2
    assert get("mailarchive_poll_duration_seconds_sum", **sales) > 0
    assert get("mailarchive_queue_length", queue="celery") >= 0


def test_histogram_buckets_are_cumulative_and_counted_by_the_database():
    account = MailAccountFactory(space=SpaceFactory(key="OPS"), name="ops")
    start = timezone.now() - timedelta(hours=2)
    for seconds in (0.5, 3, 3, 50, 700, 7200):
        PollRunFactory(
            account=account,
            started_at=start,
            finished_at=start + timedelta(seconds=seconds),
        )
    # Neither a poll still running nor one never started is a duration.
    PollRunFactory(account=account, status=PollRun.Status.RUNNING, started_at=start)
    PollRunFactory(account=account, status=PollRun.Status.SKIPPED)

    samples = parse(metrics_text().decode())

    def bucket(le: str) -> float:
        return sample(
            samples,
            "mailarchive_poll_duration_seconds_bucket",
            space="OPS",
            account="ops",
            le=le,
        )

    assert [bucket(le) for le in ("1.0", "5.0", "60.0", "600.0", "3600.0")] == [
        1,
        3,
        4,
        4,
        5,
    ]
    assert bucket("+Inf") == 6
    total = sample(
        samples, "mailarchive_poll_duration_seconds_sum", space="OPS", account="ops"
    )
    assert total == pytest.approx(0.5 + 3 + 3 + 50 + 700 + 7200)
    polls = sample(
        samples, "mailarchive_polls_total", space="OPS", account="ops", outcome="ok"
    )
    assert polls == 6


def test_accounts_waiting_index_imports_and_sign_in():
    space = SpaceFactory(key="HR")
    MailAccountFactory(
        space=space,
        name="oauth",
        auth_method=MailAccount.AuthMethod.MICROSOFT,
        auth_state=MailAccount.AuthState.SIGNIN_NEEDED,
        left_on_server=["1", "2"],
        consecutive_failures=4,
    )
    long_ago = timezone.now() - timedelta(days=3)
    MailAccountFactory(space=space, name="quiet", last_success_at=long_ago)
    # A disabled account is nobody's alarm.
    MailAccountFactory(
        space=space,
        name="off",
        enabled=False,
        last_success_at=timezone.now() - timedelta(days=30),
    )
    ImportJob.objects.create(space=space, origin="server", file_name="a", path="/a")
    ImportJob.objects.create(
        space=space, origin="server", file_name="b", path="/b", status="failed"
    )

    samples = parse(metrics_text().decode())

    oauth = {"space": "HR", "account": "oauth"}
    assert sample(samples, "mailarchive_account_signin_needed", **oauth) == 1
    assert sample(samples, "mailarchive_account_left_on_server", **oauth) == 2
    assert sample(samples, "mailarchive_account_consecutive_failures", **oauth) == 4
    age = sample(samples, "mailarchive_oldest_unsuccessful_account_age_seconds")
    assert age == pytest.approx(3 * 86400, abs=60)
    off = {"space": "HR", "account": "off"}
    assert sample(samples, "mailarchive_account_enabled", **off) == 0
    assert sample(samples, "mailarchive_account_enabled", **oauth) == 1
    assert sample(samples, "mailarchive_import_jobs", state="queued") == 1
    assert sample(samples, "mailarchive_import_jobs", state="failed") == 1
    assert sample(samples, "mailarchive_import_jobs", state="done") == 0
    assert sample(samples, "mailarchive_messages_archived_total", space="HR") == 0


def test_queue_length_counts_what_waits_in_redis(monkeypatch):
    """Tasks sent to a queue of this test's own (the Redis database is shared
    with other runs) are counted from the broker."""
    from mailarchive.celery import app
    from operations import broker

    queue = f"test-metrics-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(broker, "queue_names", lambda: [queue])

    def length() -> float:
        return sample(
            parse(metrics_text().decode()), "mailarchive_queue_length", queue=queue
        )

    assert length() == 0
    for _ in range(3):
        app.send_task("mailarchive.tasks.messages_index_pending_task", queue=queue)
    try:
        assert length() == 3
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert length() == 0


def _make_accounts(count: int) -> None:
    for n in range(count):
        account = MailAccountFactory(
            space=SpaceFactory(key=f"S{count}X{n}"),
            last_success_at=timezone.now(),
        )
        start = timezone.now() - timedelta(minutes=5)
        for seconds in (2, 40):
            PollRunFactory(
                account=account,
                started_at=start,
                finished_at=start + timedelta(seconds=seconds),
                duplicates=1,
            )
        PollRunFactory(account=account, status=PollRun.Status.FAILED)


def test_queries_per_scrape_do_not_grow_with_accounts():
    _make_accounts(1)
    with CaptureQueriesContext(connection) as one:
        metrics_text()
    _make_accounts(8)
    with CaptureQueriesContext(connection) as many:
        text = metrics_text().decode()
    assert len(many) == len(one)
    assert len(one) <= 6
    accounts = [
        key for key in parse(text) if key[0] == "mailarchive_account_signin_needed"
    ]
    assert len(accounts) == 9


# Who may read /metrics.


def test_loopback_reads_metrics_by_default():
    scrape(REMOTE_ADDR="127.0.0.1")
    scrape(REMOTE_ADDR="::1")


@pytest.mark.parametrize(
    ("address", "authorization", "status"),
    [
        pytest.param("10.1.2.3", "", 403, id="elsewhere-no-token"),
        pytest.param("10.1.2.3", "Bearer s3cret-token", 200, id="token"),
        pytest.param("10.1.2.3", "bearer s3cret-token", 200, id="token-lower-case"),
        pytest.param("10.1.2.3", "Bearer wrong", 403, id="wrong-token"),
        pytest.param("10.1.2.3", "Basic s3cret-token", 403, id="not-bearer"),
        pytest.param("192.0.2.7", "", 200, id="allowed-network"),
        pytest.param("127.0.0.1", "Bearer wrong", 200, id="listed-address-wrong-token"),
    ],
)
def test_token_or_allowed_network(settings, address, authorization, status):
    settings.MAILARCHIVE_METRICS_TOKEN = "s3cret-token"
    settings.MAILARCHIVE_METRICS_ALLOW = ["192.0.2.0/24", "127.0.0.1"]
    extra = {"REMOTE_ADDR": address}
    if authorization:
        extra["HTTP_AUTHORIZATION"] = authorization
    response = Client().get("/metrics", **extra)
    assert response.status_code == status
    if status == 403:
        assert b"mailarchive_" not in response.content


def test_no_token_set_means_no_token_is_accepted(settings):
    settings.MAILARCHIVE_METRICS_TOKEN = ""
    response = Client().get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer "
    )
    assert response.status_code == 403


def test_forwarded_for_from_an_untrusted_peer_cannot_claim_loopback(settings):
    settings.MAILARCHIVE_TRUSTED_PROXIES = ["192.0.2.1"]
    spoofed = Client().get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="127.0.0.1"
    )
    assert spoofed.status_code == 403
    # Through the trusted proxy, the client behind it is the one checked.
    settings.MAILARCHIVE_METRICS_ALLOW = ["10.9.0.0/16"]
    proxied = Client().get(
        "/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.9.8.7"
    )
    assert proxied.status_code == 200


def test_refusal_is_logged_without_a_traceback(caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = Client().get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records, "the refusal is logged"
    assert all(r.exc_info is None for r in records)


def test_a_bad_allow_list_entry_is_a_clear_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.MAILARCHIVE_METRICS_ALLOW = ["10.0.0.0/8", "intranet"]
    with pytest.raises(ImproperlyConfigured, match="MAILARCHIVE_METRICS_ALLOW"):
        Client(raise_request_exception=True).get("/metrics", REMOTE_ADDR="10.1.1.1")


def test_logged_in_site_admin_gets_nothing_more(settings):
    client = Client()
    client.force_login(
        UserFactory(is_superuser=True),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_the_system_check_names_a_bad_allow_list_entry(settings):
    from operations.checks import metrics_allow_check

    settings.MAILARCHIVE_METRICS_ALLOW = ["10.0.0.0/8"]
    assert metrics_allow_check() == []
    settings.MAILARCHIVE_METRICS_ALLOW = ["10.0.0.0/33"]
    [error] = metrics_allow_check()
    assert error.id == "operations.E001"
    assert "10.0.0.0/33" in error.msg
