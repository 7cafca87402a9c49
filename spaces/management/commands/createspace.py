"""manage.py createspace KEY --name NAME [--admin USER]... [--personal --owner USER]"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from spaces.services import space_create


class Command(BaseCommand):
    help = "Creates a space. Global unless --personal (then --owner is required)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="Space key: upper-case letters and digits.")
        parser.add_argument("--name", required=True, help="Display name.")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--admin",
            action="append",
            default=[],
            metavar="USER",
            help="User name to make space admin; repeatable.",
        )
        parser.add_argument("--personal", action="store_true")
        parser.add_argument("--owner", metavar="USER")
        parser.add_argument(
            "--anonymous",
            action="store_true",
            help="Let anonymous visitors view the space.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        if options["personal"] and not options["owner"]:
            raise CommandError("--personal needs --owner USER.")
        if options["owner"] and not options["personal"]:
            raise CommandError("--owner is only for --personal spaces.")

        def find(name: str):
            user = users.filter(username=name).first()
            if user is None:
                raise CommandError(f"Unknown user: {name!r}.")
            return user

        owner = find(options["owner"]) if options["owner"] else None
        admins = [find(name) for name in options["admin"]]
        try:
            space = space_create(
                key=options["key"],
                name=options["name"],
                description=options["description"],
                personal_owner=owner,
                admins=admins,
                allow_anonymous=options["anonymous"],
            )
        except ValidationError as exc:
            messages = []
            for field, errors in exc.message_dict.items():
                for error in errors:
                    if field == "key" and "already exists" in error:
                        error = f"a space with key {options['key']!r} exists already"
                    messages.append(f"{field}: {error}")
            raise CommandError("; ".join(messages)) from exc
        self.stdout.write(f"Created {space.kind} space {space.key} ({space.name}).")
