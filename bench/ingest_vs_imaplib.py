"""Archive throughput of one poll against a raw imaplib fetch of the same mail.

A private Dovecot (``tests/dovecot.py``) gets two users holding the very same
``--messages`` messages (the test suite's realistic generator: plain UTF-8,
ISO-2022-JP, long lines, multipart with HTML and a base64 attachment). Then,
in this one run:

- **imaplib**: log in over IMAPS, ``UID FETCH BODY.PEEK[]`` in batches of 100,
  keep nothing, log out — the least any archiver must do;
- **archive**: ``mail_account_poll`` for an account on the other user, into a
  scratch PostgreSQL database (created and dropped here) and a scratch data
  directory: parse, store raw bytes durably, index, commit, then delete on the
  server.

Both figures cover connect to logout; Django start-up and migrations are left
out. Prints messages/s, MB/s and their ratio; asserts nothing. Needs root
(Dovecot switches users) and PostgreSQL on 127.0.0.1.

    .venv/bin/python bench/ingest_vs_imaplib.py --messages 2000
"""

from __future__ import annotations

import argparse
import imaplib
import os
import secrets
import shutil
import ssl
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


def raw_imap_fetch(host: str, port: int, user, ca_file: str) -> tuple[int, int, float]:
    """Download every message once with imaplib; (messages, bytes, seconds)."""
    context = ssl.create_default_context(cafile=ca_file)
    started = time.perf_counter()
    client = imaplib.IMAP4_SSL(host, port, ssl_context=context)
    client.login(user.username, user.password)
    client.select("INBOX", readonly=True)
    _, data = client.uid("SEARCH", "ALL")
    uids = data[0].split()
    count = size = 0
    for start in range(0, len(uids), 100):
        batch = b",".join(uids[start : start + 100]).decode()
        _, items = client.uid("FETCH", batch, "(BODY.PEEK[])")
        for item in items:
            if isinstance(item, tuple):
                count += 1
                size += len(item[1])
    client.logout()
    return count, size, time.perf_counter() - started


def _django_setup(database: str, data_dir: Path) -> None:
    """Point the test settings at the scratch database and data directory."""
    os.environ["TEST_DATABASE_URL"] = SERVER_URL.rsplit("/", 1)[0] + "/" + database
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    import tests.settings as test_settings

    test_settings.STORAGES["default"].setdefault("OPTIONS", {})["location"] = str(
        data_dir / "store"
    )
    test_settings.MAILARCHIVE_ALLOWED_MAIL_HOSTS = ["127.0.0.1"]
    test_settings.LOGGING = {"version": 1, "disable_existing_loggers": False}
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

    import psycopg

    database = f"mailarchive_bench_{secrets.token_hex(4)}"
    data_dir = Path(tempfile.mkdtemp(prefix="mailarchive-bench-"))
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    server = None
    try:
        _django_setup(database, data_dir)
        from django.conf import settings
        from django.db import connections

        from accounts.services import mail_account_create, mail_account_poll
        from spaces.services import space_create
        from tests.accounts.conftest import make_message
        from tests.dovecot import DovecotServer, MailUser

        raws = [make_message(n, tag="bench") for n in range(args.messages)]
        total = sum(len(raw) for raw in raws)
        server = DovecotServer()
        server.start()
        settings.SSL_CERT_FILE = server.ca_file
        users = []
        for name in ("rawfetch", "archive"):
            user = MailUser(f"{name}{secrets.token_hex(3)}", secrets.token_urlsafe(12))
            server.add_user(user.username, user.password)
            server.deliver_many(user.username, raws)
            users.append(user)
        raw_user, archive_user = users

        fetched, fetched_bytes, raw_seconds = raw_imap_fetch(
            server.host, server.imaps_port, raw_user, server.ca_file
        )

        space = space_create(key="BENCH", name="Bench")
        account = mail_account_create(
            space=space,
            name="Bench (clone)",
            protocol="imaps",
            host=server.host,
            port=server.imaps_port,
            username=archive_user.username,
            password=archive_user.password,
        )
        profiler = None
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        summary = mail_account_poll(account_id=account.pk, trigger="command")
        archive_seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
        connections.close_all()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    mb = total / 1e6
    raw_rate = fetched / raw_seconds
    archive_rate = summary.fetched / archive_seconds
    print(f"mailbox: {args.messages} messages, {mb:.1f} MB (as generated, CRLF)")
    print(
        f"imaplib fetch : {fetched} messages, {fetched_bytes / 1e6:.1f} MB in "
        f"{raw_seconds:.2f} s = {raw_rate:.0f} messages/s, "
        f"{fetched_bytes / 1e6 / raw_seconds:.1f} MB/s"
    )
    print(
        f"archive poll  : {summary.fetched} archived, {summary.deleted} deleted in "
        f"{archive_seconds:.2f} s = {archive_rate:.0f} messages/s, "
        f"{mb / archive_seconds:.2f} MB/s ({summary.line()})"
    )
    print(f"archive / imaplib: {archive_rate / raw_rate:.3f}")


if __name__ == "__main__":
    main()
