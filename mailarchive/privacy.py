"""Files the archive creates are its user's alone: mail is private.

Every entry point (``manage.py``, the WSGI and ASGI applications, Celery's
worker and beat) calls ``keep_new_files_private`` before anything touches
the data dir; the settings and the storage also set these modes explicitly.
Nothing here imports Django, so ``manage.py`` can call it first.
"""

from __future__ import annotations

import os

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PRIVATE_UMASK = 0o077


def keep_new_files_private() -> None:
    """Set this process's umask to 077: whatever it creates from now on (the
    SQLite database and its journal, broker messages, temporary files) is
    0600, and directories 0700. Safe to call again."""
    os.umask(PRIVATE_UMASK)
