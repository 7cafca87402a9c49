"""X-Forwarded-Proto and X-Forwarded-For are believed from trusted proxies only.

A client talking to the server directly could otherwise claim HTTPS (and
skip the redirect to it, or be handed https:// links for a plain connection)
or any client address (and dodge login throttling).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from mailarchive.middleware import TrustedProxyMiddleware

ROOT = Path(__file__).resolve().parent.parent


def seen(settings, trusted: list[str], **headers: str) -> HttpRequest:
    """The request as the views see it after the middleware."""
    settings.MAILARCHIVE_TRUSTED_PROXIES = trusted
    captured: list[HttpRequest] = []

    def view(request: HttpRequest) -> HttpResponse:
        captured.append(request)
        return HttpResponse()

    TrustedProxyMiddleware(view)(RequestFactory().get("/", **headers))
    return captured[0]


@pytest.mark.parametrize(
    ("trusted", "peer", "secure"),
    [
        ([], "127.0.0.1", False),
        ([], "203.0.113.9", False),
        (["10.0.0.0/8"], "203.0.113.9", False),
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["127.0.0.1", "::1"], "::1", True),
        (["192.0.2.10"], "192.0.2.10", True),
        (["192.0.2.10"], "192.0.2.11", False),
    ],
    ids=[
        "none-loopback",
        "none-outside",
        "outside-peer",
        "trusted-network",
        "trusted-ipv6",
        "trusted-address",
        "neighbour",
    ],
)
def test_https_is_believed_from_trusted_proxies_only(settings, trusted, peer, secure):
    request = seen(settings, trusted, REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    assert request.is_secure() is secure
    assert "HTTP_X_FORWARDED_PROTO" not in request.META


def test_the_nearest_proxy_has_the_last_word(settings):
    request = seen(
        settings,
        ["10.0.0.0/8"],
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_PROTO="https, http",
    )
    assert not request.is_secure()


def test_the_client_address_is_the_nearest_one_not_a_trusted_proxy(settings):
    """GIVEN a client that sends its own X-Forwarded-For through two trusted
    proxies WHEN the request arrives THEN its address is the one the first
    proxy saw, not the one the client claimed."""
    request = seen(
        settings,
        ["10.0.0.0/8"],
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 10.0.0.1",
    )
    assert request.META["REMOTE_ADDR"] == "198.51.100.7"
    assert "HTTP_X_FORWARDED_FOR" not in request.META


@pytest.mark.parametrize("chain", ["not-an-address", "", " , ", "10.0.0.1"])
def test_a_useless_forwarded_for_keeps_the_peer(settings, chain):
    request = seen(
        settings, ["10.0.0.0/8"], REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=chain
    )
    assert request.META["REMOTE_ADDR"] == "10.0.0.2"


def test_forwarded_for_from_anyone_else_is_dropped(settings):
    request = seen(
        settings, [], REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert request.META["REMOTE_ADDR"] == "203.0.113.9"
    assert "HTTP_X_FORWARDED_FOR" not in request.META


def test_a_bad_entry_says_how_to_fix_it(settings):
    settings.MAILARCHIVE_TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.example.com"]
    with pytest.raises(ImproperlyConfigured, match="MAILARCHIVE_TRUSTED_PROXIES"):
        TrustedProxyMiddleware(lambda request: HttpResponse())


@pytest.mark.django_db
def test_with_https_on_only_a_trusted_proxy_skips_the_redirect(settings):
    """GIVEN HTTPS on WHEN a plain request claims HTTPS THEN it is redirected
    to HTTPS unless it came through a trusted proxy."""
    settings.SECURE_SSL_REDIRECT = True
    settings.MAILARCHIVE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    login = reverse("login")
    direct = Client().get(
        login, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https"
    )
    assert direct.status_code == 301
    assert direct["Location"].startswith("https://")
    proxied = Client().get(
        login, REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_PROTO="https"
    )
    assert proxied.status_code == 200


def test_the_setting_is_not_djangos_which_believes_anyone(settings):
    assert settings.SECURE_PROXY_SSL_HEADER is None
    assert settings.MIDDLEWARE[0] == "mailarchive.middleware.TrustedProxyMiddleware"


def test_docker_compose_names_the_proxy_networks():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "MAILARCHIVE_TRUSTED_PROXIES: ${MAILARCHIVE_TRUSTED_PROXIES:-" in compose


def test_manage_py_check_reports_a_bad_entry(settings):
    settings.MAILARCHIVE_TRUSTED_PROXIES = ["proxy.example.com"]
    with pytest.raises(SystemCheckError, match="mailarchive.E001"):
        call_command("check")
