"""Ingest throughput: ``fetchmail`` against the raw-fetch limit and django-mailbox.

A private Dovecot (``tests/dovecot.py``, as the test suite provisions it) holds
a realistic mailbox of ``--messages`` messages (mostly small text, 20 % HTML,
12 % with an attachment, 3 % of those of 1-3 MB; English and Japanese, UTF-8
and ISO-2022-JP, threads with References). For each protocol (IMAPS, POP3S)
three contenders each get a fresh mail user holding the very same messages:

- **limit**: ``bench/rawfetch.py``, plain imaplib/poplib downloading every
  message and discarding it;
- **archive**: ``manage.py fetchmail`` (``bench/fetch_child.py``) archiving into
  a fresh PostgreSQL database and data directory, then deleting on the server;
  two figures: *secured* (connect until the server is empty: the secure
  stage) and *complete* (until every message is indexed and searchable). With
  ``--workers 1,2,4`` the complete figure again with that many parse processes,
  with ``--sqlite`` once more on the embedded default;
- **archive --no-wait**: ``fetchmail --no-wait``, which returns once the server
  is empty and leaves indexing to the Celery workers (a deployment that has
  them): the secure stage with no index stage in its process;
- **peer**: django-mailbox 4.10 from PyPI in its own virtualenv
  (``var/bench/peer-venv``, created on first use) fetching into its own fresh
  PostgreSQL database (``bench/peer/``), original messages stored.

Each figure covers connect to logout in the contender's own process
(interpreter start-up left out); peak RSS is that process's. Prints messages/s,
MB/s (MB = 10^6 bytes as the server sends them) and the ratios secured/limit
(target >= 0.5) and complete/peer (target >= 10). Asserts nothing, but a
contender that does not get every message is reported as such.

    .venv/bin/python bench/ingest.py --messages 1000
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import mailgen  # noqa: E402
from common import (  # noqa: E402
    BENCH_VAR,
    PYTHON,
    ROOT,
    SERVER_URL,
    database_drop,
    database_recreate,
    django_env,
    exit_on_sigterm,
    manage,
    run_measured,
    table,
    write_json,
)

from tests.dovecot import DovecotServer  # noqa: E402

PROTOCOLS = ("imaps", "pop3s")
# Scratch names of this process, so that runs from other clones sharing the
# PostgreSQL server never drop each other's databases.
ARCHIVE_DB = f"mailarchive_ingest_{os.getpid()}"
PEER_DB = f"mailarchive_peer_{os.getpid()}"
PEER_VENV = BENCH_VAR / "peer-venv"
PEER_REQUIREMENTS = ["django-mailbox==4.10", "Django<5.3", "psycopg[binary]"]
SPACE_KEY = "INGEST"
# The archive's names for the protocols (``addmailaccount --protocol``).
ARCHIVE_PROTOCOL = {"imaps": "imaps", "pop3s": "pops"}


@dataclass
class Run:
    """One contender fetching one mailbox over one protocol."""

    contender: str
    protocol: str
    messages: int
    expected: int
    bytes: int
    seconds: float
    peak_rss_mib: float
    left_on_server: int | None = None
    note: str = ""

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["messages_per_second"] = round(self.messages_per_second, 1)
        data["mb_per_second"] = round(self.mb_per_second, 2)
        return data


@dataclass(frozen=True)
class Mailbox:
    """A mail user on the bench Dovecot and what its INBOX holds."""

    user: str
    password: str
    messages: int
    bytes: int


@contextmanager
def dovecot_server() -> Iterator[DovecotServer]:
    """A private Dovecot for the run, stopped and removed afterwards."""
    server = DovecotServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def seed_mailbox(
    server: DovecotServer,
    count: int,
    *,
    seed: int,
    mix: mailgen.MailboxMix = mailgen.REALISTIC,
    raws: list[bytes] | None = None,
) -> Mailbox:
    """A new user whose INBOX holds ``count`` generated messages (or ``raws``).

    The same ``seed`` gives the same messages, so every contender fetches an
    identical mailbox. Bytes are counted with CRLF line ends, as sent.
    """
    user = f"bench{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    server.add_user(user, password)
    total = 0

    def messages() -> Iterator[bytes]:
        nonlocal total
        if raws is not None:
            source: Iterator[bytes] = iter(raws)
        else:
            generator = mailgen.MailboxGenerator(seed, mix)
            source = (generator.message() for _ in range(count))
        for raw in source:
            total += len(raw) + raw.count(b"\n")
            yield raw

    server.deliver_many(user, messages())
    delivered = server.message_count(user)
    return Mailbox(user, password, delivered, total)


def _port(server: DovecotServer, protocol: str) -> int:
    return server.imaps_port if protocol == "imaps" else server.pop3s_port


def run_limit(server: DovecotServer, protocol: str, box: Mailbox) -> Run:
    """Plain imaplib/poplib downloading ``box`` and keeping nothing."""
    cmd = [
        PYTHON, str(ROOT / "bench" / "rawfetch.py"), "--protocol", protocol,
        "--host", server.host, "--port", str(_port(server, protocol)),
        "--user", box.user, "--password-stdin", "--ca", server.ca_file,
    ]  # fmt: skip
    measured = run_measured(cmd, stdin=box.password + "\n")
    data = json.loads(measured.stdout.strip().splitlines()[-1])
    return Run(
        "limit", protocol, data["messages"], box.messages, box.bytes,
        data["seconds"], measured.peak_rss_mib,
    )  # fmt: skip


def archive_env(server: DovecotServer, data_dir: Path, db_url: str) -> dict[str, str]:
    """The product's environment for polling the bench Dovecot."""
    return django_env(
        db_url,
        data_dir,
        MAILARCHIVE_ALLOWED_MAIL_HOSTS=server.host,
        SSL_CERT_FILE=server.ca_file,
        MAILARCHIVE_FETCH_DISABLED="off",
    )


