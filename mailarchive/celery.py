"""The Celery application: workers and beat load their settings from Django."""

import os
from typing import Any

from celery import Celery, signals

from .privacy import keep_new_files_private

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailarchive.settings")

app = Celery("mailarchive")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# On the worker's and beat's start, not on import: every process that imports
# the package (tests, commands) would otherwise get the umask too.
@signals.worker_init.connect
@signals.beat_init.connect
def _private_files(**kwargs: Any) -> None:
    keep_new_files_private()


# Beat runs an interval entry only once its interval has passed since start;
# without this the first poll would come a whole interval (30 minutes by
# default) after the archive starts.
POLL_ENTRY = "poll-mail-accounts"


@signals.beat_init.connect
def _poll_at_start(sender: Any, **kwargs: Any) -> None:
    """Dispatch the due-accounts poll once as beat starts; the task itself
    decides which accounts are due, so a restart never polls one early."""
    entry = sender.app.conf.beat_schedule.get(POLL_ENTRY)
    if entry is not None:
        sender.app.send_task(entry["task"], **entry.get("options", {}))
