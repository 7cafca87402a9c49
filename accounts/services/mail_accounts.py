"""Creating, changing, removing and testing mail accounts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.clients import ConnectionSettings, MailClientError, open_client
from accounts.clients.base import has_control_character
from accounts.crypto import (
    PasswordUnreadableError,
    password_decrypt,
    password_encrypt,
    password_reencrypt,
)
from accounts.models import MailAccount
from accounts.sentences import INTERNAL, PASSWORD_UNREADABLE, error_sentence
from spaces.models import Space
from spaces.services import audit_record

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
    }
)
# Where the stored password goes: changing any of these sends it to another
# server or user, so the password must be entered again.
CONNECTION_FIELDS = ("protocol", "host", "port", "username", "starttls")
# The fields sent to the mail server as they are, besides the password.
SERVER_TEXT_FIELDS = ("host", "username", "folder")
STARTTLS_PROTOCOLS = frozenset({MailAccount.Protocol.POP, MailAccount.Protocol.IMAP})
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
                if account.protocol
                in (MailAccount.Protocol.IMAP, MailAccount.Protocol.IMAPS)
                else _("the mailbox")
            )
            return ngettext(
                "Connected to %(host)s and logged in; %(where)s holds %(count)d "
                "message.",
                "Connected to %(host)s and logged in; %(where)s holds %(count)d "
                "messages.",
                count,
            ) % {"host": account.host, "where": where, "count": count}
        return error_sentence(
            self.kind,
            host=account.host,
            port=account.port,
            folder=account.folder,
            detail=self.detail,
        )


def poll_deadline() -> float:
    """Seconds a poll's session with the mail server may take in all."""
    limit = settings.MAILARCHIVE_POLL_TIME_LIMIT
    return float(max(limit - POLL_DEADLINE_MARGIN, limit / 2))


def connection_settings_for(
    account: MailAccount,
    *,
    password: str,
    timeout: float | None = None,
    deadline: float | None = None,
) -> ConnectionSettings:
    """The protocol clients' view of ``account``, with the site's TLS and guard.

    ``deadline`` bounds the whole session; by default a poll's
    (``poll_deadline``). Messages over MAILARCHIVE_MAX_MESSAGE_BYTES are not
    read.
    """
    return ConnectionSettings(
        protocol=account.protocol,
        host=account.host,
        port=account.port,
        username=account.username,
        password=password,
        folder=account.folder or "INBOX",
        starttls=account.starttls and account.protocol in STARTTLS_PROTOCOLS,
        timeout=timeout or settings.MAILARCHIVE_MAIL_TIMEOUT,
        allowed_hosts=tuple(settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS),
        ca_file=settings.SSL_CERT_FILE or None,
        deadline=deadline or poll_deadline(),
        max_message_bytes=settings.MAILARCHIVE_MAX_MESSAGE_BYTES,
    )


def plain_text_password(account: MailAccount) -> bool:
    """Whether the password crosses the network unencrypted."""
    return account.protocol in STARTTLS_PROTOCOLS and not account.starttls


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
    if account.starttls and account.protocol not in STARTTLS_PROTOCOLS:
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
    password: str,
    port: int | None = None,
    folder: str = "INBOX",
    starttls: bool = False,
    enabled: bool = True,
    description: str = "",
    actor: AbstractBaseUser | None = None,
) -> MailAccount:
    """Add a mail account to a global space, its password encrypted.

    Raises ValidationError (personal space, taken name, bad field). A blank port
    becomes the protocol's standard one. Not safe to re-run: the name is taken
    the second time.
    """
    if not password:
        raise ValidationError({"password": _("Enter the mailbox's password.")})
    _refuse_control_characters({"password": password})
    account = MailAccount(
        space=space,
        name=name,
        description=description,
        protocol=protocol,
        host=host,
        port=port,
        username=username,
        password_encrypted=password_encrypt(password),
        starttls=starttls,
        folder=folder,
        enabled=enabled,
    )
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
) -> list[str]:
    """Set ``changes`` on ``account`` (not saved) and check the result.

    Returns the names of the fields that change. Raises ValidationError for an
    unknown field, a bad value, or a blank ``password`` when the account would
    reach another server or user than the stored password was entered for.
    """
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed: %(fields)s")
            % {"fields": ", ".join(sorted(unknown))}
        )
    _refuse_control_characters({"password": password})
    before = {name: getattr(account, name) for name in CONNECTION_FIELDS}
    changed = sorted(k for k, v in changes.items() if getattr(account, k) != v)
    for key, value in changes.items():
        setattr(account, key, value)
    _validate(account)
    moved = [
        name for name in CONNECTION_FIELDS if getattr(account, name) != before[name]
    ]
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
    return changed


def mail_account_update_check(
    *, account: MailAccount, changes: dict[str, Any], password: str = ""
) -> None:
    """Raise the ValidationError ``mail_account_update`` would raise, if any.

    Checks against the stored account; changes nothing. Safe to re-run.
    """
    stored = MailAccount.objects.select_related("space").get(pk=account.pk)
    _apply_changes(stored, changes, password)


@transaction.atomic
def mail_account_update(
    *,
    account: MailAccount,
    changes: dict[str, Any],
    password: str = "",
    actor: AbstractBaseUser | None = None,
) -> MailAccount:
    """Change the fields in ``changes``; a blank ``password`` keeps the stored one.

    Changing the protocol, host, port, user name or STARTTLS needs the
    password again (see ``CONNECTION_FIELDS``). Raises ValidationError for a
    bad value, an unknown field or a missing password. Safe to re-run.
    """
    changed = _apply_changes(account, changes, password)
    if password:
        account.password_encrypted = password_encrypt(password)
        changed.append("password")
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

    Changes nothing, on the server or here; safe to re-run. The connection
    guard and certificate checks are the same as for polling.
    """
    try:
        password = password_decrypt(account.password_encrypted)
    except PasswordUnreadableError:
        return TestResult(ok=False, kind=PASSWORD_UNREADABLE)
    timeout = min(settings.MAILARCHIVE_MAIL_TIMEOUT, TEST_TIMEOUT_MAX)
    try:
        with open_client(
            connection_settings_for(
                account, password=password, timeout=timeout, deadline=timeout
            )
        ) as client:
            count = client.message_count()
    except MailClientError as error:
        return TestResult(ok=False, kind=error.kind, detail=str(error))
    except Exception as error:
        logger.exception("connection test of mail account %s failed", account.pk)
        return TestResult(ok=False, kind=INTERNAL, detail=type(error).__name__)
    return TestResult(ok=True, message_count=count)


@dataclass(frozen=True)
class RotationResult:
    rotated: int
    unreadable: list[int]


def mail_account_passwords_rotate() -> RotationResult:
    """Re-encrypt every stored password under the first configured key.

    Accounts whose password no key decrypts are left alone and listed. Safe to
    re-run.
    """
    rotated = 0
    unreadable: list[int] = []
    for account_id in MailAccount.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            account = (
                MailAccount.objects.select_for_update()
                .only("pk", "password_encrypted")
                .get(pk=account_id)
            )
            try:
                token = password_reencrypt(account.password_encrypted)
            except PasswordUnreadableError:
                unreadable.append(account_id)
                continue
            MailAccount.objects.filter(pk=account_id).update(password_encrypted=token)
            rotated += 1
    return RotationResult(rotated=rotated, unreadable=unreadable)
