"""Runs the web server, a Celery worker and Celery beat together in the foreground."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse


def serving_message(bind: str) -> str:
    """What runall says once everything is started: where to go first."""
    base = f"http://{bind}"
    return (
        f"Serving on {base}/ with a worker and beat. Press Ctrl-C to stop.\n"
        f"Log in at {base}{reverse('login')}; change a generated password at "
        f"{base}{reverse('users:password-change')}"
    )


class Command(BaseCommand):
    help = (
        "Starts gunicorn, a Celery worker and Celery beat; Ctrl-C (or the end of "
        "any one of them) stops all three."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        bindir = Path(python).parent
        commands = {
            "web": [
                str(bindir / "gunicorn"),
                "mailarchive.wsgi",
                "--bind",
                options["bind"],
                "--workers",
                "2",
                "--access-logfile",
                "-",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "mailarchive",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(options["concurrency"]),
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "mailarchive",
                "beat",
                "--loglevel",
                "INFO",
            ],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(*_args: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            # Own process groups: the terminal's Ctrl-C reaches this process only,
            # which then stops each child in order.
            procs[name] = subprocess.Popen(command, start_new_session=True)
        self.stdout.write(serving_message(options["bind"]))
        ended = ""
        while not stopping and not ended:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    ended = name
            time.sleep(0.5)
        if ended:
            self.stderr.write(f"{ended} stopped (exit {procs[ended].returncode}).")
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
        if ended:
            sys.exit(1)
