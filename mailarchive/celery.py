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
