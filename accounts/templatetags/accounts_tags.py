"""Mail account wording for templates, in the reader's language."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.clients import protocol_get
from accounts.health import Health, State, left_by_reason
from accounts.models import MailAccount, PollRun
from accounts.sentences import (
    account_error_sentence,
    index_error_sentence,
    poll_outcome_sentence,
)
from accounts.services.mail_accounts import TestResult, plain_text_password

register = template.Library()


def _error_of(account: MailAccount, kind: str, detail: str, stored: str) -> str:
    if not kind:
        return stored
    return account_error_sentence(account, kind, detail)


@register.filter
def poll_run_sentence(run: PollRun) -> str:
    """ "Sales (clone) retrieved 12 new messages", or why not."""
    account = run.account
    return poll_outcome_sentence(
        account_name=account.name,
        status=run.status,
        fetched=run.fetched,
        duplicates=run.duplicates,
        left_on_server=run.left_on_server,
        error=_error_of(account, run.error_kind, run.error_detail, run.error),
    )


@register.filter
def account_last_error(account: MailAccount) -> str:
    """The account's last recorded error as an actionable sentence."""
    return _error_of(
        account,
        account.last_error_kind,
        account.last_error_detail,
        account.last_error,
    )


@register.filter
def left_reason(entry: dict[str, Any]) -> str:
    """Why a message stays on the server."""
    reason = entry.get("reason")
    if reason == "too_large":
        return _("larger than the site's limit (MAILARCHIVE_MAX_MESSAGE_BYTES)")
    if reason == "unarchivable":
        return _("could not be archived; the server log has the details")
    return str(reason or "")


@register.filter
def sends_password_in_clear(account: MailAccount) -> bool:
    return plain_text_password(account)


@register.filter
def reads_folders(account: MailAccount) -> bool:
    """Whether the account's protocol reads a named folder (IMAP)."""
    try:
        return protocol_get(account.protocol).reads_folders
    except KeyError:
        return False


_STATE_BADGES = {
    State.OK: "ok",
    State.FAILING: "bad",
    State.STALE: "bad",
    State.SIGNIN_NEEDED: "bad",
    State.ATTENTION: "warn",
}


@register.filter
def health_badge(health: Health) -> str:
    """The badge class of a health state (ok, warn, bad or plain)."""
    return _STATE_BADGES.get(health.state, "")


@register.filter
def health_label(health: Health) -> str:
    """A health state in a word or two."""
    labels = {
        State.OK: _("working"),
        State.FAILING: _("failing"),
        State.STALE: _("no recent poll"),
        State.SIGNIN_NEEDED: _("Sign-in needed"),
        State.ATTENTION: _("needs attention"),
        State.DISABLED: _("disabled"),
        State.NEW: _("not polled yet"),
    }
    return str(labels.get(health.state, health.state))


@register.filter
def account_test_sentence(account: MailAccount) -> str:
    """What the account's last connection test found, in the reader's language."""
    return TestResult(
        ok=bool(account.last_test_ok),
        message_count=account.last_test_count,
        kind=account.last_test_kind,
        detail=account.last_test_detail,
    ).sentence(account)


@register.filter
def account_index_error(account: MailAccount) -> str:
    return index_error_sentence(account.index_error)


@register.filter
def left_summary(account: MailAccount) -> str:
    """Why messages stay on the server, counted by reason; empty for none."""
    counts = left_by_reason(account)
    parts = []
    too_large = counts.pop("too_large", 0)
    if too_large:
        parts.append(
            ngettext(
                "%(count)d too large",
                "%(count)d too large",
                too_large,
            )
            % {"count": too_large}
        )
    failed = sum(counts.values())
    if failed:
        parts.append(
            ngettext(
                "%(count)d could not be archived",
                "%(count)d could not be archived",
                failed,
            )
            % {"count": failed}
        )
    left = len(account.left_on_server or [])
    waiting = (account.on_server_count or 0) - left
    if account.consecutive_failures and waiting > 0:
        parts.append(
            ngettext(
                "%(count)d not fetched yet, as the last poll failed",
                "%(count)d not fetched yet, as the last poll failed",
                waiting,
            )
            % {"count": waiting}
        )
    return ", ".join(parts)
