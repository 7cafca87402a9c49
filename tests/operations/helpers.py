"""Reading /metrics as Prometheus does, and running the app in other processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import quote

from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

PROJECT_DIR = Path(__file__).resolve().parents[2]


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (sample name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
    **labels: str,
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def exposed_names(text: str) -> set[str]:
    """The sample names a scrape's families can have, empty families included."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "gauge": [""],
    }
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in suffixes[family.type]
    }


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_database_url() -> str:
    """The URL of this test run's database, for child processes."""
    db = connection.settings_dict
    login = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        login += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{login}@{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a child process on this run's database and broker."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TEST_DATABASE_URL=run_database_url(),
        PYTHONPATH=str(PROJECT_DIR),
    )
    env.update(extra)
    return env
