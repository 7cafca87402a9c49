"""Middleware of every page: the visitor's time zone, the default
Content-Security-Policy, and the client's scheme behind a trusted proxy."""

from __future__ import annotations

import ipaddress
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def setting_networks(name: str, entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The addresses and CIDRs of the setting ``name`` as networks; a bad entry
    is an error that names the setting."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as e:
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is no IP address or network; give "
                "addresses or CIDRs separated by commas, e.g. 127.0.0.1,10.0.0.0/8"
            ) from e
    return tuple(networks)


def trusted_proxy_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """``MAILARCHIVE_TRUSTED_PROXIES`` as networks; a bad entry is an error."""
    return setting_networks("MAILARCHIVE_TRUSTED_PROXIES", entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class TrustedProxyMiddleware:
    """Believe X-Forwarded-Proto and X-Forwarded-For only from a trusted proxy.

    A request whose peer (REMOTE_ADDR) is in ``MAILARCHIVE_TRUSTED_PROXIES``
    is taken to be HTTPS when the proxy says so, and to come from the nearest
    address of X-Forwarded-For that is not itself a trusted proxy (the one
    login throttling counts). From anyone else both headers are dropped: a
    client talking to the server directly could claim anything in them.
    Must come first, before anything asks whether the request is secure.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        trusted_proxy_networks(tuple(settings.MAILARCHIVE_TRUSTED_PROXIES))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        proto = meta.pop("HTTP_X_FORWARDED_PROTO", "")
        chain = meta.pop("HTTP_X_FORWARDED_FOR", "")
        networks = trusted_proxy_networks(tuple(settings.MAILARCHIVE_TRUSTED_PROXIES))

        def trusted(text: str) -> bool:
            address = _address(text)
            return address is not None and any(address in n for n in networks)

        if networks and trusted(meta.get("REMOTE_ADDR", "")):
            # The last value is the one the nearest proxy set.
            scheme = proto.split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                meta["wsgi.url_scheme"] = scheme
            hops = [hop.strip() for hop in chain.split(",") if hop.strip()]
            while hops and trusted(hops[-1]):
                hops.pop()
            if hops and _address(hops[-1]) is not None:
                meta["REMOTE_ADDR"] = hops[-1]
        return self.get_response(request)
