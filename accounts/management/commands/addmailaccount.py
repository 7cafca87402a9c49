"""manage.py addmailaccount: add a mail account to a global space."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import MailAccount
from accounts.services import mail_account_create
from accounts.services.mail_accounts import plain_text_password
from spaces.models import Space


class Command(BaseCommand):
    help = (
        "Add a POP/POPS/IMAP/IMAPS mail account to a global space and print its "
        "id. The password is read from standard input (first line)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--space", required=True, help="the space's key")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--protocol", required=True, choices=MailAccount.Protocol.values
        )
        parser.add_argument("--host", required=True)
        parser.add_argument(
            "--port", type=int, help="default: the protocol's standard port"
        )
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            required=True,
            help="read the password from standard input (the only way to give it)",
        )
        parser.add_argument("--folder", default="INBOX", help="IMAP folder")
        parser.add_argument("--starttls", action="store_true")
        parser.add_argument("--disabled", action="store_true")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        space = Space.objects.filter(key=options["space"]).first()
        if space is None:
            raise CommandError(f"No space with the key {options['space']!r}.")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("No password on standard input.")
        try:
            account = mail_account_create(
                space=space,
                name=options["name"],
                description=options["description"],
                protocol=options["protocol"],
                host=options["host"],
                port=options["port"],
                username=options["username"],
                password=password,
                folder=options["folder"],
                starttls=options["starttls"],
                enabled=not options["disabled"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if plain_text_password(account):
            self.stderr.write(
                f"Warning: {account.name} uses {account.get_protocol_display()} "
                "without STARTTLS; its password crosses the network in clear."
            )
        self.stdout.write(str(account.pk))
