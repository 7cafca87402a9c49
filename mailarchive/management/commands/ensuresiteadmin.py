"""Makes sure a site admin exists, so that a new installation can be used at once."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from users.services import password_generate


class Command(BaseCommand):
    help = (
        "Creates a site admin when there is none: from DJANGO_SUPERUSER_USERNAME, "
        "DJANGO_SUPERUSER_PASSWORD and DJANGO_SUPERUSER_EMAIL when set, otherwise "
        "'admin' with a generated password that is printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="",
            help="where the site is served (e.g. http://127.0.0.1:8000), to "
            "print the full address of the password page",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        existing = users.filter(is_superuser=True, is_active=True).first()
        if existing is not None:
            self.stdout.write(f"Site admin: {existing.get_username()}")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        generated = not password
        if generated:
            password = password_generate()
        user = users.filter(username=username).first()
        if user is None:
            users.create_superuser(username=username, email=email, password=password)
        else:
            user.is_superuser = user.is_staff = user.is_active = True
            user.set_password(password)
            user.save()
        if generated:
            page = options["base_url"].rstrip("/") + reverse("users:password-change")
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created site admin {username!r} with password {password!r}. "
                    f"It is shown only this once: log in and change it at {page}"
                )
            )
        else:
            self.stdout.write(f"Created site admin {username!r}.")
