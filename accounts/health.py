"""One account's health: the one statement the pages make, and the problems
alerts tell of.

Pure functions of a ``MailAccount`` row and the time; the pages, the site
report, the alerts and the connection test's answer all read them from here,
so that they never contradict each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import MailAccount


class Problem(enum.StrEnum):
    """What an alert tells of; several may hold at once."""

    FAILING = "failing"
    STALE = "stale"
    SIGNIN_NEEDED = "signin_needed"
    LEFT_ON_SERVER = "left_on_server"


class State(enum.StrEnum):
    OK = "ok"
    FAILING = "failing"
    STALE = "stale"
    SIGNIN_NEEDED = "signin_needed"
    ATTENTION = "attention"
    DISABLED = "disabled"
    NEW = "new"


# States a site admin must act on (listed first, counted as failing).
BAD_STATES = frozenset({State.FAILING, State.STALE, State.SIGNIN_NEEDED})


@dataclass(frozen=True)
class Health:
    state: State
    sentence: str

    @property
    def bad(self) -> bool:
        return self.state in BAD_STATES


def when(moment: datetime) -> str:
    """A moment as the pages show it (the reader's time zone and format)."""
    return formats.localize(timezone.localtime(moment))


def polling_expected() -> bool:
    """Whether scheduled polls run at all (so that silence means trouble)."""
    from .selectors import fetch_settings_get

    return (
        not settings.MAILARCHIVE_FETCH_DISABLED
        and fetch_settings_get().automatic_polling
    )


def stale_since(
    account: MailAccount, *, now: datetime, expected: bool
) -> datetime | None:
    """Since when ``account`` has not completed a poll, if for too long.

    Only for accounts that scheduled polling covers; an account waiting for
    a sign-in has a problem of its own. None when it is not stale.
    """
    if not expected or not account.enabled or account.signin_needed:
        return None
    if not account.space.is_global:
        return None
    since = account.last_success_at or account.created_at
    limit = timedelta(hours=settings.MAILARCHIVE_ALERT_STALE_HOURS)
    return since if since is not None and now - since > limit else None


def problems_of(
    account: MailAccount, *, now: datetime, expected: bool
) -> list[Problem]:
    """The problems an alert tells of, in a fixed order (none when disabled)."""
    if not account.enabled or not account.space.is_global:
        return []
    found = []
    if account.signin_needed:
        found.append(Problem.SIGNIN_NEEDED)
    if account.consecutive_failures >= settings.MAILARCHIVE_ALERT_FAILURES:
        found.append(Problem.FAILING)
    if stale_since(account, now=now, expected=expected):
        found.append(Problem.STALE)
    if account.left_on_server:
        found.append(Problem.LEFT_ON_SERVER)
    return found


def _tested_since_poll(account: MailAccount) -> bool:
    return account.last_test_at is not None and (
        account.last_poll_at is None or account.last_test_at > account.last_poll_at
    )


def health_of(account: MailAccount, *, now: datetime, expected: bool) -> Health:
    """The account's health in one sentence, the connection test included.

    A test newer than the last poll says how the connection is now; the
    polls say whether archiving works. When they disagree the sentence says
    both, and that the next poll decides.
    """
    tested = _tested_since_poll(account)
    failures = account.consecutive_failures
    if not account.enabled:
        return Health(State.DISABLED, _("Disabled: the account is not polled."))
    if account.signin_needed:
        return Health(
            State.SIGNIN_NEEDED,
            _("Sign-in needed: the account is not polled until someone signs in."),
        )
    if failures and tested and account.last_test_ok:
        return Health(
            State.FAILING,
            ngettext(
                "The connection works again (tested %(tested)s), but the last "
                "poll failed; the next poll will tell whether archiving works.",
                "The connection works again (tested %(tested)s), but the last "
                "%(count)d polls failed; the next poll will tell whether "
                "archiving works.",
                failures,
            )
            % {"tested": when(account.last_test_at), "count": failures},
        )
    if failures:
        sentence = ngettext(
            "Failing: the last poll failed.",
            "Failing: the last %(count)d polls failed.",
            failures,
        ) % {"count": failures}
        if tested:
            sentence += " " + _("The connection test of %(tested)s failed as well.") % {
                "tested": when(account.last_test_at)
            }
        return Health(State.FAILING, sentence)
    if tested and account.last_test_ok is False:
        if account.last_success_at:
            sentence = _(
                "Failing: the connection test of %(tested)s failed, although "
                "the last poll worked; the next poll will tell."
            )
        else:
            sentence = _("Failing: the connection test of %(tested)s failed.")
        return Health(State.FAILING, sentence % {"tested": when(account.last_test_at)})
    since = stale_since(account, now=now, expected=expected)
    if since is not None:
        hours = int((now - since).total_seconds() // 3600)
        if account.last_success_at:
            sentence = ngettext(
                "No poll has completed for %(hours)d hour (the last one at %(since)s).",
                "No poll has completed for %(hours)d hours (the last one at "
                "%(since)s).",
                hours,
            )
        else:
            sentence = ngettext(
                "No poll has completed in the %(hours)d hour since the account "
                "was added (%(since)s).",
                "No poll has completed in the %(hours)d hours since the account "
                "was added (%(since)s).",
                hours,
            )
        return Health(State.STALE, sentence % {"hours": hours, "since": when(since)})
    if account.left_on_server:
        count = len(account.left_on_server)
        return Health(
            State.ATTENTION,
            ngettext(
                "Working, but %(count)d message stays on the server.",
                "Working, but %(count)d messages stay on the server.",
                count,
            )
            % {"count": count},
        )
    if account.last_success_at:
        return Health(
            State.OK,
            _("Working: the last poll completed at %(when)s.")
            % {"when": when(account.last_success_at)},
        )
    if tested and account.last_test_ok:
        return Health(State.NEW, _("The connection works; not polled yet."))
    return Health(State.NEW, _("Not polled yet."))


def left_by_reason(account: MailAccount) -> dict[str, int]:
    """How many messages stay on the server, by reason."""
    counts: dict[str, int] = {}
    for entry in account.left_on_server or []:
        reason = str(entry.get("reason") or "")
        counts[reason] = counts.get(reason, 0) + 1
    return counts
