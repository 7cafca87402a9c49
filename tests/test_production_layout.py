"""The production layout, run for real: the commands docker-compose documents.

PostgreSQL (this run's test database), a private Redis server, the migrate
step (``manage.py migrate`` and ``ensuresiteadmin``), gunicorn, two Celery
workers and exactly one beat, each started as its own process group from the
command lines of ``docker-compose.yml`` with ``mailarchive.settings`` and the
environment a deployment sets. Spaces come from ``createspace``, mail accounts
from ``addmailaccount`` and the REST API on gunicorn, the mail from real
Dovecot mailboxes. Nothing calls ``fetchmail``: beat alone polls, every
``MAILARCHIVE_POLL_INTERVAL`` seconds. A worker is killed with SIGKILL (its
whole process group, as when its machine or container dies) while it holds an
account's poll lease, and a fresh worker takes its place. Afterwards every
message is archived exactly once with its raw bytes unchanged, every one is
indexed, and every mailbox on the server is empty.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from accounts.models import FetchedMessage, MailAccount
from mailarchive.mbox import iter_mbox
from mailarchive.models import Message
from tests.accounts.conftest import PORT_ATTRIBUTES, make_message
from tests.conftest import database_url

logger = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POLL_INTERVAL = 3
SPACES = ["OPSA", "OPSB", "OPSC", "OPSD"]
ACCOUNTS_PER_SPACE = 5
PROTOCOLS = ["imaps", "pops", "imap", "pop"]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0

pytestmark = [
    pytest.mark.postgres(
        reason="the production layout is PostgreSQL, Redis and several processes"
    ),
    pytest.mark.django_db(transaction=True),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_pids(pgid: int) -> set[int]:
    """Every live process in the process group ``pgid``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.add(int(entry.name))
    return pids


