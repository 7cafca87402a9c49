"""Makes sure a site admin exists, so that a new installation can be used at once."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Creates a site admin when there is none: from DJANGO_SUPERUSER_USERNAME, "
        "DJANGO_SUPERUSER_PASSWORD and DJANGO_SUPERUSER_EMAIL when set, otherwise "
        "'admin' with a generated password that is printed once."
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
            password = secrets.token_urlsafe(12)
        user = users.filter(username=username).first()
        if user is None:
            users.create_superuser(username=username, email=email, password=password)
        else:
            user.is_superuser = user.is_staff = user.is_active = True
            user.set_password(password)
            user.save()
        if generated:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created site admin {username!r} with password {password!r}. "
                    "It is shown only this once: change it after logging in."
                )
            )
        else:
            self.stdout.write(f"Created site admin {username!r}.")
