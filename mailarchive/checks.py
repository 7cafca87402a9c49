"""System checks (``manage.py check``) of the archive's own settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .middleware import trusted_proxy_networks


@checks.register(checks.Tags.security)
def trusted_proxies_check(**kwargs: Any) -> list[checks.CheckMessage]:
    """Every entry of MAILARCHIVE_TRUSTED_PROXIES is an address or network."""
    try:
        trusted_proxy_networks(tuple(settings.MAILARCHIVE_TRUSTED_PROXIES))
    except ImproperlyConfigured as e:
        return [checks.Error(str(e), id="mailarchive.E001")]
    return []
