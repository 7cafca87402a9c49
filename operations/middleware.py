"""Answers the probes before host checks, HTTPS redirects and sessions."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import views

PROBES: dict[str, tuple[str, Callable[[HttpRequest], HttpResponse]]] = {
    "/healthz": ("healthz", views.healthz),
    "/readyz": ("readyz", views.readyz),
    "/metrics": ("metrics", views.metrics),
}


class ProbeMiddleware:
    """Serve /healthz, /readyz and /metrics straight away.

    Load balancers and Prometheus reach a process by its address, over plain
    HTTP inside the network: ALLOWED_HOSTS would refuse their Host header and
    the HTTPS redirect would send them elsewhere. These answers build no URL
    from the Host header and set no cookie, so neither protects anything here.
    Comes right after the trusted-proxy middleware, whose client address the
    metrics allow-list checks.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe[1](request)
        return self.get_response(request)
