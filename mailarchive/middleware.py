"""Show dates in the time zone the visitor chose (a cookie), else the site's."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIME_ZONE_COOKIE = "mailarchive_tz"


def time_zone_from_name(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None when there is no such IANA zone."""
    if not name or len(name) > 64 or name in ("localtime", "Factory"):
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class TimeZoneMiddleware:
    """Activate the visitor's time zone for the request, and nothing else.

    Templates and forms then show and read dates in that zone; anything
    unknown in the cookie falls back to ``settings.TIME_ZONE``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = time_zone_from_name(request.COOKIES.get(TIME_ZONE_COOKIE, ""))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