def run_archive(
    server: DovecotServer,
    protocol: str,
    box: Mailbox,
    *,
    label: str = "archive",
    profile_to: Path | None = None,
    index_processes: int = 0,
    sqlite: bool = False,
    no_wait: bool = False,
) -> list[Run]:
    """``manage.py fetchmail`` archiving ``box`` into a fresh database.

    Returns two runs: ``<label> secured`` (until the server was empty) and
    ``<label>`` (until every message was indexed). ``index_processes`` sets
    ``MAILARCHIVE_INDEX_PROCESSES`` (0: one per core); ``sqlite`` archives into
    the embedded default instead of PostgreSQL. With ``profile_to``, the poll
    runs under pyinstrument and its profile (text) is written there; the
    figures are then those of a profiled run. With ``no_wait`` the poll is
    ``fetchmail --no-wait``, which leaves indexing to the Celery workers: only
    the ``secured`` run is returned.
    """
    data_dir = BENCH_VAR / f"ingest-data-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    if sqlite:
        data_dir.mkdir(parents=True)
        db_url = f"sqlite:///{data_dir / 'mailarchive.sqlite3'}"
    else:
        db_url = database_recreate(SERVER_URL, ARCHIVE_DB)
    env = archive_env(server, data_dir, db_url)
    env["MAILARCHIVE_INDEX_PROCESSES"] = str(index_processes)
    try:
        manage(["migrate", "--no-input", "-v0"], env)
        manage(["createspace", SPACE_KEY, "--name", "Ingest benchmark"], env)
        account_id = manage(
            [
                "addmailaccount", "--space", SPACE_KEY, "--name", f"bench {protocol}",
                "--protocol", ARCHIVE_PROTOCOL[protocol], "--host", server.host,
                "--port", str(_port(server, protocol)), "--username", box.user,
                "--password-stdin",
            ],
            env,
            stdin=box.password + "\n",
        ).strip()  # fmt: skip
        child = [str(ROOT / "bench" / "fetch_child.py"), account_id]
        if no_wait:
            child.append("--no-wait")
        if profile_to is not None:
            child = ["-m", "pyinstrument", "-r", "text", "-o", str(profile_to), *child]
        measured = run_measured([PYTHON, *child], env)
    finally:
        if not sqlite:
            database_drop(SERVER_URL, ARCHIVE_DB)
        shutil.rmtree(data_dir, ignore_errors=True)
    data = json.loads(measured.stdout.strip().splitlines()[-1])
    left = server.message_count(box.user)
    note = data["error"] or ""
    if data["archived"] != box.messages:
        note = (note + f" archived {data['archived']} of {box.messages}").strip()
    secured = Run(
        f"{label} secured", protocol, data["archived"], box.messages, box.bytes,
        data["secured_seconds"], measured.peak_rss_mib, left, note,
    )  # fmt: skip
    if no_wait:
        return [secured]
    return [
        secured,
        Run(
            label, protocol, data["archived"], box.messages, box.bytes,
            data["seconds"], measured.peak_rss_mib, left, note,
        ),
    ]  # fmt: skip