@dataclass
class Layout:
    """The processes of one production layout, each its own process group."""

    root: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    web_url: str = ""

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = proc
        return proc

    def manage(self, *args: str, stdin: str = "") -> str:
        """Run one ``manage.py`` command as an operator would; its output."""
        return self.manage_many([list(args)], stdin=stdin)[0]

    def manage_many(self, commands: list[list[str]], stdin: str = "") -> list[str]:
        """Run independent ``manage.py`` commands side by side; their outputs."""
        procs = [
            subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=PROJECT_DIR,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            for args in commands
        ]
        outputs = []
        for args, proc in zip(commands, procs, strict=True):
            try:
                out, err = proc.communicate(stdin, timeout=120)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            assert proc.returncode == 0, (
                f"manage.py {' '.join(args)} exited {proc.returncode}:\n{out}\n{err}"
            )
            outputs.append(out)
        return outputs

    def kill_group(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def stop_all(self) -> None:
        """SIGTERM every group started here, then SIGKILL what is left."""
        for name in self.processes:
            self.kill_group(name, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, proc in self.processes.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            while _group_pids(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.kill_group(name, signal.SIGKILL)
            proc.wait()

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-2500:]}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if name.startswith("killed-"):
                continue
            if proc.poll() is not None:
                pytest.fail(f"{name} exited {proc.returncode}:\n{self.logs()}")


def _worker_command(name: str) -> list[str]:
    # docker-compose's worker command; on one host each worker needs a node name.
    return [
        str(BIN / "celery"),
        "-A",
        "mailarchive",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "2",
        "--hostname",
        f"{name}@%h",
    ]


@pytest.fixture
def layout(dovecot) -> Iterator[Layout]:
    """Redis and the migrate step; gunicorn, two workers and beat started."""
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed (Debian package redis-server); the "
            "production layout test starts a private one",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="mailarchive-layout-"))
    redis_port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "MAILARCHIVE_", "CELERY_", "TEST_"))
    }
    env.update(
        # What docker-compose.yml sets, pointed at this machine.
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        MAILARCHIVE_CACHE_URL=f"redis://127.0.0.1:{redis_port}/1",
        DJANGO_SECRET_KEY="layout-" + os.urandom(32).hex(),
        MAILARCHIVE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        MAILARCHIVE_HTTPS="off",
        MAILARCHIVE_DATA_DIR=str(root / "data"),
        # What this test needs: a short beat interval, the loopback Dovecot
        # and its CA, and few parse processes on a small machine.
        MAILARCHIVE_POLL_INTERVAL=str(POLL_INTERVAL),
        MAILARCHIVE_ALLOWED_MAIL_HOSTS="127.0.0.1",
        SSL_CERT_FILE=dovecot.ca_file,
        MAILARCHIVE_INDEX_PROCESSES="1",
        DJANGO_SUPERUSER_USERNAME="operator",
        DJANGO_SUPERUSER_PASSWORD="operator-" + os.urandom(8).hex(),
        PYTHONPATH=str(PROJECT_DIR),
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    running = Layout(root=root, env=env)
    try:
        running.start(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
            ],
        )
        running.manage("migrate", "--no-input")
        running.manage("ensuresiteadmin")
        web_port = _free_port()
        running.web_url = f"http://127.0.0.1:{web_port}"
        running.start(
            "web",
            [
                str(BIN / "gunicorn"),
                "mailarchive.wsgi",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                "2",
            ],
        )
        running.start("worker-1", _worker_command("worker-1"))
        running.start("worker-2", _worker_command("worker-2"))
        running.start(
            "beat", [str(BIN / "celery"), "-A", "mailarchive", "beat", "-l", "INFO"]
        )
        _wait_for_web(running)
        logger.info("layout up")
        yield running
    finally:
        running.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_web(layout: Layout) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        layout.check_alive()
        with contextlib.suppress(requests.RequestException):
            # Ready as a load balancer sees it: database, broker and storage.
            if requests.get(layout.web_url + "/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"gunicorn never became ready:\n{layout.logs()}")


@dataclass
class Mailbox:
    space: str
    username: str
    raws: list[bytes]


def _provision(
    layout: Layout, dovecot, per_account: int
) -> tuple[list[Mailbox], requests.Session]:
    """Spaces by command, accounts by command and by the API, mail on Dovecot.

    The first account comes from ``addmailaccount``, the others from
    ``POST /api/v1/spaces/<key>/mail-accounts/`` on gunicorn; then each
    mailbox gets its mail.
    """
    outputs = layout.manage_many(
        [["createapitoken", "operator"]]
        + [["createspace", space, "--name", f"Operations {space}"] for space in SPACES]
    )
    api = _api_session(outputs[0])
    mailboxes = []
    n = 0
    for space in SPACES:
        for i in range(ACCOUNTS_PER_SPACE):
            username = f"layout{space.lower()}{i}{os.urandom(3).hex()}"
            password = os.urandom(12).hex()
            dovecot.add_user(username, password)
            tag = f"{space}-{i}"
            raws = [make_message(n + k, tag=tag) for k in range(per_account)]
            n += per_account
            mailboxes.append(Mailbox(space, username, raws))
            protocol = PROTOCOLS[i % len(PROTOCOLS)]
            port = getattr(dovecot, PORT_ATTRIBUTES[protocol])
            starttls = protocol in ("imap", "pop")
            if space == SPACES[0] and i == 0:
                layout.manage(
                    "addmailaccount",
                    "--space",
                    space,
                    "--name",
                    f"{tag} clone",
                    "--protocol",
                    protocol,
                    "--host",
                    dovecot.host,
                    "--port",
                    str(port),
                    "--username",
                    username,
                    "--password-stdin",
                    stdin=password + "\n",
                )
                continue
            response = api.post(
                f"{layout.web_url}/api/v1/spaces/{space}/mail-accounts/",
                json={
                    "name": f"{tag} clone",
                    "protocol": protocol,
                    "host": dovecot.host,
                    "port": port,
                    "username": username,
                    "password": password,
                    "starttls": starttls,
                },
                timeout=30,
            )
            assert response.status_code == 201, response.text
    assert MailAccount.objects.filter(enabled=True).count() == len(SPACES) * (
        ACCOUNTS_PER_SPACE
    )
    # The mail arrives once every account exists, so that the polls beat
    # starts from now on have work to be cut off in.
    for box in mailboxes:
        dovecot.deliver_many(box.username, box.raws)
    return mailboxes, api


def _api_session(createapitoken_output: str) -> requests.Session:
    api = requests.Session()
    token = createapitoken_output.strip().splitlines()[-1]
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def _poller_pids() -> dict[int, int]:
    """Pid of each process that holds a poll lease right now -> account id."""
    held = {}
    for account_id, owner in MailAccount.objects.exclude(lease_owner="").values_list(
        "pk", "lease_owner"
    ):
        pid = owner.split(":")[1]
        if pid.isdigit():
            held[int(pid)] = account_id
    return held


def _kill_a_polling_worker(
    layout: Layout, generation: int, deadline: float, per_account: int
) -> int:
    """SIGKILL the first worker seen polling an account that still has mail
    to fetch (it holds the account's poll lease); start a new one.

    Returns the id of the account whose poll was cut off.
    """
    while time.monotonic() < deadline:
        layout.check_alive()
        held = _poller_pids()
        unfinished = {
            account_id
            for account_id in held.values()
            if FetchedMessage.objects.filter(account_id=account_id).count()
            < per_account
        }
        for name, proc in list(layout.processes.items()):
            if not name.startswith("worker-"):
                continue
            cut = [
                held[pid]
                for pid in _group_pids(proc.pid)
                if held.get(pid) in unfinished
            ]
            if cut:
                layout.kill_group(name)
                proc.wait()
                layout.processes[f"killed-{name}"] = layout.processes.pop(name)
                replacement = f"worker-{generation}"
                layout.start(replacement, _worker_command(replacement))
                return cut[0]
        time.sleep(0.01)
    pytest.fail(f"no worker was ever seen polling:\n{layout.logs()}")


def _export(layout: Layout, space: str, token_session: requests.Session) -> list[bytes]:
    response = token_session.get(
        f"{layout.web_url}/api/v1/spaces/{space}/export/", timeout=60
    )
    assert response.status_code == 200, response.text[:500]
    body = response.content
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return [entry.raw for entry in iter_mbox(io.BytesIO(body), variant="mboxrd")]


def _digests(raws: list[bytes]) -> Counter[str]:
    return Counter(hashlib.sha256(raw).hexdigest() for raw in raws)


def _run(dovecot, layout: Layout, *, per_account: int, kills: int) -> None:
    mailboxes, api = _provision(layout, dovecot, per_account)
    total = per_account * len(mailboxes)
    logger.info("%s accounts with %s messages added", len(mailboxes), total)
    deadline = time.monotonic() + 60 + total * 0.5
    cut_off = [
        _kill_a_polling_worker(layout, 3 + k, deadline, per_account)
        for k in range(kills)
    ]
    assert len(cut_off) == kills
    logger.info("polls of accounts %s cut off", cut_off)

    def finished() -> bool:
        return (
            all(dovecot.message_count(box.username) == 0 for box in mailboxes)
            and Message.objects.filter(index_state="indexed").count() >= total
        )

    while not finished():
        layout.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(
                f"not everything archived and indexed in time "
                f"({Message.objects.count()} of {total}):\n{layout.logs()}"
            )
        time.sleep(0.25)

    logger.info("archived, indexed, mailboxes empty")
    for space in SPACES:
        expected = _digests(
            [raw for box in mailboxes if box.space == space for raw in box.raws]
        )
        assert _digests(_export(layout, space, api)) == expected, space
    assert Message.objects.count() == total
    assert FetchedMessage.objects.count() == total
    assert set(Message.objects.values_list("index_state", flat=True)) == {"indexed"}
    assert not Message.objects.filter(thread__isnull=True).exists()
    for account_id in cut_off:
        account = MailAccount.objects.get(pk=account_id)
        assert FetchedMessage.objects.filter(account=account).count() == per_account


def test_beat_polls_twenty_accounts_while_a_worker_is_killed(dovecot, layout):
    """GIVEN the production layout and 20 accounts in 4 spaces with mail
    WHEN beat alone polls them and a worker is killed with SIGKILL mid-poll
    and replaced THEN every message is archived once, byte-identical, and
    indexed, and every mailbox is empty."""
    _run(dovecot, layout, per_account=3, kills=1)


@pytest.mark.slow
def test_beat_polls_through_several_worker_kills(dovecot, layout):
    """The same with 40 messages per account and a worker killed four times."""
    _run(dovecot, layout, per_account=40, kills=4)
