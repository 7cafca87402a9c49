"""The peer: django-mailbox 4.10 fetching one mailbox, timed like the archive.

Runs inside the peer's virtualenv with ``DJANGO_SETTINGS_MODULE=settings`` and
this directory on ``sys.path``. Migrates its database, adds one mailbox for the
URI in ``PEER_MAILBOX_URI`` (e.g. ``imap+ssl://user:pw@127.0.0.1:993``), then
times ``Mailbox.get_new_mail()`` — what its ``getmail`` command runs for every
mailbox — from connecting to closing. Prints one JSON line: messages received,
seconds, and how many rows its message table holds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django_mailbox.models import Mailbox, Message

    Path(os.environ["PEER_MEDIA_ROOT"]).mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    mailbox = Mailbox.objects.create(name="bench", uri=os.environ["PEER_MAILBOX_URI"])
    started = time.perf_counter()
    received = sum(1 for _message in mailbox.get_new_mail())
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "messages": received,
                "seconds": seconds,
                "stored": Message.objects.count(),
            }
        )
    )


if __name__ == "__main__":
    main()
