"""Pieces every benchmark shares: scratch databases, measured child processes,
the Django environment of a child, result tables and a description of the machine.

Benchmarks run the product in child processes (``manage.py``, scripts) so that
each one starts clean and its peak memory is its own; this module never sets up
Django itself.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_VAR = ROOT / "var" / "bench"
# The server the scratch databases are created on (any database of it works).
SERVER_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
SECRET_KEY = "bench-only-" + "k" * 50


def database_url(server_url: str, name: str) -> str:
    """``server_url`` pointing at the database ``name`` instead."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def database_recreate(server_url: str, name: str) -> str:
    """Drop the database ``name`` if it exists, create it empty; returns its URL.

    Destroys whatever the database held: only for scratch databases that the
    benchmarks own.
    """
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(server_url, name)


def database_drop(server_url: str, name: str) -> None:
    """Drop the scratch database ``name``. Safe to re-run."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process running the product on ``db_url``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mailarchive.settings",
        "DATABASE_URL": db_url,
        "MAILARCHIVE_DATA_DIR": str(data_dir),
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "CELERY_BROKER_URL": "memory://",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(args: Sequence[str], env: dict[str, str], stdin: str = "") -> str:
    """Run ``manage.py`` with ``args``; returns its stdout, raises on failure."""
    result = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


@dataclass(frozen=True)
class Measured:
    """What a measured child process did: exit status, time, peak memory, output."""

    returncode: int
    seconds: float
    peak_rss_mib: float
    stdout: str


def run_measured(
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    stdin: str | None = None,
    check: bool = True,
) -> Measured:
    """Run ``cmd`` and report its wall time and peak resident memory.

    The peak is ``ru_maxrss`` of that child and of every descendant it waited
    for, taken by ``wait4`` in ``measured_child.py``, a small process between
    this one and ``cmd``: Linux starts a program's ``ru_maxrss`` at the
    resident size of the process that started it, which here holds the
    generated mail. ``stdin`` is written to it (a short
    text such as a password); its stderr passes through (progress lines); its
    stdout is captured.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "maxrss"
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("measured_child.py")),
                str(report),
                *cmd,
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        )
        try:
            if stdin is not None and process.stdin is not None:
                process.stdin.write(stdin.encode())
                process.stdin.close()
            _pid, status, _usage = os.wait4(process.pid, 0)
        except BaseException:
            stop_child(process)
            raise
        seconds = time.perf_counter() - started
        peak_kib = int(report.read_text()) if report.exists() else 0
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    if check and process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({process.returncode}):\n{stdout[-4000:]}"
        )
    return Measured(process.returncode, seconds, peak_kib / 1024, stdout)


def stop_child(process: subprocess.Popen) -> None:
    """Ask a child to stop (SIGTERM, so that it cleans up), then make sure it has."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so that cleanups run.

    The benchmarks start Dovecot instances and create scratch databases that
    ``finally`` blocks remove; a plain SIGTERM would skip them.
    """
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str], source: Sequence[Any]) -> str:
        parts = []
        for i, cell in enumerate(row):
            numeric = isinstance(source[i], int | float)
            parts.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    out = [line(cells[0], headers), "  ".join("-" * w for w in widths)]
    out += [line(cells[i + 1], row) for i, row in enumerate(rows)]
    return "\n".join(out)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The same table in Markdown, numbers right-aligned."""
    align = [
        "---:" if rows and isinstance(rows[0][i], int | float) else "---"
        for i in range(len(headers))
    ]
    out = ["| " + " | ".join(str(h) for h in headers) + " |"]
    out.append("| " + " | ".join(align) + " |")
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _first_line(cmd: Sequence[str]) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def machine() -> dict[str, str]:
    """The machine and software versions the figures were measured with."""
    import django
    import psycopg

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    with psycopg.connect(SERVER_URL) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("shared_buffers", "work_mem", "effective_cache_size")
        }
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    dovecot = shutil.which("dovecot", path="/usr/sbin:/usr/bin:/sbin")
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": f"{os_name}, kernel {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "psycopg": psycopg.__version__,
        "postgresql": postgres
        + " ("
        + ", ".join(f"{k}={v}" for k, v in settings.items())
        + ")",
        "dovecot": _first_line([dovecot, "--version"]) if dovecot else "not installed",
    }


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    """Write a benchmark's results for the runner (nothing when ``path`` is None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def rss_mib() -> float:
    """This process's own peak resident memory so far, MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def secured_clock() -> list[float]:
    """Record when the secure stage of a poll or an import is done.

    A poll calls ``Indexer.finish`` once it has logged out, everything deleted
    on the server, and an import once the whole file is secured; from then on
    only indexing remains. Patches it (Django must be set up) and returns the
    list that the ``time.perf_counter()`` of each call is appended to.
    """
    from mailarchive.services import Indexer

    secured_at: list[float] = []
    finish = Indexer.finish

    def timed_finish(self: Indexer) -> Any:
        secured_at.append(time.perf_counter())
        return finish(self)

    Indexer.finish = timed_finish  # type: ignore[method-assign]
    return secured_at
