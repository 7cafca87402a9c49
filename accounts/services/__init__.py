"""Writes about mail accounts: managing them, testing them, polling them.

Split by subject; import from here.
"""

from .fetching import (
    fetch_settings_set,
    mail_account_fetch_request,
    mail_accounts_poll_due_dispatch,
)
from .mail_accounts import (
    TestResult,
    connection_settings_for,
    mail_account_create,
    mail_account_delete,
    mail_account_passwords_rotate,
    mail_account_secrets_rotate,
    mail_account_set_enabled,
    mail_account_test,
    mail_account_update,
    mail_account_update_check,
)
from .polling import PollSummary, mail_account_poll
from .signin import (
    mail_account_credential,
    mail_account_grant_store,
    mail_account_signin_finish,
    mail_account_signin_start,
    oauth2_access_token_get,
)

__all__ = [
    "PollSummary",
    "TestResult",
    "connection_settings_for",
    "fetch_settings_set",
    "mail_account_create",
    "mail_account_credential",
    "mail_account_delete",
    "mail_account_fetch_request",
    "mail_account_grant_store",
    "mail_account_passwords_rotate",
    "mail_account_poll",
    "mail_account_secrets_rotate",
    "mail_account_set_enabled",
    "mail_account_signin_finish",
    "mail_account_signin_start",
    "mail_account_test",
    "mail_account_update",
    "mail_account_update_check",
    "mail_accounts_poll_due_dispatch",
    "oauth2_access_token_get",
]
