"""``Authorization: Bearer <token>``: personal API tokens for scripts.

Browsers use their session instead (DRF's SessionAuthentication, with its CSRF
check on every unsafe method).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from .models import ApiToken
from .selectors import api_token_find
from .services import api_token_touch


class BearerTokenAuthentication(BaseAuthentication):
    """A personal API token in the Authorization header stands for its user.

    No header: the next way of signing in is tried (the session). A header
    with a token that is unknown, revoked or expired, or whose user was
    deactivated, is refused with 401 whatever else the request carries.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the token as “Authorization: Bearer <token>”.")
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(
                _("That token is not valid.")
            ) from exc
        token = api_token_find(secret)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("That token is not valid."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("That token was revoked."))
        if token.expired:
            raise exceptions.AuthenticationFailed(_("That token has expired."))
        api_token_touch(token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how BearerTokenAuthentication is used."""

    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`mat_…`).",
        }
