"""manage.py addmailaccount: add a mail account to a global space."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import providers
from accounts.models import MailAccount
from accounts.providers import TokenSet
from accounts.services import mail_account_create
from accounts.services.mail_accounts import plain_text_password
from spaces.models import Space

OAUTH2_PROVIDERS = [m for m in MailAccount.AuthMethod.values if m != "password"]


class Command(BaseCommand):
    help = (
        "Add a POP/POPS/IMAP/IMAPS mail account to a global space and print its "
        "id. The password is read from standard input (first line); with --auth "
        "oauth2 the mailbox signs in at its provider instead (device code: the "
        "command prints an address and a code, and waits until they are "
        "approved)."
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
            help="read the password from standard input (the only way to give it)",
        )
        parser.add_argument(
            "--auth",
            choices=["password", "oauth2"],
            default="password",
            help="how the mailbox signs in (default: password)",
        )
        parser.add_argument(
            "--provider",
            choices=OAUTH2_PROVIDERS,
            help="with --auth oauth2: the provider the mailbox signs in with",
        )
        parser.add_argument(
            "--scopes", default="", help="with --auth oauth2: scopes to ask for"
        )
        parser.add_argument("--folder", default="INBOX", help="IMAP folder")
        parser.add_argument("--starttls", action="store_true")
        parser.add_argument("--disabled", action="store_true")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        space = Space.objects.filter(key=options["space"]).first()
        if space is None:
            raise CommandError(f"No space with the key {options['space']!r}.")
        password = ""
        grant: TokenSet | None = None
        method = MailAccount.AuthMethod.PASSWORD
        if options["auth"] == "oauth2":
            if options["password_stdin"]:
                raise CommandError("--auth oauth2 takes no password.")
            if not options["provider"]:
                raise CommandError("--auth oauth2 needs --provider.")
            method = options["provider"]
            grant = self._device_sign_in(method, options["scopes"])
        else:
            if not options["password_stdin"]:
                raise CommandError(
                    "Give the password on standard input with --password-stdin, "
                    "or sign in with --auth oauth2."
                )
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
                auth_method=method,
                oauth2_scopes=options["scopes"],
                grant=grant,
            )
        except ValidationError as error:
            if grant is not None:
                # Nothing was stored; the provider forgets the grant too.
                providers.token_revoke(
                    providers.provider_get(method), token=grant.refresh_token
                )
            raise CommandError(" ".join(error.messages)) from error
        if plain_text_password(account):
            self.stderr.write(
                f"Warning: {account.name} uses {account.get_protocol_display()} "
                "without STARTTLS; its password crosses the network in clear."
            )
        if grant is not None:
            self.stderr.write(f"Signed in as {grant.address or account.username}.")
        self.stdout.write(str(account.pk))

    def _device_sign_in(self, key: str, scopes_text: str) -> TokenSet:
        """Run the device flow: print the address and code, wait for approval."""
        try:
            provider = providers.provider_get(key)
        except providers.ProviderError as error:
            raise CommandError(
                f"Cannot sign in with {key}: {error}. The operator configures "
                "providers with the MAILARCHIVE_OAUTH2_* settings (see the README)."
            ) from error
        if provider.device_note:
            self.stderr.write(f"Note: {provider.device_note}")
        scopes = tuple(dict.fromkeys(scopes_text.split())) or provider.scopes
        try:
            device = providers.device_authorization_start(provider, scopes=scopes)
        except providers.ProviderError as error:
            raise CommandError(
                f"{provider.label} refused the sign-in: {error}."
            ) from error
        where = device.verification_uri_complete or device.verification_uri
        # The address and code go to standard error: standard output carries
        # only the account id, for scripts.
        self.stderr.write(
            f"To sign the mailbox in, open {device.verification_uri} and enter "
            f"the code {device.user_code}"
            + (f" (or open {where})" if where != device.verification_uri else "")
            + ". Waiting…"
        )
        self.stderr.flush()
        interval = device.interval
        while True:
            if time.monotonic() >= device.expires_at:
                raise CommandError(
                    "The code expired before it was approved; nothing was stored. "
                    "Run the command again.",
                    returncode=1,
                )
            time.sleep(interval)
            try:
                return providers.device_authorization_poll(provider, device)
            except providers.SlowDownError:
                interval += 5
            except providers.AuthorizationPendingError:
                continue
            except providers.ProviderError as error:
                raise CommandError(
                    f"{provider.label} did not sign the mailbox in: {error}. "
                    "Nothing was stored.",
                    returncode=1,
                ) from error
