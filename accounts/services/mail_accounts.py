"""Creating, changing, removing and testing mail accounts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import providers
from accounts.clients import (
    ConnectionSettings,
    Credential,
    MailClientError,
    Password,
    open_client,
    protocol_get,
)
from accounts.clients.base import ErrorKind, has_control_character
from accounts.crypto import (
    PasswordUnreadableError,
    password_encrypt,
    password_reencrypt,
)
from accounts.models import MailAccount
from accounts.providers import ProviderError, TokenSet
from accounts.sentences import (
    INTERNAL,
    PASSWORD_UNREADABLE,
    account_error_sentence,
)
from spaces.models import Space
from spaces.services import audit_record

from .signin import (
    grant_check,
    grant_fields,
    mail_account_credential,
    oauth2_access_token_forget,
)

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "protocol",
        "host",
        "port",
        "username",
        "folder",
        "starttls",
        "enabled",
        "auth_method",
        "oauth2_scopes",
    }
)
# Where the stored credential goes: changing any of these sends it to another
# server or user, so the password must be entered again, or (OAuth2) someone
# must sign in again.
CONNECTION_FIELDS = ("protocol", "host", "port", "username", "starttls")
# How the account signs in; changing it needs the new credential too.
CREDENTIAL_FIELDS = ("auth_method", "oauth2_scopes")
# The fields sent to the mail server as they are, besides the password.
SERVER_TEXT_FIELDS = ("host", "username", "folder")
# A connection test runs while the admin waits for the page: this long at most,
# for every read and for the whole test.
TEST_TIMEOUT_MAX = 20.0
# A poll's session with the server ends this long before the task's hard time
# limit (and a minute before its soft one), so it fails with a sentence
# instead of being killed.
POLL_DEADLINE_MARGIN = 120


@dataclass(frozen=True)
class TestResult:
    """The outcome of a connection test: a message count or an error kind."""

    __test__ = False  # not a pytest test class, despite the name

    ok: bool
    message_count: int | None = None
    kind: str = ""
    detail: str = ""

    def sentence(self, account: MailAccount) -> str:
        """What to tell the admin, in the current language."""
        if self.ok:
            count = self.message_count or 0
            where = (
                _("folder %(folder)s") % {"folder": account.folder}
                if protocol_get(account.protocol).reads_folders
                else _("the mailbox")
            )
            return ngettext(
                "Connected to %(host)s and logged in; %(where)s holds %(count)d "
                "message.",
                "Connected to %(host)s and logged in; %(where)s holds %(count)d "
                "messages.",
                count,
            ) % {"host": account.host, "where": where, "count": count}
        return account_error_sentence(account, self.kind, self.detail)


def poll_deadline() -> float:
    """Seconds a poll's session with the mail server may take in all."""
    limit = settings.MAILARCHIVE_POLL_TIME_LIMIT
    return float(max(limit - POLL_DEADLINE_MARGIN, limit / 2))


def starttls_applies(protocol: str) -> bool:
    """Whether STARTTLS means anything for ``protocol`` (not TLS from the start)."""
    try:
        return protocol_get(protocol).offers_starttls
    except KeyError:
        return False


