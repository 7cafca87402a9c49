"""Alerts: tell the people who can fix an account when its health changes.

An account's problems (``accounts.health.problems_of``: polls failing in a
row, no poll completed for hours, a sign-in needed, messages left on the
server) are compared with what each channel, e-mail and webhook, last told
of. A change sends one alert; the same problems for a day send one reminder;
no problems after some sends one recovery notice. Nothing else is sent, so a
failing account every half hour makes no storm.

Evaluated after every poll and by a periodic task. Two evaluations at once
send once: a conditional update claims the account (on the state both read)
before anything is sent, and the state is written after sending. A channel
that fails (SMTP down, webhook refused) is logged; its state stays as it was,
so the next evaluation tries again. Nothing here raises into a poll.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage, get_connection
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.health import Problem, polling_expected, problems_of, when
from accounts.models import AlertPreference, MailAccount
from accounts.selectors import alert_recipients
from accounts.sentences import account_error_sentence

logger = logging.getLogger(__name__)

REMINDER_AFTER = timedelta(days=1)
# Long enough for one SMTP session and one webhook POST (each bounded by
# its timeout); a crashed evaluation's claim runs out after it.
CLAIM_FOR = timedelta(minutes=2)
WEBHOOK_TIMEOUT = 10.0
SIGNATURE_HEADER = "X-Mailarchive-Signature"
EVENT_HEADER = "X-Mailarchive-Event"

ALERT = "alert"
REMINDER = "reminder"
RECOVERY = "recovery"


@dataclass(frozen=True)
class Notice:
    """What one channel is to send: an event about the current problems."""

    event: str
    problems: tuple[Problem, ...]


def notice_due(
    *, told: str, told_at: datetime | None, problems: list[Problem], now: datetime
) -> Notice | None:
    """What a channel that last told of ``told`` (at ``told_at``) sends now."""
    current = ",".join(problems)
    if current == told:
        if current and (told_at is None or now - told_at >= REMINDER_AFTER):
            return Notice(REMINDER, tuple(problems))
        return None
    return Notice(ALERT if current else RECOVERY, tuple(problems))


def _page_url(account: MailAccount) -> str:
    path = reverse("accounts:account-list", kwargs={"key": account.space.key})
    return f"{settings.MAILARCHIVE_SITE_URL}{path}"


def _problem_sentence(account: MailAccount, problem: Problem) -> str:
    if problem == Problem.SIGNIN_NEEDED:
        return _(
            "Sign-in needed: the provider no longer accepts the account's "
            "sign-in; a space administrator must sign in again."
        )
    if problem == Problem.FAILING:
        last = account_error_sentence(
            account, account.last_error_kind, account.last_error_detail
        )
        return _("%(count)d polls in a row failed. The last error: %(error)s") % {
            "count": account.consecutive_failures,
            "error": last or account.last_error,
        }
    if problem == Problem.STALE:
        since = account.last_success_at or account.created_at
        return _("No poll has completed since %(since)s.") % {"since": when(since)}
    count = len(account.left_on_server)
    return ngettext(
        "%(count)d message stays on the server (too large, or it could not be "
        "archived); the accounts page lists it.",
        "%(count)d messages stay on the server (too large, or they could not "
        "be archived); the accounts page lists them.",
        count,
    ) % {"count": count}


def _mail_text(account: MailAccount, notice: Notice) -> tuple[str, str]:
    name = {"name": account.name, "space": account.space.name}
    if notice.event == RECOVERY:
        if account.enabled:
            subject = _("Mail account %(name)s (%(space)s) works again") % name
            lead = _("The mail account %(name)s of the space %(space)s works again.")
        else:
            subject = _("Mail account %(name)s (%(space)s) is disabled") % name
            lead = _(
                "The mail account %(name)s of the space %(space)s was disabled; "
                "there are no more alerts about it."
            )
        lines = [lead % name]
    else:
        if notice.event == REMINDER:
            subject = _("Reminder: mail account %(name)s (%(space)s) needs attention")
        else:
            subject = _("Mail account %(name)s (%(space)s) needs attention")
        subject %= name
        lines = [
            _("The mail account %(name)s of the space %(space)s needs attention:")
            % name,
            "",
            *(f"- {_problem_sentence(account, p)}" for p in notice.problems),
        ]
    lines += [
        "",
        _("The account: %(url)s") % {"url": _page_url(account)},
        "",
        _(
            "You get this as an administrator. You can switch alert e-mails "
            "off on your preferences page: %(url)s"
        )
        % {
            "url": settings.MAILARCHIVE_SITE_URL + reverse("accounts:alert-preferences")
        },
    ]
    return subject, "\n".join(lines) + "\n"


def _send_mail(account: MailAccount, notice: Notice) -> bool:
    """Send the notice to every recipient; False if it could not be sent."""
    recipients = alert_recipients(account)
    if not recipients:
        return True
    with translation.override(settings.LANGUAGE_CODE):
        subject, body = _mail_text(account, notice)
    try:
        with get_connection(fail_silently=False) as connection:
            connection.send_messages(
                [
                    EmailMessage(
                        subject=subject,
                        body=body,
                        from_email=settings.MAILARCHIVE_ALERT_FROM,
                        to=[user.email],
                        connection=connection,
                    )
                    for user in recipients
                ]
            )
    except Exception as error:
        logger.warning(
            "alert e-mail about mail account %s not sent (retried later): %s",
            account.pk,
            error,
        )
        return False
    return True


def webhook_payload(account: MailAccount, notice: Notice, now: datetime) -> bytes:
    """The JSON body of a webhook POST (README: "Alerts")."""
    body: dict[str, Any] = {
        "event": notice.event,
        "problems": [str(p) for p in notice.problems],
        "account": {
            "id": account.pk,
            "name": account.name,
            "space": account.space.key,
            "protocol": account.protocol,
            "host": account.host,
            "enabled": account.enabled,
            "auth_state": account.auth_state,
            "consecutive_failures": account.consecutive_failures,
            "last_success_at": (
                account.last_success_at.isoformat() if account.last_success_at else None
            ),
            "last_error_kind": account.last_error_kind,
            "left_on_server": len(account.left_on_server or []),
            "url": _page_url(account),
        },
        "sent_at": now.isoformat(),
    }
    return json.dumps(body, sort_keys=True).encode()


def webhook_signature(body: bytes, secret: str) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``body`` under ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _post_webhook(account: MailAccount, notice: Notice, now: datetime) -> bool:
    body = webhook_payload(account, notice, now)
    headers = {"Content-Type": "application/json", EVENT_HEADER: notice.event}
    secret = settings.MAILARCHIVE_ALERT_WEBHOOK_SECRET
    if secret:
        headers[SIGNATURE_HEADER] = webhook_signature(body, secret)
    try:
        response = requests.post(
            settings.MAILARCHIVE_ALERT_WEBHOOK_URL,
            data=body,
            headers=headers,
            timeout=WEBHOOK_TIMEOUT,
            allow_redirects=False,
        )
        if not 200 <= response.status_code < 300:
            raise requests.HTTPError(f"answered {response.status_code}")
    except requests.RequestException as error:
        logger.warning(
            "alert webhook about mail account %s failed (retried later): %s",
            account.pk,
            error,
        )
        return False
    return True


def mail_account_alerts_evaluate(
    *, account_id: int, now: datetime | None = None
) -> list[str]:
    """Send what the account's health change calls for; returns what was sent.

    Each entry is ``"email:<event>"`` or ``"webhook:<event>"``. Safe to re-run
    and to run on several workers at once: only the one that claims the
    account sends, and what it sent is recorded, so a re-run sends nothing
    more. A channel that fails is left to the next evaluation.
    """
    now = now or timezone.now()
    account = MailAccount.objects.select_related("space").filter(pk=account_id).first()
    if account is None:
        return []
    problems = problems_of(account, now=now, expected=polling_expected())
    mail = notice_due(
        told=account.alert_email_state,
        told_at=account.alert_email_at,
        problems=problems,
        now=now,
    )
    hook = None
    if settings.MAILARCHIVE_ALERT_WEBHOOK_URL:
        hook = notice_due(
            told=account.alert_webhook_state,
            told_at=account.alert_webhook_at,
            problems=problems,
            now=now,
        )
    if mail is None and hook is None:
        return []
    claimed = (
        MailAccount.objects.filter(
            pk=account.pk,
            alert_email_state=account.alert_email_state,
            alert_email_at=account.alert_email_at,
            alert_webhook_state=account.alert_webhook_state,
            alert_webhook_at=account.alert_webhook_at,
        )
        .filter(Q(alert_claimed_until__isnull=True) | Q(alert_claimed_until__lt=now))
        .update(alert_claimed_until=now + CLAIM_FOR)
    )
    if not claimed:
        return []
    current = ",".join(problems)
    sent: list[str] = []
    updates: dict[str, Any] = {"alert_claimed_until": None}
    try:
        if mail is not None and _send_mail(account, mail):
            updates.update(alert_email_state=current, alert_email_at=now)
            sent.append(f"email:{mail.event}")
        if hook is not None and _post_webhook(account, hook, now):
            updates.update(alert_webhook_state=current, alert_webhook_at=now)
            sent.append(f"webhook:{hook.event}")
    finally:
        MailAccount.objects.filter(pk=account.pk).update(**updates)
    if sent:
        logger.info("mail account %s: alerts sent: %s", account.pk, ", ".join(sent))
    return sent


def mail_account_alerts_evaluate_quietly(*, account_id: int) -> list[str]:
    """:func:`mail_account_alerts_evaluate` for callers that must not fail
    (the poll): any error is logged, and the periodic task tries again."""
    try:
        return mail_account_alerts_evaluate(account_id=account_id)
    except Exception:
        logger.exception("alerts of mail account %s not evaluated", account_id)
        return []


def mail_accounts_alerts_evaluate_all() -> int:
    """Evaluate every account's alerts (the periodic task); returns how many
    notices were sent. Safe to re-run."""
    sent = 0
    for account_id in MailAccount.objects.order_by("pk").values_list("pk", flat=True):
        sent += len(mail_account_alerts_evaluate_quietly(account_id=account_id))
    return sent


def alert_preference_set(*, user: AbstractBaseUser, email_alerts: bool) -> None:
    """Switch ``user``'s alert e-mails on or off. Safe to re-run."""
    AlertPreference.objects.update_or_create(
        user=user, defaults={"email_alerts": email_alerts}
    )
