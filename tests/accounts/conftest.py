"""Fixtures for the mail account tests: accounts on the test Dovecot, mail."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts import tasks
from accounts.models import MailAccount
from accounts.services import mail_account_create
from mailarchive.models import Message
from mailarchive.storage import blob_read
from spaces.models import Space
from tests.accounts.fake_servers import FakeServer, Session
from tests.conftest import database_url
from tests.factories import SpaceFactory

PORT_ATTRIBUTES = {
    "pop": "pop3_port",
    "pops": "pop3s_port",
    "imap": "imap_port",
    "imaps": "imaps_port",
}
PROJECT_DIR = Path(__file__).resolve().parents[2]

# The child uses the test settings, this process's storage directory (the test
# settings make a fresh data directory per process) and, to give the kills more
# commit points to land between, smaller batches.
BOOTSTRAP = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import tests.settings as test_settings
test_settings.STORAGES["default"].setdefault("OPTIONS", {})["location"] = (
    os.environ["MAILARCHIVE_TEST_STORE"]
)
import django
django.setup()
from accounts.services import polling
polling.BATCH_MAX_COUNT = int(os.environ["MAILARCHIVE_TEST_POLL_BATCH"])
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", *sys.argv[1:]])
"""


def child_env(dovecot) -> dict[str, str]:
    """Environment for a manage.py subprocess on this test's database."""
    env = dict(os.environ)
    env.update(
        TEST_DATABASE_URL=database_url(),
        MAILARCHIVE_TEST_STORE=str(settings.STORAGES["default"]["OPTIONS"]["location"]),
        MAILARCHIVE_TEST_POLL_BATCH="20",
        MAILARCHIVE_ALLOWED_MAIL_HOSTS="127.0.0.1",
        SSL_CERT_FILE=str(dovecot.ca_file),
        MAILARCHIVE_FETCH_DISABLED="off",
        PYTHONPATH=str(PROJECT_DIR),
    )
    return env


def corpus_path() -> Path:
    """The shared corpus (MAILARCHIVE_TEST_CORPUS); the test fails without it."""
    value = os.environ.get("MAILARCHIVE_TEST_CORPUS", "")
    path = Path(value) if value else PROJECT_DIR.parent / "shared" / "corpus"
    if not (path / "mimekit" / "messages").is_dir():
        pytest.fail(
            f"test corpus not found at {path}: set MAILARCHIVE_TEST_CORPUS to the "
            "shared/corpus folder"
        )
    return path


def crlf(raw: bytes) -> bytes:
    """``raw`` with CRLF line endings and a final line break, as servers send."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


def _corpus_messages() -> list[bytes]:
    """The corpus's complete messages (files that start with a header block)."""
    found: dict[bytes, None] = {}
    for path in sorted((corpus_path() / "mimekit" / "messages").iterdir()):
        raw = path.read_bytes()
        head = raw.split(b"\n", 1)[0]
        if b":" in head and not head.startswith((b" ", b"\t")):
            found[raw] = None
    return list(found)


_BODIES = [
    (
        "text/plain; charset=utf-8",
        "8bit",
        "Hello team,\n\nthe figures for {n} are attached below.\n"
        "From the desk of the sales lead: numbers look good.\n"
        ".\n..a line that starts with dots\nGrüße, Jürgen\n",
    ),
    (
        "text/plain; charset=iso-2022-jp",
        "7bit",
        None,
    ),
    (
        "text/plain; charset=us-ascii",
        "7bit",
        "Quarterly review {n}\n\n" + "A long line of text. " * 60 + "\n",
    ),
]


