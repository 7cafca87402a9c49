"""The mail accounts of a space, counted and removed when the space is deleted."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from accounts.models import MailAccount
from spaces.contents import SpaceContents
from spaces.models import Space

from .mail_accounts import mail_account_delete


def space_mail_accounts_count(space: Space) -> dict[str, int]:
    """How many mail accounts poll into ``space``."""
    return {"mail_accounts": MailAccount.objects.filter(space=space).count()}


def space_mail_accounts_delete_batch(
    space: Space, actor: AbstractBaseUser | None
) -> int:
    """Remove one of ``space``'s mail accounts with its poll history and ledger.

    Audit-logged like removing it on its page. A poll that is running for it
    cannot commit what it fetches any more (its ledger rows would name a
    removed account), so nothing is deleted on the server for it. Returns 1,
    or 0 when the space has no account left; safe to re-run.
    """
    with transaction.atomic(durable=True):
        account = (
            MailAccount.objects.select_for_update()
            .select_related("space")
            .filter(space=space)
            .order_by("pk")
            .first()
        )
        if account is None:
            return 0
        mail_account_delete(account=account, actor=actor)
        return 1


# Before the archive: an account removed first brings no mail in meanwhile.
MAIL_ACCOUNT_CONTENTS = SpaceContents(
    order=10,
    count=space_mail_accounts_count,
    delete_batch=space_mail_accounts_delete_batch,
)
