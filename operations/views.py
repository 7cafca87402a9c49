"""The probes of load balancers and Prometheus: /healthz, /readyz, /metrics.

They answer without sessions, host checks or HTTPS redirects (see
``operations.middleware``), for clients that reach a process directly.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from .access import metrics_allowed
from .metrics import metrics_text
from .probes import readiness

logger = logging.getLogger(__name__)


def _plain(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answers; asks nothing of the database."""
    return _plain(HttpResponse(b"ok\n", content_type="text/plain"))


def readyz(request: HttpRequest) -> HttpResponse:
    """200 when the database, broker and storage answer; else 503 naming them."""
    checks = readiness()
    failed = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "unavailable" if failed else "ok", "failed": failed}
    body["checks"] = checks
    return _plain(JsonResponse(body, status=503 if failed else 200))


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus metrics, for a bearer of the token or an allowed address."""
    if not metrics_allowed(request):
        return _plain(
            HttpResponse(b"forbidden\n", status=403, content_type="text/plain")
        )
    try:
        text = metrics_text()
    except DatabaseError as e:
        # Nothing to report without the database; /readyz says the same.
        logger.warning("metrics not read: the database did not answer: %s", e)
        return _plain(
            HttpResponse(
                b"database unavailable\n", status=503, content_type="text/plain"
            )
        )
    return _plain(HttpResponse(text, content_type=CONTENT_TYPE_LATEST))
