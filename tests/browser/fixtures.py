"""Browser fixtures, loaded as a plugin by tests/conftest.py: one headless Debian
Chromium for the session, driven by Playwright against pytest-django's live
server.

Requests made by a sandboxed ``srcdoc`` frame do not reach Playwright's
request events or routes, so the network is watched at its edge instead:
Chromium sends everything that is not loopback through a recording proxy
(``Outside``), which answers 404 and remembers who asked for what. Loopback
(the live server) is never proxied.

Playwright's synchronous API runs an event loop in the test thread, which
Django would otherwise take for async code and refuse ORM calls in.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.factories import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("MAILARCHIVE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Outside:
    """Everything the browser asked of hosts other than the archive itself."""

    port: int = 0
    hits: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, line: str) -> None:
        with self.lock:
            self.hits.append(line)

    def take(self) -> list[str]:
        """The requests seen since the last call."""
        with self.lock:
            seen, self.hits[:] = list(self.hits), []
        return seen


def _handler(outside: Outside) -> type[BaseHTTPRequestHandler]:
    class Recorder(BaseHTTPRequestHandler):
        def handle_one_request(self) -> None:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or not self.parse_request():
                self.close_connection = True
                return
            outside.record(f"{self.command} {self.path}")
            self.send_response(404 if self.command != "CONNECT" else 403)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            return

    return Recorder


@pytest.fixture(scope="session")
def outside() -> Iterator[Outside]:
    """The recording proxy standing in for the whole Internet."""
    record = Outside()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(record))
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(outside: Outside) -> Iterator[object]:
    """Headless Chromium; the run fails when it is not installed."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run scripts/ensure-chromium "
            "(or set MAILARCHIVE_CHROMIUM)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--proxy-server=http://127.0.0.1:{outside.port}"],
            headless=True,
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser, outside: Outside) -> Iterator[object]:
    """A fresh browser profile (cookies, storage) for one test."""
    outside.take()
    ctx = browser.new_context(accept_downloads=True, locale="en-US")
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


# Chromium's own services (updates, autofill, accounts) talk to these even
# with background networking off; they are the browser's traffic, not a page's.
BROWSER_SERVICE_HOSTS = re.compile(
    r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)(:\d+)?$"
)


def page_requests(hits: list[str]) -> list[str]:
    """The recorded requests that pages made (the browser's own left out)."""
    kept = []
    for hit in hits:
        _method, _space, target = hit.partition(" ")
        host = urlsplit(target).hostname if "://" in target else target
        if not BROWSER_SERVICE_HOSTS.search(host or ""):
            kept.append(hit)
    return kept


def log_in(page, base_url: str, username: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(base_url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form [type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
