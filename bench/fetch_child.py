"""Run ``manage.py fetchmail --account ID`` in this process and time the poll.

Started by the ingest and memory benchmarks with the product's environment
(``DATABASE_URL``, ``MAILARCHIVE_DATA_DIR``, ...). The time covers the command
itself, from connecting to the mail server to its summary line (every message
secured and indexed); interpreter and Django start-up are left out, as they are
for the limit and the peer. ``secured_seconds`` is the time until the secure
stage was done and the server empty (the poll then only waits for indexing).
Prints one JSON line: both times, the command's output, and how many messages
the account's space holds afterwards. With ``--no-wait`` the command leaves
indexing to the Celery workers (none run here): both times are then the
secure stage's alone.

    python bench/fetch_child.py 3 [--no-wait]
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import django

    django.setup()
    from common import secured_clock
    from django.core.management import CommandError, call_command

    from accounts.models import MailAccount
    from mailarchive.models import Message

    secured_at = secured_clock()

    account_id = int(sys.argv[1])
    no_wait = "--no-wait" in sys.argv[2:]
    out, err = io.StringIO(), io.StringIO()
    error = ""
    started = time.perf_counter()
    try:
        call_command(
            "fetchmail", account=[account_id], no_wait=no_wait, stdout=out, stderr=err
        )
    except CommandError as exc:
        error = str(exc)
    seconds = time.perf_counter() - started
    space_id = MailAccount.objects.values_list("space_id", flat=True).get(pk=account_id)
    archived = Message.objects.filter(space_id=space_id).count()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "secured_seconds": (secured_at[0] - started) if secured_at else seconds,
                "archived": archived,
                "output": (out.getvalue() + err.getvalue()).strip(),
                "error": error,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
