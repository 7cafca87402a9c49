"""Who may scrape /metrics: a bearer token, or an address on the allow-list."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from mailarchive.middleware import Network, setting_networks


def allowed_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """``MAILARCHIVE_METRICS_ALLOW`` as networks; a bad entry is an error."""
    return setting_networks("MAILARCHIVE_METRICS_ALLOW", entries)


def _bearer(request: HttpRequest) -> str:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics_allowed(request: HttpRequest) -> bool:
    """Whether ``request`` may read /metrics. Reads only.

    Allowed with ``Authorization: Bearer <MAILARCHIVE_METRICS_TOKEN>`` (when a
    token is set), or from an address of ``MAILARCHIVE_METRICS_ALLOW``. The
    address is REMOTE_ADDR as the trusted-proxy middleware left it.
    """
    expected = settings.MAILARCHIVE_METRICS_TOKEN
    given = _bearer(request)
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks = allowed_networks(tuple(settings.MAILARCHIVE_METRICS_ALLOW))
    return any(address in network for network in networks)
