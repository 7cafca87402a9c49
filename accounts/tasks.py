"""Celery tasks for mail accounts: thin wrappers around the services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .sentences import TRANSIENT_KINDS
from .services import mail_account_poll, mail_accounts_poll_due_dispatch
from .services.alerts import mail_accounts_alerts_evaluate_all


class MailAccountUnreachableError(Exception):
    """A poll failed in a way that may pass (network, database); retried."""


@shared_task(name="accounts.tasks.mail_accounts_poll_due", ignore_result=True)
def mail_accounts_poll_due() -> int:
    """Beat: queue one poll per enabled account (none when polling is off)."""
    return mail_accounts_poll_due_dispatch()


@shared_task(
    name="accounts.tasks.mail_account_poll_task",
    ignore_result=True,
    autoretry_for=(MailAccountUnreachableError,),
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=3,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def mail_account_poll_task(
    account_id: int, trigger: str, poll_run_id: int | None = None
) -> str:
    """Poll one account and return the one-line summary.

    Network and database failures are retried with backoff; a rejected login,
    an untrusted certificate or a missing folder are not (they need an admin).
    """
    summary = mail_account_poll(
        account_id=account_id, trigger=trigger, poll_run_id=poll_run_id
    )
    if summary.failed and summary.error_kind in TRANSIENT_KINDS:
        raise MailAccountUnreachableError(summary.line())
    return summary.line()


@shared_task(name="accounts.tasks.mail_account_alerts_evaluate_all", ignore_result=True)
def mail_account_alerts_evaluate_all() -> str:
    """Beat: alerts for accounts that stopped completing polls, and retries of
    alerts that could not be sent. Safe to run on several workers at once."""
    return f"sent {mail_accounts_alerts_evaluate_all()} alert notices"