def peer_python() -> Path:
    """The peer virtualenv's interpreter, creating the virtualenv when missing."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print("  creating the django-mailbox virtualenv", file=sys.stderr, flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS],
            check=True,
        )
    return python


def peer_version() -> str:
    result = subprocess.run(
        [str(peer_python()), "-m", "pip", "show", "django-mailbox"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def run_peer(server: DovecotServer, protocol: str, box: Mailbox) -> Run:
    """django-mailbox's ``Mailbox.get_new_mail()`` fetching ``box``."""
    python = peer_python()
    media = BENCH_VAR / f"peer-media-{os.getpid()}"
    shutil.rmtree(media, ignore_errors=True)
    scheme = "imap+ssl" if protocol == "imaps" else "pop3+ssl"
    db_url = database_recreate(SERVER_URL, PEER_DB)
    env = {
        "PATH": "/usr/bin:/bin",
        "PEER_DATABASE_URL": db_url,
        "PEER_MEDIA_ROOT": str(media),
        "PEER_MAILBOX_URI": (
            f"{scheme}://{box.user}:{box.password}@{server.host}:"
            f"{_port(server, protocol)}"
        ),
        "DJANGO_SETTINGS_MODULE": "settings",
    }
    try:
        measured = run_measured(
            [str(python), str(ROOT / "bench" / "peer" / "fetch.py")], env
        )
    finally:
        database_drop(SERVER_URL, PEER_DB)
        shutil.rmtree(media, ignore_errors=True)
    data = json.loads(measured.stdout.strip().splitlines()[-1])
    note = ""
    if data["stored"] != box.messages:
        note = f"stored {data['stored']} of {box.messages}"
    return Run(
        "peer", protocol, data["messages"], box.messages, box.bytes, data["seconds"],
        measured.peak_rss_mib, server.message_count(box.user), note,
    )  # fmt: skip


