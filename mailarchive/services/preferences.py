"""The reader's own preferences for reading the archive."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ..models import ReadingPreference


@transaction.atomic(durable=True)
def reading_preference_set(
    *, user: AbstractBaseUser, mail_view: ReadingPreference.MailView
) -> ReadingPreference:
    """Remember how ``user`` wants the mail list shown. Safe to re-run: the
    same call leaves the same single row."""
    preference, _created = ReadingPreference.objects.update_or_create(
        user=user, defaults={"mail_view": mail_view}
    )
    return preference
