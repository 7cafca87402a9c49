"""The README's API examples, run as written against a live server.

The shell example's manage.py runs in a child process on this test's
database; only the archive's address is changed to the live server's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from spaces.models import Level
from tests.conftest import database_url
from tests.factories import SpacePermissionFactory, UserFactory
from tests.mailarchive.test_views import ingest, raw_message

pytestmark = pytest.mark.django_db(transaction=True)
README = Path(settings.BASE_DIR) / "README.md"
EXAMPLE_ADDRESS = "http://127.0.0.1:8000"


def api_examples() -> list[tuple[str, str]]:
    """The (language, code) of each fenced block of the README's API section."""
    text = README.read_text()
    section = text.split("\n## REST API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)


def child_env() -> dict[str, str]:
    """This process's environment, pointed at the test database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TEST_DATABASE_URL=database_url(),
    )
    return env


def test_the_readme_has_a_curl_and_a_python_example():
    languages = [language for language, _code in api_examples()]
    assert languages == ["sh", "python"]


def test_the_readme_examples_run_against_the_archive(actors, live_server):
    alice = UserFactory(username="alice")
    SpacePermissionFactory(space=actors.space, user=alice, level=Level.VIEW)
    for n in range(120):
        ingest(
            actors.space,
            raw_message(subject=f"Invoice {n:03d}", msgid=f"inv{n}@x"),
        )
    (shell, _), (python, _) = [
        (code.replace(EXAMPLE_ADDRESS, live_server.url), lang)
        for lang, code in api_examples()
    ]
    shell = shell.replace(".venv/bin/python", sys.executable)
    script = "set -euo pipefail\n" + shell + '\nprintf "\\nTOKEN=%s\\n" "$TOKEN"\n'
    ran = subprocess.run(
        ["bash", "-c", script],
        cwd=settings.BASE_DIR,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert '"key":"SALES"' in ran.stdout
    assert "Invoice 119" in ran.stdout and "<mark>Invoice</mark>" in ran.stdout
    token = ran.stdout.rsplit("TOKEN=", 1)[1].strip()
    walked = subprocess.run(
        [sys.executable, "-c", python],
        env={**os.environ, "TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert walked.returncode == 0, walked.stderr
    assert len(walked.stdout.splitlines()) == 120
    assert walked.stdout.splitlines()[0].endswith("alice@example.com Invoice 119")
