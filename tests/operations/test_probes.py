"""/healthz and /readyz, and the same /metrics from every gunicorn worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.utils import timezone

from tests.factories import MailAccountFactory, PollRunFactory, SpaceFactory
from tests.operations.helpers import PROJECT_DIR, child_env, closed_port, parse

# Asks the probes in a process of its own, on the settings its environment gives.
ASK = """
import json, django
django.setup()
from django.test import Client
client = Client()
out = {}
for path in ("/healthz", "/readyz", "/metrics"):
    response = client.get(path)
    out[path] = [response.status_code, response.content.decode()]
print(json.dumps(out))
"""


def ask_in_child(**env: str) -> dict[str, tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-c", ASK],
        env=child_env(**env),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_ready_when_everything_answers():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_database_unreachable_fails_readiness_not_liveness():
    port = closed_port()
    answers = ask_in_child(TEST_DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/x")
    assert answers["/healthz"] == [200, "ok\n"]
    status, body = answers["/readyz"]
    assert status == 503
    assert json.loads(body)["failed"] == ["database"]
    assert json.loads(body)["status"] == "unavailable"
    assert answers["/metrics"] == [503, "database unavailable\n"]


@pytest.mark.django_db
def test_redis_unreachable_fails_readiness():
    port = closed_port()
    answers = ask_in_child(TEST_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    status, body = answers["/readyz"]
    assert status == 503
    assert json.loads(body)["failed"] == ["broker"]
    # Host names and addresses stay in the log, not in the public answer.
    assert str(port) not in body
    # The figures of the database are still worth the scrape.
    status, text = answers["/metrics"]
    assert status == 200
    assert "mailarchive_import_jobs" in text
    assert 'mailarchive_queue_length{queue="' not in text


@pytest.mark.django_db
def test_unwritable_storage_fails_readiness(settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mailarchive.storage.DurableFileSystemStorage",
            "OPTIONS": {"location": str(blocker / "store")},
        },
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_probes_answer_any_host_over_plain_http(settings):
    """GIVEN production settings: HTTPS redirects and one allowed host
    WHEN a load balancer asks a process by its address over plain HTTP
    THEN the probes answer, and every other page still refuses or redirects."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["archive.example.com"]
    client = Client()
    for path in ("/healthz", "/readyz", "/metrics"):
        response = client.get(path, HTTP_HOST="10.0.0.5:8000")
        assert response.status_code == 200, (path, response.content)
        assert "Set-Cookie" not in response.headers
    assert client.get("/login/", HTTP_HOST="10.0.0.5:8000").status_code == 400
    page = client.get("/login/", HTTP_HOST="archive.example.com")
    assert page.status_code == 301
    assert page["Location"].startswith("https://")


def test_probes_are_at_the_published_urls():
    from django.urls import reverse

    assert reverse("operations:healthz") == "/healthz"
    assert reverse("operations:readyz") == "/readyz"
    assert reverse("operations:metrics") == "/metrics"


@pytest.mark.django_db(transaction=True)
def test_two_gunicorn_workers_give_the_same_figures(tmp_path):
    """GIVEN accounts and poll runs committed to the database
    WHEN gunicorn's two worker processes are both scraped
    THEN both answer with the same figures (nothing lives in a process)."""
    start = timezone.now() - timedelta(hours=1)
    for n in range(3):
        account = MailAccountFactory(
            space=SpaceFactory(key=f"G{n}"), last_success_at=start
        )
        for seconds in (1, 20, 400):
            PollRunFactory(
                account=account,
                started_at=start,
                finished_at=start + timedelta(seconds=seconds),
                duplicates=n,
            )
    port = closed_port()
    access_log = tmp_path / "access.log"
    error_log = tmp_path / "error.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            "%(p)s %(U)s %(s)s",
            "--error-logfile",
            str(error_log),
            "mailarchive.wsgi",
        ],
        env=child_env(),
        cwd=PROJECT_DIR,
    )
    try:
        bodies = _scrape_until_both_workers_answer(port, access_log)
    except AssertionError as e:
        log = error_log.read_text() if error_log.exists() else "no gunicorn log"
        raise AssertionError(f"{e}\n{log}") from e
    finally:
        server.terminate()
        server.wait(timeout=30)
    by_worker = {}
    for pid, text in bodies:
        samples = parse(text)
        # The only figure that moves with the clock.
        samples = {
            key: value
            for key, value in samples.items()
            if key[0] != "mailarchive_oldest_unsuccessful_account_age_seconds"
        }
        by_worker.setdefault(pid, samples)
        assert samples == by_worker[pid]
    assert len(by_worker) == 2
    first, second = by_worker.values()
    assert first == second
    assert first[("mailarchive_polls_total", _labels("G2", "ok"))] == 3


def _labels(space: str, outcome: str) -> tuple[tuple[str, str], ...]:
    account = MailAccountFactory._meta.model.objects.get(space__key=space).name
    return tuple(
        sorted({"space": space, "account": account, "outcome": outcome}.items())
    )


def _scrape_until_both_workers_answer(
    port: int, access_log: Path
) -> list[tuple[str, str]]:
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.2)

    def one(_n: int) -> str:
        response = requests.get(url, timeout=30, headers={"Connection": "close"})
        assert response.status_code == 200, response.text
        return response.text

    texts: list[str] = []
    while time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=4) as pool:
            texts.extend(pool.map(one, range(8)))
        pids = _metrics_pids(access_log)
        if len(set(pids)) >= 2 and len(pids) == len(texts):
            return list(zip(pids, texts, strict=True))
    raise AssertionError("only one gunicorn worker answered")


def _metrics_pids(access_log: Path) -> list[str]:
    lines = access_log.read_text().splitlines() if access_log.exists() else []
    return [line.split()[0] for line in lines if " /metrics " in line]
