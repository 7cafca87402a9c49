"""Asking for polls: the site-wide switch, the schedule and "Fetch new mail"."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import FetchSettings, MailAccount, PollRun
from accounts.selectors import fetch_settings_get, mail_accounts_due
from accounts.sentences import fetch_disabled_sentence
from spaces.services import audit_record


class FetchDisabledError(Exception):
    """Fetching is switched off for the whole site (MAILARCHIVE_FETCH_DISABLED)."""

    def __init__(self) -> None:
        super().__init__(fetch_disabled_sentence())


def _dispatch_poll(
    account_id: int, trigger: str, poll_run_id: int | None, expires: float | None
) -> None:
    # Imported here because the task module imports the services.
    from accounts.tasks import mail_account_poll_task

    mail_account_poll_task.apply_async(
        args=(account_id, trigger, poll_run_id), expires=expires
    )


@transaction.atomic
def fetch_settings_set(
    *, automatic_polling: bool, actor: AbstractBaseUser | None
) -> FetchSettings:
    """Turn automatic polling on or off for the whole site, audit-logged.

    Takes effect at the next beat run. Safe to re-run (an unchanged value is not
    logged again).
    """
    fetch_settings_get()
    row = FetchSettings.objects.select_for_update().get(pk=1)
    if row.automatic_polling == automatic_polling:
        return row
    row.automatic_polling = automatic_polling
    row.changed_by = actor if getattr(actor, "is_authenticated", False) else None
    row.changed_at = timezone.now()
    row.save()
    audit_record(
        actor=actor,
        action="fetch.automatic_polling",
        target="on" if automatic_polling else "off",
        detail={"automatic_polling": automatic_polling},
    )
    return row


def mail_account_fetch_request(
    *, account: MailAccount, actor: AbstractBaseUser | None
) -> PollRun:
    """Queue one poll of ``account`` now ("Fetch new mail").

    Creates a queued PollRun and sends the task once it is committed. Raises
    FetchDisabledError when fetching is off for the site, ValidationError for a
    disabled account or a personal space. Each call queues another poll; the
    per-account lease makes overlapping ones skip.
    """
    if settings.MAILARCHIVE_FETCH_DISABLED:
        raise FetchDisabledError
    if not account.space.is_global:
        raise ValidationError(_("Only global spaces hold mail."))
    if not account.enabled:
        raise ValidationError(
            _("%(name)s is disabled; enable it to fetch its mail.")
            % {"name": account.name}
        )
    if account.signin_needed:
        raise ValidationError(
            _("%(name)s needs someone to sign in before its mail can be fetched.")
            % {"name": account.name}
        )
    with transaction.atomic():
        run = PollRun.objects.create(
            account=account,
            trigger=PollRun.Trigger.MANUAL,
            status=PollRun.Status.QUEUED,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        transaction.on_commit(
            partial(
                _dispatch_poll,
                account.pk,
                PollRun.Trigger.MANUAL,
                run.pk,
                settings.MAILARCHIVE_POLL_INTERVAL,
            )
        )
    return run


def mail_accounts_poll_due_dispatch() -> int:
    """Queue one scheduled poll per enabled account of a global space.

    Does nothing when automatic polling is off or fetching is disabled. Each
    task expires before the next beat run, so a backlog never piles up. Returns
    how many polls were queued. Safe to re-run: extra polls of one account skip
    on its lease or find nothing new.
    """
    if settings.MAILARCHIVE_FETCH_DISABLED:
        return 0
    if not fetch_settings_get().automatic_polling:
        return 0
    expires = max(settings.MAILARCHIVE_POLL_INTERVAL - 5, 5)
    account_ids = list(mail_accounts_due())
    with transaction.atomic():
        for account_id in account_ids:
            transaction.on_commit(
                partial(
                    _dispatch_poll,
                    account_id,
                    PollRun.Trigger.SCHEDULE,
                    None,
                    expires,
                )
            )
    return len(account_ids)
