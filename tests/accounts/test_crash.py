"""Crash safety: `manage.py fetchmail` killed with SIGKILL at random moments.

Each run is a real subprocess on the test database (committed data, hence
``transaction=True``) and the same storage as this test process. It is killed
either a random time after it started (start-up, login, listing, fetching)
or a random moment after its poll committed a random number of messages
(between commit and delete, mid-batch, while deleting, between the secure and
the index stage, while indexing). The same for ``importmbox``. Then it is re-run
until a run completes. The archive must hold each source message exactly
once, byte for byte, and the server must be empty.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import FetchedMessage, MailAccount
from mailarchive.mbox import iter_mbox
from mailarchive.models import Message
from tests.accounts.conftest import (
    BOOTSTRAP,
    PROJECT_DIR,
    archived_raws,
    child_env,
    source_messages,
)

logger = logging.getLogger(__name__)
RUN_LIMIT = 600.0


def _ledger_count(account_id: int) -> int:
    return FetchedMessage.objects.filter(account_id=account_id).count()


def _start(account_id: int, env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP, "fetchmail", "--account", str(account_id)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=log,
    )


def _kill_at_random(
    proc: subprocess.Popen, account_id: int, rng: random.Random, stride: int
):
    """Kill ``proc`` at a random moment; returns True if it was still running."""
    if rng.random() < 0.4:
        try:
            proc.wait(timeout=rng.uniform(0.1, 2.5))
            return False
        except subprocess.TimeoutExpired:
            pass
    else:
        target = _ledger_count(account_id) + rng.randint(1, stride)
        # A hang guard only: a healthy run passes its target in seconds.
        deadline = time.monotonic() + RUN_LIMIT
        while proc.poll() is None and _ledger_count(account_id) < target:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("fetchmail stopped making progress")
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def _export(space_key: str) -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.mbox"
        call_command(
            "exportmbox", "--space", space_key, str(path), stdout=io.StringIO()
        )
        with path.open("rb") as fp:
            return [entry.raw for entry in iter_mbox(fp, variant="mboxrd")]


def _sha(raws: list[bytes]) -> list[str]:
    return sorted(hashlib.sha256(raw).hexdigest() for raw in raws)


def run_crash_loop(dovecot, mail_user, account: MailAccount, count: int, kills: int):
    source = source_messages(count, tag=f"crash-{account.protocol}")
    dovecot.deliver_many(mail_user.username, source)
    env = child_env(dovecot)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    # Progress kills land, on average, evenly over the whole mailbox.
    stride = max(10, count // kills)
    killed = interrupted_mid_poll = runs = 0
    with tempfile.TemporaryFile() as log:
        while True:
            runs += 1
            assert runs <= kills * 3 + 10, f"no progress (seed {seed})"
            before = _ledger_count(account.pk)
            started = time.monotonic()
            proc = _start(account.pk, env, log)
            if killed < kills and dovecot.message_count(mail_user.username):
                if _kill_at_random(proc, account.pk, rng, stride):
                    killed += 1
                    after = _ledger_count(account.pk)
                    interrupted_mid_poll += before < after < count
                    logger.info(
                        "run %s killed after %.1fs: ledger %s -> %s",
                        runs,
                        time.monotonic() - started,
                        before,
                        after,
                    )
                    continue
            else:
                proc.wait(timeout=RUN_LIMIT)
            if proc.returncode != 0:
                log.seek(0)
                pytest.fail(
                    f"fetchmail exited {proc.returncode} (seed {seed}):\n"
                    + log.read().decode(errors="replace")[-3000:]
                )
            if dovecot.message_count(mail_user.username) == 0:
                break
    logger.info(
        "crash loop: %s messages, %s kills (%s mid-poll), %s runs, seed %s",
        count,
        killed,
        interrupted_mid_poll,
        runs,
        seed,
    )
    assert dovecot.message_count(mail_user.username) == 0
    archived = archived_raws(account.space)
    assert len(archived) == count, f"seed {seed}"
    assert _sha(archived) == _sha(source), f"seed {seed}"
    assert _sha(_export(account.space.key)) == _sha(source), f"seed {seed}"
    assert Message.objects.filter(space=account.space).count() == count
    assert FetchedMessage.objects.filter(account=account).count() == count
    # Kills between the two stages or while indexing leave messages waiting;
    # the run that completed indexed every one of them.
    messages = Message.objects.filter(space=account.space)
    assert set(messages.values_list("index_state", flat=True)) == {"indexed"}
    assert not messages.filter(thread__isnull=True).exists()
    return killed, interrupted_mid_poll


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("protocol", "count", "kills"),
    [
        pytest.param("imaps", 200, 10, id="IMAPS"),
        pytest.param("pops", 120, 6, id="POP3S"),
    ],
)
def test_fetchmail_killed_at_random_moments_archives_exactly_once(
    dovecot, mail_user, make_account, protocol, count, kills
):
    account = make_account(mail_user, protocol)
    run_crash_loop(dovecot, mail_user, account, count, kills)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ten_thousand_messages_killed_many_times(dovecot, mail_user, make_account):
    account = make_account(mail_user, "imaps")
    run_crash_loop(dovecot, mail_user, account, 10_000, 60)


def _import_count(space_id: int) -> int:
    return Message.objects.filter(space_id=space_id).count()


@pytest.mark.django_db(transaction=True)
def test_importmbox_killed_at_random_moments_imports_exactly_once(dovecot, tmp_path):
    """GIVEN an mbox of 200 messages WHEN ``importmbox`` is killed with SIGKILL
    at random moments (scanning, securing, indexing) and run again until it
    completes THEN the space holds each message once, byte for byte, and
    every one of them indexed."""
    from mailarchive.mbox import quote_mboxrd
    from mailarchive.parsing import content_digest
    from tests.factories import SpaceFactory

    space = SpaceFactory(key="CRASHIMP")
    source = source_messages(200, tag="crash-import")
    path = tmp_path / "crash.mbox"
    with path.open("wb") as out:
        for raw in source:
            out.write(b"From crash@example.com Mon Jan  1 00:00:00 2024\n")
            out.write(quote_mboxrd(raw.replace(b"\r\n", b"\n")))
            out.write(b"\n")
    env = child_env(dovecot)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    kills = runs = 0
    with tempfile.TemporaryFile() as log:
        while True:
            runs += 1
            assert runs <= 30, f"no progress (seed {seed})"
            proc = subprocess.Popen(
                [
                    sys.executable, "-c", BOOTSTRAP,
                    "importmbox", "--space", space.key, str(path),
                ],
                cwd=PROJECT_DIR, env=env, stdout=log, stderr=log,
            )  # fmt: skip
            if kills < 5:
                target = _import_count(space.pk) + rng.randint(1, 50)
                deadline = time.monotonic() + RUN_LIMIT
                while proc.poll() is None and _import_count(space.pk) < target:
                    assert time.monotonic() < deadline, "importmbox stalled"
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.3))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    continue
            proc.wait(timeout=RUN_LIMIT)
            if proc.returncode == 0:
                break
            log.seek(0)
            pytest.fail(
                f"importmbox exited {proc.returncode} (seed {seed}):\n"
                + log.read().decode(errors="replace")[-3000:]
            )
    messages = Message.objects.filter(space=space)
    assert messages.count() == len(source), f"seed {seed}"
    archived = sorted(content_digest(raw) for raw in archived_raws(space))
    assert archived == sorted(content_digest(raw) for raw in source), f"seed {seed}"
    assert set(messages.values_list("index_state", flat=True)) == {"indexed"}
    assert not messages.filter(thread__isnull=True).exists()
