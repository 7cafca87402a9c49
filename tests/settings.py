"""Settings for the test suite: real PostgreSQL and Redis, a throwaway data dir."""

import os
import tempfile

# Never the production database or broker, even when their variables are set.
os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailarchive"
)
os.environ["CELERY_BROKER_URL"] = os.environ.get(
    "TEST_REDIS_URL", "redis://127.0.0.1:6379/15"
)
# A child process playing another machine names a data dir of its own.
os.environ["MAILARCHIVE_DATA_DIR"] = os.environ.get(
    "MAILARCHIVE_TEST_DATA_DIR"
) or tempfile.mkdtemp(prefix="mailarchive-test-")
# Local storage unless a test names its object store.
os.environ.pop("MAILARCHIVE_S3_BUCKET", None)
if os.environ.get("MAILARCHIVE_TEST_S3_BUCKET"):
    os.environ["MAILARCHIVE_S3_BUCKET"] = os.environ["MAILARCHIVE_TEST_S3_BUCKET"]
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-" + "x" * 50)
os.environ.setdefault("MAILARCHIVE_HTTPS", "off")

from mailarchive.settings import *  # noqa: E402, F403

# Child processes of a test (web, worker) use a queue of their own, so that no
# other test run's worker takes their tasks from the shared Redis.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("MAILARCHIVE_TEST_QUEUE", "celery")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# One test database per run, so that several runs on one machine do not collide.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": os.environ.get(
        "MAILARCHIVE_TEST_DB_NAME", f"test_mailarchive_{os.getpid()}"
    )
}
