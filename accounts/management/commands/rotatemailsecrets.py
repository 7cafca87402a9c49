"""manage.py rotatemailsecrets: re-encrypt passwords and OAuth2 tokens under
the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.services import mail_account_secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored mail account secret (passwords and OAuth2 "
        "tokens) under the first key of MAILARCHIVE_ENCRYPTION_KEY. Run it "
        "after putting a new key first; then the old keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = mail_account_secrets_rotate()
        self.stdout.write(
            f"Re-encrypted {result.rotated} mail accounts' secrets (passwords "
            "and OAuth2 tokens)."
        )
        if result.unreadable:
            raise CommandError(
                "No configured key decrypts the secrets of mail account(s) "
                + ", ".join(str(i) for i in result.unreadable)
                + ": enter their passwords again, or sign them in again, on the "
                "mail account page."
            )
