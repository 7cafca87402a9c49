"""Middleware of every page: the visitor's time zone, the default
Content-Security-Policy, and the client's scheme behind a trusted proxy."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIME_ZONE_COOKIE = "mailarchive_tz"


class CalendarSafeZone(tzinfo):
    """A time zone in which the first and last instants of the calendar show.

    A message may be dated 9999-12-31 23:00 UTC (its Date header says so);
    shown in UTC+14 it would fall in the year 10000, which Python cannot
    represent, and every page listing it would fail. Such an instant shows as
    the calendar's last (or first) moment instead. Everything else is the
    wrapped zone's.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return self.zone.utcoffset(dt)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return self.zone.dst(dt)

    def tzname(self, dt: datetime | None) -> str | None:
        return self.zone.tzname(dt)

    def fromutc(self, dt: datetime) -> datetime:
        try:
            local = self.zone.fromutc(dt.replace(tzinfo=self.zone))
        except OverflowError:
            edge = datetime.max if dt.year > datetime.max.year // 2 else datetime.min
            return edge.replace(tzinfo=self)
        return local.replace(tzinfo=self)

    def __str__(self) -> str:
        # Django names the active zone by str() (database time zone
        # conversions, the time zone form): the IANA key.
        return str(self.zone)

    def __repr__(self) -> str:
        return f"CalendarSafeZone({self.zone!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CalendarSafeZone) and other.zone == self.zone

    def __hash__(self) -> int:
        return hash(self.zone)


def time_zone_from_name(name: str) -> CalendarSafeZone | None:
    """The zone called ``name``, or None when there is no such IANA zone."""
    if not name or len(name) > 64 or name in ("localtime", "Factory"):
        return None
    try:
        return CalendarSafeZone(zoneinfo.ZoneInfo(name))
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
            zone = CalendarSafeZone(timezone.get_default_timezone())
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


# Every page's policy unless the view set its own: no inline script or style,
# nothing from elsewhere. Reading pages and files set stricter ones.
DEFAULT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Give every response a Content-Security-Policy, the admin's included.

    A policy the view set (the reading pages, the message frame, downloads) is
    kept. With DEBUG on, Django's own error pages, which are inline HTML, are
    left without one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code >= 400:
            return response
        response.headers.setdefault("Content-Security-Policy", DEFAULT_POLICY)
        return response
