"""Alerts: one e-mail and one signed webhook per change of an account's health.

A real SMTP server (aiosmtpd) and a real HTTP receiver listen on loopback;
the polls run against the test Dovecot. Time is moved by moving the
account's timestamps back, never by sleeping.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.utils import timezone

from accounts import tasks
from accounts.models import MailAccount, PollRun
from accounts.services import mail_account_poll
from accounts.services.alerts import (
    SIGNATURE_HEADER,
    mail_account_alerts_evaluate,
)
from spaces.models import Level
from tests.accounts.conftest import make_message, source_messages
from tests.factories import SpacePermissionFactory, SuperUserFactory, UserFactory

SECRET = "webhook-secret-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
        )
        return "250 OK"


@pytest.fixture
def smtp(settings) -> Iterator[_Collect]:
    """A real SMTP server on loopback that the site's e-mail goes through."""
    handler = _Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.MAILARCHIVE_ALERT_FROM = "archive@example.com"
    try:
        yield handler
    finally:
        controller.stop()


@dataclass
class Receiver:
    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _h, body in self.posts]


@pytest.fixture
def webhook(settings) -> Iterator[Receiver]:
    """A real HTTP server on loopback that receives the webhook POSTs."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.posts.append((dict(self.headers.items()), body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/mail"
    settings.MAILARCHIVE_ALERT_WEBHOOK_URL = receiver.url
    settings.MAILARCHIVE_ALERT_WEBHOOK_SECRET = SECRET
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def people(db):
    """A space admin and a site admin, both with addresses."""
    return {
        "admin": UserFactory(username="spaceadmin", email="spaceadmin@example.com"),
        "root": SuperUserFactory(username="root", email="root@example.com"),
    }


@pytest.fixture
def alerts_settings(mail_settings):
    mail_settings.MAILARCHIVE_ALERT_FAILURES = 3
    mail_settings.MAILARCHIVE_ALERT_STALE_HOURS = 24
    mail_settings.MAILARCHIVE_SITE_URL = "https://archive.example.com"
    return mail_settings


def failing_account(make_account, mail_user, people) -> MailAccount:
    """An account whose server refuses connections (nothing listens)."""
    account = make_account(mail_user, "imap", port=free_port())
    SpacePermissionFactory(space=account.space, user=people["admin"], level=Level.ADMIN)
    return account


def poll(account: MailAccount):
    return mail_account_poll(account_id=account.pk, trigger=PollRun.Trigger.COMMAND)


def assert_signed(headers: dict[str, str], body: bytes) -> None:
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"


def recipients(smtp: _Collect) -> list[str]:
    return sorted(rcpt for rcpts, _m in smtp.messages for rcpt in rcpts)


def age_alerts(account: MailAccount, hours: int) -> None:
    """Make the last notices ``hours`` older, as if that time had passed."""
    account.refresh_from_db()
    MailAccount.objects.filter(pk=account.pk).update(
        alert_email_at=account.alert_email_at - timedelta(hours=hours),
        alert_webhook_at=account.alert_webhook_at - timedelta(hours=hours),
    )


@pytest.mark.django_db
def test_threshold_crossing_alerts_once_then_reminds_daily_then_recovers(
    dovecot, mail_user, make_account, people, smtp, webhook, alerts_settings
):
    """GIVEN an account whose server is unreachable WHEN it fails twice THEN
    nobody hears of it; WHEN it fails the third time THEN each admin gets one
    e-mail and the webhook one signed POST; further failures send nothing
    until a day has passed, then one reminder; WHEN it works again THEN one
    recovery notice each."""
    dovecot.deliver_many(mail_user.username, source_messages(2, tag="alert"))
    account = failing_account(make_account, mail_user, people)

    for _ in range(2):
        assert poll(account).failed
    assert smtp.messages == [] and webhook.posts == []

    assert poll(account).failed
    assert recipients(smtp) == ["root@example.com", "spaceadmin@example.com"]
    subject = smtp.messages[0][1]["Subject"]
    assert account.name in subject and "needs attention" in subject
    body = smtp.messages[0][1].get_payload(decode=True).decode()
    assert "3 polls in a row failed" in body
    assert "refused the connection" in body
    assert f"https://archive.example.com/spaces/{account.space.key}/accounts/" in body
    assert len(webhook.posts) == 1
    headers, raw = webhook.posts[0]
    assert_signed(headers, raw)
    payload = json.loads(raw)
    assert payload["event"] == "alert"
    assert payload["problems"] == ["failing"]
    assert payload["account"]["consecutive_failures"] == 3
    assert payload["account"]["space"] == account.space.key

    for _ in range(3):
        assert poll(account).failed
    assert len(smtp.messages) == 2 and len(webhook.posts) == 1

    age_alerts(account, 23)
    assert mail_account_alerts_evaluate(account_id=account.pk) == []
    age_alerts(account, 2)
    assert mail_account_alerts_evaluate(account_id=account.pk) == [
        "email:reminder",
        "webhook:reminder",
    ]
    assert len(smtp.messages) == 4
    assert smtp.messages[-1][1]["Subject"].startswith("Reminder:")
    assert mail_account_alerts_evaluate(account_id=account.pk) == []

    MailAccount.objects.filter(pk=account.pk).update(port=dovecot.imap_port)
    assert poll(account).status == PollRun.Status.OK
    assert len(smtp.messages) == 6
    assert "works again" in smtp.messages[-1][1]["Subject"]
    assert webhook.events() == ["alert", "reminder", "recovery"]
    assert_signed(*webhook.posts[-1])
    assert poll(account).status == PollRun.Status.OK
    assert len(smtp.messages) == 6 and len(webhook.posts) == 3


@pytest.mark.django_db
def test_a_person_who_switched_alerts_off_gets_none(
    client, dovecot, mail_user, make_account, people, smtp, alerts_settings
):
    account = failing_account(make_account, mail_user, people)
    client.force_login(people["admin"])
    page = client.get("/preferences/alerts/")
    assert page.status_code == 200
    assert "spaceadmin@example.com" in page.content.decode()
    response = client.post("/preferences/alerts/", {})
    assert response.status_code == 302

    for _ in range(3):
        poll(account)

    assert recipients(smtp) == ["root@example.com"]
    assert 'name="email_alerts"' in client.get("/preferences/alerts/").content.decode()
    client.post("/preferences/alerts/", {"email_alerts": "on"})
    MailAccount.objects.filter(pk=account.pk).update(port=dovecot.imap_port)
    poll(account)
    assert recipients(smtp) == [
        "root@example.com",
        "root@example.com",
        "spaceadmin@example.com",
    ]


@pytest.mark.django_db
def test_sign_in_needed_alerts_at_once(people, smtp, webhook, alerts_settings):
    """An OAuth2 account whose grant the provider dropped needs a person: the
    first evaluation (here the periodic one) alerts, without waiting for
    failed polls."""
    from tests.factories import SpaceFactory

    MailAccount.objects.create(
        space=SpaceFactory(),
        name="Sales (Microsoft)",
        protocol="imaps",
        host="outlook.office365.com",
        port=993,
        username="sales@example.com",
        auth_method=MailAccount.AuthMethod.MICROSOFT,
        auth_state=MailAccount.AuthState.SIGNIN_NEEDED,
        last_success_at=timezone.now(),
    )
    assert tasks.mail_account_alerts_evaluate_all.apply().get() == (
        "sent 2 alert notices"
    )
    assert recipients(smtp) == ["root@example.com"]
    assert "Sign-in needed" in smtp.messages[0][1].get_payload(decode=True).decode()
    assert json.loads(webhook.posts[0][1])["problems"] == ["signin_needed"]
    assert tasks.mail_account_alerts_evaluate_all.apply().get() == (
        "sent 0 alert notices"
    )


@pytest.mark.django_db
def test_messages_left_on_the_server_alert(
    dovecot, mail_user, make_account, people, smtp, webhook, alerts_settings
):
    big = make_message(2, size=8000, tag="left")
    dovecot.deliver_many(
        mail_user.username,
        [make_message(0, tag="left"), big, make_message(1, tag="left")],
    )
    alerts_settings.MAILARCHIVE_MAX_MESSAGE_BYTES = 4000
    account = make_account(mail_user, "imaps")

    summary = poll(account)

    assert (summary.status, summary.left_on_server) == ("ok", 1)
    assert dovecot.mailbox_raws(mail_user.username) == [big]
    assert recipients(smtp) == ["root@example.com"]
    assert "1 message stays on the server" in (
        smtp.messages[0][1].get_payload(decode=True).decode()
    )
    payload = json.loads(webhook.posts[0][1])
    assert payload["problems"] == ["left_on_server"]
    assert payload["account"]["left_on_server"] == 1
    assert poll(account).left_on_server == 1
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_an_account_that_completes_no_poll_for_a_day_alerts_from_the_beat_task(
    people, smtp, alerts_settings
):
    from tests.factories import SpaceFactory

    account = MailAccount.objects.create(
        space=SpaceFactory(),
        name="Quiet",
        protocol="imaps",
        host="mail.example.com",
        port=993,
        username="quiet",
    )
    MailAccount.objects.filter(pk=account.pk).update(
        last_success_at=timezone.now() - timedelta(hours=23)
    )
    assert mail_account_alerts_evaluate(account_id=account.pk) == []
    MailAccount.objects.filter(pk=account.pk).update(
        last_success_at=timezone.now() - timedelta(hours=25)
    )
    tasks.mail_account_alerts_evaluate_all.apply()
    assert recipients(smtp) == ["root@example.com"]
    assert "No poll has completed since" in (
        smtp.messages[0][1].get_payload(decode=True).decode()
    )
    tasks.mail_account_alerts_evaluate_all.apply()
    assert len(smtp.messages) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("refusal", [500, 302], ids=["error", "redirect"])
def test_failing_smtp_and_webhook_do_not_break_the_poll_and_are_retried(
    dovecot, mail_user, make_account, people, smtp, webhook, alerts_settings, refusal
):
    """GIVEN the SMTP server unreachable and the webhook answering 500 WHEN
    the third failure is recorded THEN the poll still ends with its own
    summary and nothing counts as told; WHEN both work again THEN the next
    evaluation sends the alert, once."""
    account = failing_account(make_account, mail_user, people)
    working_port = alerts_settings.EMAIL_PORT
    alerts_settings.EMAIL_PORT = free_port()
    webhook.status = refusal

    for _ in range(3):
        summary = poll(account)
        assert summary.failed and summary.error_kind == "connection_refused"
    account.refresh_from_db()
    assert account.consecutive_failures == 3
    assert (account.alert_email_state, account.alert_webhook_state) == ("", "")
    assert account.alert_claimed_until is None
    assert smtp.messages == []
    assert len(webhook.posts) == 1

    alerts_settings.EMAIL_PORT = working_port
    webhook.status = 204
    tasks.mail_account_alerts_evaluate_all.apply()
    assert len(smtp.messages) == 2
    assert webhook.events() == ["alert", "alert"]
    tasks.mail_account_alerts_evaluate_all.apply()
    assert len(smtp.messages) == 2 and len(webhook.posts) == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_evaluating_at_once_send_once(people, smtp, webhook, settings):
    """Evaluations on separate connections, started together, claim the
    account by a conditional update: one sends, the other finds it claimed
    or already told."""
    from tests.factories import SpaceFactory

    settings.MAILARCHIVE_ALERT_FAILURES = 3
    account = MailAccount.objects.create(
        space=SpaceFactory(),
        name="Contended",
        protocol="imaps",
        host="mail.example.com",
        port=993,
        username="contended",
        consecutive_failures=5,
        last_error_kind="timeout",
        last_success_at=timezone.now(),
    )
    barrier = threading.Barrier(4)
    results: list[list[str]] = []

    def evaluate():
        try:
            barrier.wait(timeout=30)
            results.append(mail_account_alerts_evaluate(account_id=account.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(map(tuple, results)) == [
        (),
        (),
        (),
        ("email:alert", "webhook:alert"),
    ]
    assert recipients(smtp) == ["root@example.com"]
    assert len(webhook.posts) == 1
