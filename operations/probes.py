"""Readiness: do the database, the broker and the storage answer now?"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connection

from mailarchive.storage import storage_probe

from .broker import queue_lengths

logger = logging.getLogger(__name__)


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # A broken connection is not reused by the next request.
        connection.close()
        raise


def _broker() -> None:
    queue_lengths()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "broker": _broker,
    "storage": storage_probe,
}


def readiness() -> dict[str, str]:
    """Each dependency's state: ``"ok"``, or the type of the error it raised.

    The error itself is logged (it may name hosts and paths), not returned:
    the probe answers anyone. Writes and deletes one small stored object.
    """
    states: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as e:
            logger.warning("readiness: %s failed: %s: %s", name, type(e).__name__, e)
            states[name] = type(e).__name__
        else:
            states[name] = "ok"
    return states
