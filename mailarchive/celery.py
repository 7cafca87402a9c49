"""The Celery application: workers and beat load their settings from Django."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailarchive.settings")

app = Celery("mailarchive")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
