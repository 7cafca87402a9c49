"""``manage.py createapitoken USER [--name NAME] [--expires-days N]``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from spaces.selectors import user_by_name

from ...services import api_token_create


class Command(BaseCommand):
    help = (
        "Creates a personal API token for USER and prints it once, on its own "
        "last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="the user name the token stands for")
        parser.add_argument("--name", default="command line", help="what it is for")
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            help="days until it stops working (default: until revoked)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_name(options["user"])
        if user is None or not user.is_active:
            raise CommandError(f"no active user is called {options['user']!r}")
        try:
            created = api_token_create(
                user=user,
                name=options["name"],
                expires_in_days=options["expires_days"],
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        token = created.token
        until = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            if token.expires_at
            else "does not expire"
        )
        self.stdout.write(
            f"API token {token.name!r} for {user.get_username()} ({until}); "
            "it is shown only now:"
        )
        self.stdout.write(created.secret)
