"""Import throughput and peak memory of a generated mbox, against ``mailbox``.

Generates an mbox of about ``--megabytes`` MiB (default 1024; ``--quick`` for a
20 MiB run) of distinct messages: plain text, HTML alternatives, attachments,
replies, bodies with ``From `` lines. Then, in the same run and each in its own
process so that each peak is its own:

1. ``mailbox.mbox`` merely reads every message of the file (``get_bytes``);
2. ``importmbox``'s service imports the file into a fresh space: the full
   archive path (parse, content-addressed durable storage with fsync, database
   rows, threading, search index); the time until the whole file was secured
   (the secure stage, indexing still running behind it) is printed too.

Prints messages/s, MiB/s and the peak resident memory (``ru_maxrss``) of each;
asserts nothing. The archive goes to a scratch data directory and a scratch
database: SQLite by default, or PostgreSQL with ``--postgres URL`` (a database
named ``mailarchive_bench`` is created on that server and dropped afterwards).

    .venv/bin/python bench/import_mbox.py --quick
    .venv/bin/python bench/import_mbox.py --megabytes 200
    .venv/bin/python bench/import_mbox.py --postgres postgres://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    "archive", "message", "thread", "reply", "quarterly", "invoice", "meeting",
    "agenda", "budget", "plan", "customer", "release", "schedule", "review",
    "draft", "contract", "shipment", "support", "ticket", "question", "answer",
    "report", "numbers", "travel", "office", "design", "proposal",
]  # fmt: skip


def _text(rng: random.Random, size: int) -> str:
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        if rng.random() < 0.02:
            line = "From " + line
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def _message(rng: random.Random, n: int, date: datetime) -> bytes:
    thread = n // 5
    headers = [
        f"From: Sender {n % 97} <sender{n % 97}@example.com>",
        "To: team@example.com",
        f"Subject: {'Re: ' if n % 5 else ''}Topic {thread} {rng.choice(WORDS)}",
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        f"Message-ID: <bench-{n}@example.com>",
        "MIME-Version: 1.0",
    ]
    if n % 5:
        headers.append(f"References: <bench-{thread * 5}@example.com>")
        headers.append(f"In-Reply-To: <bench-{n - 1}@example.com>")
    kind = rng.random()
    body = _text(rng, rng.choice([1_500, 4_000, 9_000]))
    if kind < 0.55:
        headers.append("Content-Type: text/plain; charset=utf-8")
        return ("\n".join(headers) + "\n\n" + body).encode()
    boundary = f"=-bench-{n}"
    headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    parts = [
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{body}",
        f"--{boundary}\nContent-Type: text/html; charset=utf-8\n\n"
        f"<html><body><p>{body.replace(chr(10), '</p><p>')}</p></body></html>\n",
    ]
    if kind > 0.75:
        size = rng.choice([30_000, 120_000, 400_000])
        payload = base64.encodebytes(rng.randbytes(size)).decode()
        parts.append(
            f"--{boundary}\nContent-Type: application/octet-stream\n"
            f'Content-Disposition: attachment; filename="file-{n}.bin"\n'
            f"Content-Transfer-Encoding: base64\n\n{payload}"
        )
    return ("\n".join(headers) + "\n\n" + "".join(parts) + f"--{boundary}--\n").encode()


def generate(path: Path, megabytes: int) -> int:
    """Write the benchmark mbox (mboxrd); returns the number of messages."""
    from mailarchive.mbox import write_mboxrd

    rng = random.Random(20241129)
    start = datetime(2019, 1, 1, tzinfo=UTC)
    count = 0
    with path.open("wb") as out:
        while out.tell() < megabytes << 20:
            date = start + timedelta(minutes=7 * count)
            raw = _message(rng, count, date)
            write_mboxrd(out, raw, envelope_sender="sender@example.com", date=date)
            count += 1
    return count


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_stdlib(path: Path) -> dict[str, float]:
    import mailbox

    started = time.perf_counter()
    box = mailbox.mbox(path, create=False)
    count = 0
    size = 0
    try:
        for key in box.iterkeys():
            size += len(box.get_bytes(key))
            count += 1
    finally:
        box.close()
    return {
        "messages": count,
        "seconds": time.perf_counter() - started,
        "peak_mib": _peak_mib(),
    }


def phase_migrate() -> dict[str, float]:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return {}


def phase_import(path: Path) -> dict[str, float]:
    import django

    django.setup()
    from common import secured_clock

    from mailarchive.imports import import_job_create, mbox_import_run
    from mailarchive.models import ImportJob
    from spaces.services import space_create

    secured_at = secured_clock()

    space = space_create(key="BENCH", name="Benchmark")
    job = import_job_create(
        space=space,
        path=path,
        file_name=path.name,
        origin=ImportJob.Origin.COMMAND,
        requested_by=None,
    )
    started = time.perf_counter()
    last = [0.0]

    def progress(current: ImportJob) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10 or current.finished:
            last[0] = now
            print(
                f"  import: {current.status} {current.processed}/{current.total} "
                f"after {now - started:.0f} s, peak {_peak_mib():.0f} MiB",
                file=sys.stderr,
                flush=True,
            )

    job = mbox_import_run(job.pk, progress=progress)
    return {
        "messages": job.imported,
        "total": job.total or 0,
        "failed": job.failed,
        "duplicates": job.duplicates,
        "status": job.status,
        "error": job.error,
        "seconds": time.perf_counter() - started,
        "secured_seconds": (secured_at[0] if secured_at else time.perf_counter())
        - started,
        "peak_mib": _peak_mib(),
    }


def _child(phase: str, path: Path, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--file", str(path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _postgres_scratch(url: str, create: bool) -> str:
    """Create (or drop) the scratch database; returns its URL."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mailarchive_bench")
        if create:
            conn.execute("CREATE DATABASE mailarchive_bench")
    return urlunsplit(parts._replace(path="/mailarchive_bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="a 20 MiB run")
    parser.add_argument("--postgres", metavar="URL", help="server to benchmark on")
    parser.add_argument("--workdir", type=Path, help="where to put the scratch files")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        phases = {
            "stdlib": lambda: phase_stdlib(args.file),
            "migrate": phase_migrate,
            "import": lambda: phase_import(args.file),
        }
        print(json.dumps(phases[args.phase]()))
        return

    megabytes = 20 if args.quick else args.megabytes
    work = Path(tempfile.mkdtemp(prefix="mailarchive-bench-", dir=args.workdir))
    try:
        path = work / "bench.mbox"
        started = time.perf_counter()
        count = generate(path, megabytes)
        size_mib = path.stat().st_size / (1 << 20)
        print(
            f"generated {path.name}: {count} messages, {size_mib:.0f} MiB "
            f"in {time.perf_counter() - started:.0f} s"
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mailarchive.settings",
            "MAILARCHIVE_DATA_DIR": str(work / "data"),
            "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50,
            "CELERY_BROKER_URL": "memory://",
        }
        database = "SQLite"
        if args.postgres:
            env["DATABASE_URL"] = _postgres_scratch(args.postgres, create=True)
            database = "PostgreSQL"
        else:
            env.pop("DATABASE_URL", None)
        _child("migrate", path, env)

        stdlib = _child("stdlib", path, env)
        imported = _child("import", path, env)
        if args.postgres:
            _postgres_scratch(args.postgres, create=False)

        print(f"\nfile: {size_mib:.0f} MiB, {count} messages; database: {database}")
        for name, result in (
            ("mailbox.mbox read", stdlib),
            ("archive import", imported),
        ):
            seconds = result["seconds"]
            print(
                f"{name:>18}: {result['messages']:>7} messages in {seconds:8.1f} s = "
                f"{result['messages'] / seconds:8.1f} msg/s, "
                f"{size_mib / seconds:6.1f} MiB/s, "
                f"peak RSS {result['peak_mib']:.0f} MiB"
            )
        secured = imported["messages"] / imported["secured_seconds"]
        print(
            f"{'archive secured':>18}: {imported['messages']:>7} messages in "
            f"{imported['secured_seconds']:8.1f} s = {secured:8.1f} msg/s "
            f"(the secure stage: the file read, stored and committed; "
            f"{secured / (stdlib['messages'] / stdlib['seconds']):.2f} of mailbox.mbox)"
        )
        if imported["status"] != "done" or imported["failed"]:
            print(f"import ended {imported['status']}: {imported['error']}")
        ratio = (stdlib["messages"] / stdlib["seconds"]) / (
            imported["messages"] / imported["seconds"]
        )
        print(f"merely reading with mailbox.mbox is {ratio:.1f}x the import's msg/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
