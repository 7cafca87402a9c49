"""System checks (``manage.py check``) of the metrics settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .access import allowed_networks


@checks.register(checks.Tags.security)
def metrics_allow_check(**kwargs: Any) -> list[checks.CheckMessage]:
    """Every entry of MAILARCHIVE_METRICS_ALLOW is an address or network."""
    try:
        allowed_networks(tuple(settings.MAILARCHIVE_METRICS_ALLOW))
    except ImproperlyConfigured as e:
        return [checks.Error(str(e), id="operations.E001")]
    return []
