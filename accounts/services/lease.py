"""The per-account poll lease: one poller at a time across workers and machines.

Held in the account row (``lease_owner``, ``lease_expires_at``): taken with one
conditional UPDATE, renewed as work proceeds, released at the end. A holder
killed outright stops renewing, so its lease runs out after ``LEASE_SECONDS``;
when the holder was a process of this machine that is gone, the next poll
takes over at once. The lease keeps polls from doing the same work twice; it
is not what keeps the archive correct (the database's constraints are).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import time
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from django.db.models import Q
from django.utils import timezone

from accounts.models import MailAccount

LEASE_SECONDS = 30.0
LEASE_RENEW_SECONDS = 5.0


class LeaseLostError(Exception):
    """Another poll took the account over because this one stalled too long."""


@lru_cache(maxsize=1)
def _process_namespace() -> str:
    """Names this machine's process-id space: same value, same pids."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text())
    with contextlib.suppress(OSError):
        parts.append(str(Path("/proc/self/ns/pid").readlink()))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _holder_is_dead(owner: str) -> bool:
    """Whether the lease holder is a process of this machine that has died."""
    namespace, _sep, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if namespace != _process_namespace() or not pid_text.isdigit():
        return False
    return not _pid_alive(int(pid_text))


class PollLease:
    """The per-account lock, held in the account row across workers and machines.

    Taken with one conditional UPDATE, renewed as work proceeds, released at
    the end. A holder killed outright stops renewing: its lease expires after
    ``LEASE_SECONDS``, or at once when the holder was a process of this
    machine that is gone.
    """

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.owner = f"{_process_namespace()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._renewed_at = 0.0

    def _expiry(self) -> datetime:
        return timezone.now() + timedelta(seconds=LEASE_SECONDS)

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or left by a dead process."""
        free = (
            Q(lease_owner="")
            | Q(lease_expires_at__isnull=True)
            | Q(lease_expires_at__lt=timezone.now())
        )
        taken = (
            MailAccount.objects.filter(pk=self.account_id)
            .filter(free)
            .update(lease_owner=self.owner, lease_expires_at=self._expiry())
        )
        if not taken:
            holder = (
                MailAccount.objects.filter(pk=self.account_id)
                .values_list("lease_owner", flat=True)
                .first()
            )
            if holder and _holder_is_dead(holder):
                taken = MailAccount.objects.filter(
                    pk=self.account_id, lease_owner=holder
                ).update(lease_owner=self.owner, lease_expires_at=self._expiry())
        if taken:
            self._renewed_at = time.monotonic()
        return bool(taken)

    def renew(self, *, force: bool = False) -> None:
        """Extend the lease; raises LeaseLostError if another poll took it."""
        if not force and time.monotonic() - self._renewed_at < LEASE_RENEW_SECONDS:
            return
        kept = MailAccount.objects.filter(
            pk=self.account_id, lease_owner=self.owner
        ).update(lease_expires_at=self._expiry())
        if not kept:
            raise LeaseLostError
        self._renewed_at = time.monotonic()

    def release(self) -> None:
        """Give the lease up (if still held). Safe to re-run."""
        MailAccount.objects.filter(pk=self.account_id, lease_owner=self.owner).update(
            lease_owner="", lease_expires_at=None
        )