def connection_settings_for(
    account: MailAccount,
    *,
    password: str | None = None,
    credential: Credential | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> ConnectionSettings:
    """The protocol clients' view of ``account``, with the site's TLS and guard.

    ``credential`` is what the client signs in with (``password`` is
    shorthand for a ``Password``). ``deadline`` bounds the whole session; by
    default a poll's (``poll_deadline``). Messages over
    MAILARCHIVE_MAX_MESSAGE_BYTES are not read.
    """
    if credential is None:
        credential = Password(password or "")
    return ConnectionSettings(
        protocol=account.protocol,
        host=account.host,
        port=account.port,
        username=account.username,
        credential=credential,
        folder=account.folder or "INBOX",
        starttls=account.starttls and starttls_applies(account.protocol),
        timeout=timeout or settings.MAILARCHIVE_MAIL_TIMEOUT,
        allowed_hosts=tuple(settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS),
        ca_file=settings.SSL_CERT_FILE or None,
        deadline=deadline or poll_deadline(),
        max_message_bytes=settings.MAILARCHIVE_MAX_MESSAGE_BYTES,
    )


def plain_text_password(account: MailAccount) -> bool:
    """Whether the password (or token) crosses the network unencrypted."""
    return starttls_applies(account.protocol) and not account.starttls


def _refuse_control_characters(values: dict[str, str]) -> None:
    """Raise ValidationError for each value holding a control character.

    ``values`` maps field names (``password`` among them) to what would be
    sent to the mail server. A line break there would reach the server as a
    command of its own.
    """
    errors = {}
    for name, value in values.items():
        if value and has_control_character(value):
            label = (
                _("password")
                if name == "password"
                else MailAccount._meta.get_field(name).verbose_name
            )
            errors[name] = _(
                "The %(field)s may not contain control characters such as line "
                "breaks or tabs: the mail server would read them as the end of a "
                "command."
            ) % {"field": label}
    if errors:
        raise ValidationError(errors)


def _validate(account: MailAccount) -> None:
    """Fill defaults and check ``account``; raises ValidationError."""
    if not account.space.is_global:
        raise ValidationError(
            _("Only global spaces hold mail; a personal space has no mail accounts.")
        )
    account.name = account.name.strip()
    account.host = account.host.strip()
    account.folder = (account.folder or "").strip() or "INBOX"
    _refuse_control_characters(
        {name: getattr(account, name) or "" for name in SERVER_TEXT_FIELDS}
    )
    if account.port is None and account.protocol in MailAccount.DEFAULT_PORTS:
        account.port = MailAccount.DEFAULT_PORTS[account.protocol]
    account.oauth2_scopes = " ".join(dict.fromkeys(account.oauth2_scopes.split()))
    if account.uses_oauth2 and account.auth_method not in (
        providers.provider_keys_configured()
    ):
        raise ValidationError(
            {
                "auth_method": _(
                    "The site is not registered with this sign-in provider; "
                    "the site administrator can set it up."
                )
            }
        )
    if account.port is not None and not 0 < account.port < 65536:
        raise ValidationError({"port": _("A port is a number from 1 to 65535.")})
    if not account.host or any(c.isspace() or c in "/@" for c in account.host):
        raise ValidationError(
            {
                "host": _(
                    "Enter the mail server's name or address, e.g. mail.example.org."
                )
            }
        )
    if account.starttls and not starttls_applies(account.protocol):
        raise ValidationError(
            {
                "starttls": _(
                    "STARTTLS applies to POP and IMAP; POPS and IMAPS are encrypted "
                    "from the start."
                )
            }
        )
    account.full_clean()


def _audit_detail(account: MailAccount) -> dict[str, Any]:
    return {
        "id": account.pk,
        "protocol": account.protocol,
        "host": account.host,
        "port": account.port,
        "username": account.username,
    }


@transaction.atomic
def mail_account_create(
    *,
    space: Space,
    name: str,
    protocol: str,
    host: str,
    username: str,
    password: str = "",
    port: int | None = None,
    folder: str = "INBOX",
    starttls: bool = False,
    enabled: bool = True,
    description: str = "",
    actor: AbstractBaseUser | None = None,
    auth_method: str = MailAccount.AuthMethod.PASSWORD,
    oauth2_scopes: str = "",
    grant: TokenSet | None = None,
) -> MailAccount:
    """Add a mail account to a global space, its password or grant encrypted.

    A password account needs ``password``. An OAuth2 account (``auth_method``
    a configured provider) takes no password: with ``grant`` (from the device
    flow) it is signed in at once, without it it waits in "Sign-in needed"
    until someone signs in. Raises ValidationError (personal space, taken
    name, bad field, a grant for another mailbox). A blank port becomes the
    protocol's standard one. Not safe to re-run: the name is taken the second
    time.
    """
    oauth2 = auth_method != MailAccount.AuthMethod.PASSWORD
    if oauth2 and password:
        raise ValidationError(
            {"password": _("An account that signs in with OAuth2 has no password.")}
        )
    if not oauth2 and not password:
        raise ValidationError({"password": _("Enter the mailbox's password.")})
    _refuse_control_characters({"password": password})
    if grant is not None:
        grant_check(username=username, tokens=grant)
    account = MailAccount(
        space=space,
        name=name,
        description=description,
        protocol=protocol,
        host=host,
        port=port,
        username=username,
        password_encrypted=password_encrypt(password) if password else "",
        starttls=starttls,
        folder=folder,
        enabled=enabled,
        auth_method=auth_method,
        oauth2_scopes=oauth2_scopes,
        auth_state=(
            MailAccount.AuthState.SIGNIN_NEEDED
            if oauth2 and grant is None
            else MailAccount.AuthState.OK
        ),
    )
    if grant is not None:
        for name, value in grant_fields(grant).items():
            setattr(account, name, value)
    _validate(account)
    account.save()
    audit_record(
        actor=actor,
        action="mail_account.create",
        space=space,
        target=account.name,
        detail=_audit_detail(account),
    )
    return account


def _apply_changes(
    account: MailAccount, changes: dict[str, Any], password: str
) -> tuple[list[str], list[str]]:
    """Set ``changes`` on ``account`` (not saved) and check the result.

    Returns the names of the fields that change, and of those among them that
    point the account's credential elsewhere. Raises ValidationError for an
    unknown field, a bad value, or a blank ``password`` when a password
    account would reach another server or user than its password was entered
    for. (An OAuth2 account so changed needs signing in again instead; see
    ``mail_account_update``.)
    """
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed: %(fields)s")
            % {"fields": ", ".join(sorted(unknown))}
        )
    _refuse_control_characters({"password": password})
    watched = (*CONNECTION_FIELDS, *CREDENTIAL_FIELDS)
    before = {name: getattr(account, name) for name in watched}
    changed = sorted(k for k, v in changes.items() if getattr(account, k) != v)
    for key, value in changes.items():
        setattr(account, key, value)
    _validate(account)
    moved = [name for name in watched if getattr(account, name) != before[name]]
    if account.uses_oauth2:
        if password:
            raise ValidationError(
                {"password": _("An account that signs in with OAuth2 has no password.")}
            )
        return changed, moved
    if moved and not password:
        raise ValidationError(
            {
                "password": _(
                    "Enter the password again. A stored password is only ever "
                    "sent to the server and user it was entered for, and this "
                    "change (%(fields)s) points the account elsewhere."
                )
                % {
                    "fields": ", ".join(
                        str(MailAccount._meta.get_field(name).verbose_name)
                        for name in moved
                    )
                }
            }
        )
    return changed, moved