def make_message(n: int, *, size: int = 0, tag: str = "") -> bytes:
    """A realistic, unique message (CRLF line endings).

    Varies by ``n``: plain UTF-8 with lines that start with "From " and ".",
    ISO-2022-JP, long lines, multipart with an HTML part and a base64
    attachment. ``size`` pads the body to at least that many bytes.
    """
    date = datetime(2024, 1, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=17 * n)
    headers = [
        f"Return-Path: <sender{n % 7}@example.org>",
        f"Received: from mx{n % 3}.example.org by mail.example.com; "
        f"{format_datetime(date)}",
        f'From: "Sender {n % 7}" <sender{n % 7}@example.org>',
        "To: sales@example.com",
        f"Subject: Report {n}{(' ' + tag) if tag else ''}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <msg{n}.{tag or 'x'}@example.org>",
        "MIME-Version: 1.0",
    ]
    if n % 5 == 0 and n:
        headers.append(f"In-Reply-To: <msg{n - 1}.{tag or 'x'}@example.org>")
    variant = n % 4
    if variant == 3:
        attachment = hashlib.sha256(str(n).encode()).digest() * 40
        encoded = base64.encodebytes(attachment).decode()
        body = (
            'Content-Type: multipart/mixed; boundary="b{n}"\n\n'
            "--b{n}\n"
            'Content-Type: multipart/alternative; boundary="a{n}"\n\n'
            "--a{n}\nContent-Type: text/plain; charset=utf-8\n\n"
            "See the attachment, report {n}.\n"
            "--a{n}\nContent-Type: text/html; charset=utf-8\n\n"
            "<p>See the <b>attachment</b>, report {n}.</p>\n"
            "--a{n}--\n"
            "--b{n}\nContent-Type: application/octet-stream; name=data{n}.bin\n"
            "Content-Disposition: attachment; filename=data{n}.bin\n"
            "Content-Transfer-Encoding: base64\n\n" + encoded + "--b{n}--\n"
        ).replace("{n}", str(n))
        head = "\n".join(headers) + "\n"
        raw = (head + body).encode()
    else:
        content_type, cte, text = _BODIES[variant]
        headers += [
            f"Content-Type: {content_type}",
            f"Content-Transfer-Encoding: {cte}",
        ]
        head = ("\n".join(headers) + "\n\n").encode()
        if text is None:
            payload = f"報告 {n} を送ります。よろしくお願いします。\n".encode(
                "iso-2022-jp"
            )
        else:
            payload = text.replace("{n}", str(n)).encode()
        raw = head + payload
    if size and len(raw) < size:
        line = b"padding " * 9 + b"\n"
        raw += line * ((size - len(raw)) // len(line) + 1)
    return crlf(raw)


def source_messages(count: int, tag: str = "") -> list[bytes]:
    """``count`` distinct messages: the corpus's first, then generated ones.

    Each corpus message gets a header naming its position, so that equal
    corpus files still make distinct messages.
    """
    raws = [
        crlf(f"X-Mailarchive-Test: {tag} corpus {i}\n".encode() + raw)
        for i, raw in enumerate(_corpus_messages())
    ][:count]
    n = 0
    while len(raws) < count:
        raws.append(make_message(n, tag=tag))
        n += 1
    return raws


def archived_raws(space: Space) -> list[bytes]:
    """The raw bytes of every message archived in ``space``."""
    return [
        blob_read(name)
        for name in Message.objects.filter(space=space)
        .order_by("pk")
        .values_list("raw_name", flat=True)
    ]


@pytest.fixture
def mail_settings(settings, dovecot):
    """Let accounts reach the loopback Dovecot and trust its CA."""
    settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = ["127.0.0.1"]
    settings.SSL_CERT_FILE = str(dovecot.ca_file)
    settings.MAILARCHIVE_MAIL_TIMEOUT = 15.0
    settings.MAILARCHIVE_FETCH_DISABLED = False
    return settings


@pytest.fixture
def make_account(dovecot, mail_settings) -> Callable[..., MailAccount]:
    """Create a mail account for a Dovecot user, through the service."""

    def make(
        user,
        protocol: str = "imaps",
        *,
        space: Space | None = None,
        starttls: bool = False,
        folder: str = "INBOX",
        name: str | None = None,
        password: str | None = None,
        port: int | None = None,
    ) -> MailAccount:
        return mail_account_create(
            space=space or SpaceFactory(),
            name=name or f"{user.username} ({protocol})",
            protocol=protocol,
            host=dovecot.host,
            port=port or getattr(dovecot, PORT_ATTRIBUTES[protocol]),
            username=user.username,
            password=password or user.password,
            folder=folder,
            starttls=starttls,
        )

    return make


@pytest.fixture
def fake_server() -> Iterator[Callable[[Session], FakeServer]]:
    """Start lying or slow fake servers (``tests.accounts.fake_servers``)."""
    servers: list[FakeServer] = []

    def start(session: Session) -> FakeServer:
        server = FakeServer(session)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def worker(monkeypatch):
    """Run each dispatched poll task in a thread, a moment after dispatch."""
    threads: list[threading.Thread] = []
    start = threading.Event()

    def dispatch(args=None, kwargs=None, **options):
        def run():
            start.wait(timeout=60)
            try:
                tasks.mail_account_poll_task.apply(args=args)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)

    monkeypatch.setattr(tasks.mail_account_poll_task, "apply_async", dispatch)
    yield start
    start.set()
    for thread in threads:
        thread.join(timeout=60)
