"""Mail account wording for templates, in the reader's language."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from accounts.clients import protocol_get
from accounts.models import MailAccount, PollRun
from accounts.sentences import error_sentence, poll_outcome_sentence
from accounts.services.mail_accounts import plain_text_password

register = template.Library()


def _error_of(account: MailAccount, kind: str, detail: str, stored: str) -> str:
    if not kind:
        return stored
    return error_sentence(
        kind,
        host=account.host,
        port=account.port,
        folder=account.folder,
        protocol=account.protocol,
        detail=detail,
    )


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