def mail_account_update_check(
    *, account: MailAccount, changes: dict[str, Any], password: str = ""
) -> None:
    """Raise the ValidationError ``mail_account_update`` would raise, if any.

    Checks against the stored account; changes nothing. Safe to re-run.
    """
    stored = MailAccount.objects.select_related("space").get(pk=account.pk)
    _apply_changes(stored, changes, password)


def _forget_grant(account: MailAccount) -> None:
    account.auth_state = MailAccount.AuthState.SIGNIN_NEEDED
    account.oauth2_access_token_encrypted = ""
    account.oauth2_access_token_expires_at = None
    account.oauth2_refresh_token_encrypted = ""
    account.oauth2_signed_in_as = ""
    account.oauth2_signed_in_at = None


@transaction.atomic
def mail_account_update(
    *,
    account: MailAccount,
    changes: dict[str, Any],
    password: str = "",
    actor: AbstractBaseUser | None = None,
) -> MailAccount:
    """Change the fields in ``changes``; a blank ``password`` keeps the stored one.

    Changing the protocol, host, port, user name, STARTTLS or how the account
    signs in needs the credential again (see ``CONNECTION_FIELDS``): a
    password account the password, while an OAuth2 account forgets its grant
    and waits in "Sign-in needed" until someone signs in. Raises
    ValidationError for a bad value, an unknown field or a missing password.
    Safe to re-run.
    """
    changed, moved = _apply_changes(account, changes, password)
    if account.uses_oauth2:
        # A password of an account that now signs in otherwise is not kept.
        account.password_encrypted = ""
        if moved:
            _forget_grant(account)
    elif password:
        account.password_encrypted = password_encrypt(password)
        changed.append("password")
        if moved:
            _forget_grant(account)
            account.auth_state = MailAccount.AuthState.OK
    account.save()
    if changed:
        audit_record(
            actor=actor,
            action="mail_account.update",
            space=account.space,
            target=account.name,
            detail={**_audit_detail(account), "changed": changed},
        )
    return account


