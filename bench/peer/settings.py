"""Standalone Django settings for the peer: django-mailbox 4.10 fetching mail.

Used only by ``bench/peer/fetch.py`` inside its own virtualenv
(``var/bench/peer-venv``). The database comes from ``PEER_DATABASE_URL``
(``postgres://…``; SQLite in ``PEER_MEDIA_ROOT`` when unset), files go to
``PEER_MEDIA_ROOT``. The original message is stored, as the archive stores it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

MEDIA_ROOT = os.environ.get("PEER_MEDIA_ROOT", str(Path.cwd() / "peer-media"))
SECRET_KEY = "peer-benchmark-only-" + "p" * 40
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_mailbox",
]


def _database() -> dict[str, object]:
    url = os.environ.get("PEER_DATABASE_URL", "")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(Path(MEDIA_ROOT) / "peer.sqlite3"),
        }
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
    }


DATABASES = {"default": _database()}
DJANGO_MAILBOX_STORE_ORIGINAL_MESSAGE = True
