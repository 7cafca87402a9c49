"""/metrics and /readyz of the one-machine install: SQLite, the file broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.operations.helpers import PROJECT_DIR, parse, sample

SCRIPT = """
import json
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from django.utils import timezone
from accounts.models import MailAccount, PollRun
from mailarchive.celery import app
from spaces.models import Space

space = Space.objects.create(key="HOME", name="Home")
account = MailAccount.objects.create(
    space=space, name="inbox", protocol="imaps", host="mail.example.com",
    port=993, username="conf@example.com",
)
start = timezone.now() - timedelta(hours=1)
for seconds in (2, 90, 4000):
    PollRun.objects.create(
        account=account, trigger="schedule", status="ok", started_at=start,
        finished_at=start + timedelta(seconds=seconds),
    )
for _ in range(2):
    app.send_task("mailarchive.tasks.messages_index_pending_task")
client = Client()
ready = client.get("/readyz")
metrics = client.get("/metrics")
print(json.dumps({
    "ready": [ready.status_code, ready.json()],
    "metrics": [metrics.status_code, metrics.content.decode()],
}))
"""


def test_the_one_machine_install_reports_its_file_broker_and_sqlite(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "MAILARCHIVE_S3_BUCKET")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="mailarchive.settings",
        MAILARCHIVE_DATA_DIR=str(tmp_path / "var"),
        MAILARCHIVE_HTTPS="off",
        PYTHONPATH=str(PROJECT_DIR),
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["ready"] == [
        200,
        {
            "status": "ok",
            "failed": [],
            "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
        },
    ]
    status, text = answers["metrics"]
    assert status == 200
    samples = parse(text)
    assert sample(samples, "mailarchive_queue_length", queue="celery") == 2
    labels = {"space": "HOME", "account": "inbox"}
    bucket = "mailarchive_poll_duration_seconds_bucket"
    assert sample(samples, bucket, le="5.0", **labels) == 1
    assert sample(samples, bucket, le="120.0", **labels) == 2
    assert sample(samples, bucket, le="3600.0", **labels) == 2
    assert sample(samples, bucket, le="+Inf", **labels) == 3
    assert (
        sample(samples, "mailarchive_poll_duration_seconds_sum", **labels)
        == 2 + 90 + 4000
    )
    # The tasks wait as files in the data dir's broker folder.
    queued = list((tmp_path / "var" / "broker" / "queue").glob("*.celery.msg"))
    assert len(queued) == 2
