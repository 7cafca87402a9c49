"""Rate limits of the API: per token, per signed-in user, per anonymous address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:
    from rest_framework.views import APIView

from .models import ApiToken


class ApiRateThrottle(SimpleRateThrottle):
    """``MAILARCHIVE_API_RATE`` per token (a session counts as its user's own
    bucket), ``MAILARCHIVE_API_ANONYMOUS_RATE`` per address without either.

    Over the limit the API answers 429 with Retry-After. Requests are counted
    in the default cache, which every web process must share.
    """

    scope = "api"

    def __init__(self) -> None:
        # The rate is read per request (see allow_request), not at start-up.
        pass

    def allow_request(self, request: Request, view: APIView) -> bool:
        anonymous = not (request.user and request.user.is_authenticated)
        self.rate = (
            settings.MAILARCHIVE_API_ANONYMOUS_RATE
            if anonymous
            else settings.MAILARCHIVE_API_RATE
        )
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"address:{self.get_ident(request)}"
        return f"api-rate:{ident}"
