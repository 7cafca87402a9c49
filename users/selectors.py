"""Reads about the site's users."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404


def users_all() -> QuerySet[AbstractBaseUser]:
    """Every user, active ones first, by user name."""
    return get_user_model().objects.order_by("-is_active", "username")


def user_get(user_id: int) -> AbstractBaseUser:
    """The user with ``user_id``; 404 if there is none."""
    return get_object_or_404(get_user_model(), pk=user_id)