@transaction.atomic
def mail_account_delete(
    *, account: MailAccount, actor: AbstractBaseUser | None = None
) -> None:
    """Remove the account with its poll history and fetch ledger.

    The mail it archived stays in the space. Not safe to re-run on the same
    instance (it no longer exists).
    """
    audit_record(
        actor=actor,
        action="mail_account.delete",
        space=account.space,
        target=account.name,
        detail=_audit_detail(account),
    )
    account.delete()


@transaction.atomic
def mail_account_set_enabled(
    *, account: MailAccount, enabled: bool, actor: AbstractBaseUser | None = None
) -> MailAccount:
    """Switch scheduled polling of one account on or off. Safe to re-run."""
    if account.enabled == enabled:
        return account
    account.enabled = enabled
    account.save(update_fields=["enabled", "updated_at"])
    audit_record(
        actor=actor,
        action="mail_account.enable" if enabled else "mail_account.disable",
        space=account.space,
        target=account.name,
        detail={"id": account.pk},
    )
    return account


def mail_account_test(account: MailAccount) -> TestResult:
    """Connect, log in, open the folder and count the messages.

    Changes nothing on the server; records the result on the account (it is
    part of the health the pages show). Safe to re-run. The connection guard
    and certificate checks are the same as for polling.
    """
    result = _connection_test(account)
    now = timezone.now()
    fields = {
        "last_test_at": now,
        "last_test_ok": result.ok,
        "last_test_kind": result.kind,
        "last_test_detail": result.detail,
        "last_test_count": result.message_count,
    }
    MailAccount.objects.filter(pk=account.pk).update(**fields)
    for name, value in fields.items():
        setattr(account, name, value)
    return result


def _connection_test(account: MailAccount) -> TestResult:
    try:
        credential = mail_account_credential(account)
    except PasswordUnreadableError:
        return TestResult(ok=False, kind=PASSWORD_UNREADABLE)
    except ProviderError as error:
        return TestResult(ok=False, kind=error.kind, detail=error.detail)
    timeout = min(settings.MAILARCHIVE_MAIL_TIMEOUT, TEST_TIMEOUT_MAX)
    try:
        with open_client(
            connection_settings_for(
                account, credential=credential, timeout=timeout, deadline=timeout
            )
        ) as client:
            count = client.message_count()
    except MailClientError as error:
        if error.kind == ErrorKind.TOKEN_REJECTED:
            oauth2_access_token_forget(account_id=account.pk)
        return TestResult(ok=False, kind=error.kind, detail=error.detail)
    except Exception as error:
        logger.exception("connection test of mail account %s failed", account.pk)
        return TestResult(ok=False, kind=INTERNAL, detail=type(error).__name__)
    return TestResult(ok=True, message_count=count)


@dataclass(frozen=True)
class RotationResult:
    rotated: int
    unreadable: list[int]


SECRET_FIELDS = (
    "password_encrypted",
    "oauth2_refresh_token_encrypted",
    "oauth2_access_token_encrypted",
)


def mail_account_secrets_rotate() -> RotationResult:
    """Re-encrypt every stored secret (passwords, OAuth2 tokens) under the
    first configured key.

    Accounts holding a secret no key decrypts are left alone and listed.
    ``rotated`` counts the accounts re-encrypted. Safe to re-run.
    """
    rotated = 0
    unreadable: list[int] = []
    for account_id in MailAccount.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            account = (
                MailAccount.objects.select_for_update()
                .only("pk", *SECRET_FIELDS)
                .get(pk=account_id)
            )
            try:
                tokens = {
                    name: password_reencrypt(getattr(account, name))
                    for name in SECRET_FIELDS
                    if getattr(account, name)
                }
            except PasswordUnreadableError:
                unreadable.append(account_id)
                continue
            if tokens:
                MailAccount.objects.filter(pk=account_id).update(**tokens)
                rotated += 1
    return RotationResult(rotated=rotated, unreadable=unreadable)


# The earlier name, for callers that only knew passwords.
mail_account_passwords_rotate = mail_account_secrets_rotate