def measure(
    messages: int,
    seed: int,
    protocols: tuple[str, ...],
    peer: bool,
    profile_dir: Path | None = None,
    workers: tuple[int, ...] = (),
    sqlite: bool = False,
) -> dict[str, Any]:
    """Every contender over every protocol; returns the runs and the ratios."""
    runs: list[Run] = []
    with dovecot_server() as server:
        for protocol in protocols:
            contenders: list[tuple[str, Any]] = [
                ("limit", run_limit),
                ("archive", run_archive),
            ]
            contenders.append(
                (
                    "archive --no-wait",
                    lambda s, p, b, label=None: run_archive(
                        s, p, b, label=label, no_wait=True
                    ),
                )
            )
            if peer:
                contenders.append(("peer", run_peer))
            contenders += [
                (
                    f"archive {n} worker{'s' if n > 1 else ''}",
                    lambda s, p, b, n=n, label=None: run_archive(
                        s, p, b, label=label, index_processes=n
                    ),
                )
                for n in workers
            ]
            if sqlite:
                contenders.append(
                    (
                        "archive sqlite",
                        lambda s, p, b, label=None: run_archive(
                            s, p, b, label=label, sqlite=True
                        ),
                    )
                )
            for name, function in contenders:
                box = seed_mailbox(server, messages, seed=seed)
                print(
                    f"  {protocol} {name}: {box.messages} messages, "
                    f"{box.bytes / 1e6:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
                if name == "archive" and profile_dir is not None:
                    profile_dir.mkdir(parents=True, exist_ok=True)
                    target = profile_dir / f"archive-{protocol}.txt"
                    runs += run_archive(server, protocol, box, profile_to=target)
                elif name.startswith("archive"):
                    runs += function(server, protocol, box, label=name)
                else:
                    runs.append(function(server, protocol, box))
    ratios = {}
    for protocol in protocols:
        by = {r.contender: r for r in runs if r.protocol == protocol}
        secured = by["archive secured"].messages_per_second
        complete = by["archive"].messages_per_second
        alone = by["archive --no-wait secured"].messages_per_second
        ratios[protocol] = {
            "secured_vs_limit": round(secured / by["limit"].messages_per_second, 3),
            "secured_alone_vs_limit": round(alone / by["limit"].messages_per_second, 3),
            "complete_vs_limit": round(complete / by["limit"].messages_per_second, 3),
        }
        if "peer" in by and by["peer"].messages_per_second:
            ratios[protocol]["complete_vs_peer"] = round(
                complete / by["peer"].messages_per_second, 2
            )
    return {
        "messages": messages,
        "runs": [r.as_dict() for r in runs],
        "ratios": ratios,
        "peer_version": peer_version() if peer else None,
    }


def report(result: dict[str, Any]) -> str:
    """The runs as a table, then the ratios against the targets."""
    rows = [
        [
            r["protocol"].upper(), r["contender"], r["messages"],
            round(r["bytes"] / 1e6, 1), round(r["seconds"], 2),
            r["messages_per_second"], r["mb_per_second"], round(r["peak_rss_mib"]),
            r["note"],
        ]
        for r in result["runs"]
    ]  # fmt: skip
    headers = ["protocol", "who", "messages", "MB", "s", "msg/s", "MB/s", "RSS MiB", ""]
    lines = [table(headers, rows), ""]
    for protocol, ratio in result["ratios"].items():
        met = "met" if ratio["secured_vs_limit"] >= 0.5 else "MISSED"
        line = (
            f"{protocol.upper()}: secured/limit {ratio['secured_vs_limit']:.2f} "
            f"(target >= 0.50: {met}; with --no-wait "
            f"{ratio['secured_alone_vs_limit']:.2f}), complete/limit "
            f"{ratio['complete_vs_limit']:.2f}"
        )
        if "complete_vs_peer" in ratio:
            met = "met" if ratio["complete_vs_peer"] >= 10 else "MISSED"
            line += (
                f", complete/peer {ratio['complete_vs_peer']:.2f} (target >= 10: {met})"
            )
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--no-peer", action="store_true", help="skip django-mailbox")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="profile the archive's polls with pyinstrument into this directory",
    )
    parser.add_argument(
        "--workers",
        default="",
        help="also the complete figure with these parse process counts, e.g. 1,2,4",
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="also archive into SQLite"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    protocols = tuple(p for p in args.protocols.split(",") if p)
    workers = tuple(int(n) for n in args.workers.split(",") if n)
    result = measure(
        args.messages,
        args.seed,
        protocols,
        not args.no_peer,
        args.profile_dir,
        workers,
        args.sqlite,
    )
    print(report(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
