"""Reads about API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import TOKEN_PREFIX, ApiToken, api_token_digest


def api_tokens_of(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def api_token_find(secret: str) -> ApiToken | None:
    """The token whose secret is ``secret``, with its user, or None. One query.

    Revoked and expired tokens are found too; ``ApiToken.usable`` says whether
    they still open the API.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return (
        ApiToken.objects.filter(digest=api_token_digest(secret))
        .select_related("user")
        .first()
    )
