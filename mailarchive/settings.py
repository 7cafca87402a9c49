"""Settings for mailarchive, read from the environment (12-factor).

Every variable has a default that works on one machine with no servers: SQLite
and a file-based Celery broker under ``MAILARCHIVE_DATA_DIR``. Point
``DATABASE_URL`` at PostgreSQL and ``CELERY_BROKER_URL`` at Redis to scale out.
The README documents every variable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from mailarchive.privacy import PRIVATE_DIR, PRIVATE_FILE

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# The data dir holds mail, the secret key and the database: it and what the
# archive puts in it are its user's alone (see mailarchive.privacy, whose
# umask the entry points set).


def _private(path: Path, mode: int) -> None:
    """Make an existing ``path`` private, which an earlier version left open."""
    # Not ours to change (a mount owned by another user): leave it as it is.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        path.chmod(mode)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _private(path, PRIVATE_DIR)
    return path


DATA_DIR = Path(env.str("MAILARCHIVE_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR = _private_dir(DATA_DIR.expanduser().resolve())


def _secret_key() -> str:
    """The explicit key, or one generated once into the data dir and reused."""
    explicit = env.str("DJANGO_SECRET_KEY", default="")
    if explicit:
        return explicit
    key_file = DATA_DIR / "secret_key"
    try:
        # Created private and exclusive: never readable by others, not even
        # for the moment before the key is written.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        _private(key_file, PRIVATE_FILE)
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
    key = key_file.read_text().strip()
    if len(key) < 40:
        raise ImproperlyConfigured(
            f"{key_file} holds no usable secret key: delete it to have a new one "
            "generated, or set DJANGO_SECRET_KEY."
        )
    return key


SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Served over HTTPS (directly or behind a TLS-terminating proxy that sets
# X-Forwarded-Proto). `make run` turns it off because it serves plain HTTP on
# loopback.
HTTPS = env.bool("MAILARCHIVE_HTTPS", default=True)
# The proxies whose X-Forwarded-Proto and X-Forwarded-For are believed
# (addresses or CIDRs); see mailarchive.middleware.TrustedProxyMiddleware.
# Django's SECURE_PROXY_SSL_HEADER is not set: it believes anyone.
MAILARCHIVE_TRUSTED_PROXIES = env.list("MAILARCHIVE_TRUSTED_PROXIES", default=[])
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = ["security.W021"]  # HSTS preload is the operator's call

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_celery_beat",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "spaces",
    "mailarchive",
    "accounts",
    "api",
    "operations",
    "users",
]

MIDDLEWARE = [
    "mailarchive.middleware.TrustedProxyMiddleware",
    "operations.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "mailarchive.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "mailarchive.middleware.TimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mailarchive.urls"
WSGI_APPLICATION = "mailarchive.wsgi.application"
ASGI_APPLICATION = "mailarchive.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'mailarchive.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    for suffix in ("", "-wal", "-shm", "-journal"):
        _private(Path(f"{DATABASES['default']['NAME']}{suffix}"), PRIVATE_FILE)
    # WAL lets the web process read while a worker writes; synchronous=FULL makes
    # a commit durable before the poller deletes the message from the server.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
        ),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "spaces:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures for one user name from one address lock that
# pair out for fifteen minutes.
AXES_FAILURE_LIMIT = env.int("MAILARCHIVE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["mailarchive.formats"]
TIME_ZONE = env.str("MAILARCHIVE_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

FILE_UPLOAD_PERMISSIONS = PRIVATE_FILE
FILE_UPLOAD_DIRECTORY_PERMISSIONS = PRIVATE_DIR
STORAGES = {
    "default": {
        "BACKEND": "mailarchive.storage.DurableFileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "store")},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage",
    },
}
# Several machines share raw messages, attachments and import uploads through
# an S3-compatible object store (AWS S3, MinIO, Ceph, ...). Credentials come
# from boto3's usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an
# instance role). Objects are named by their content, so overwriting is right.
MAILARCHIVE_S3_BUCKET = env.str("MAILARCHIVE_S3_BUCKET", default="")
if MAILARCHIVE_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MAILARCHIVE_S3_BUCKET,
            "endpoint_url": env.str("MAILARCHIVE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MAILARCHIVE_S3_REGION", default="") or None,
            "location": env.str("MAILARCHIVE_S3_PREFIX", default=""),
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        },
    }
WHITENOISE_USE_FINDERS = True

# The API's rate limits count requests here. Files under the data dir are shared
# by every process on one machine; point it at Redis (redis://host:6379/1) when
# web processes run on several machines.
CACHES = {
    "default": env.cache_url(
        "MAILARCHIVE_CACHE_URL", default=f"filecache://{DATA_DIR / 'cache'}"
    )
}

# Celery: Redis in production, a broker that needs no server by default.
_broker_dir = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _private_dir(_broker_dir)
    for sub in ("queue", "processed", "control"):
        _private_dir(_broker_dir / sub)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
MAILARCHIVE_POLL_TIME_LIMIT = env.int("MAILARCHIVE_POLL_TIME_LIMIT", default=3600)
CELERY_TASK_TIME_LIMIT = MAILARCHIVE_POLL_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_BEAT_SCHEDULER = "mailarchive.beat:SettingsScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("MAILARCHIVE_TASKS_EAGER", default=False)

# Mail fetching.
MAILARCHIVE_ENCRYPTION_KEY = env.list("MAILARCHIVE_ENCRYPTION_KEY", default=[])
MAILARCHIVE_ALLOWED_MAIL_HOSTS = env.list("MAILARCHIVE_ALLOWED_MAIL_HOSTS", default=[])
MAILARCHIVE_FETCH_DISABLED = env.bool("MAILARCHIVE_FETCH_DISABLED", default=False)
MAILARCHIVE_POLL_INTERVAL = env.int("MAILARCHIVE_POLL_INTERVAL", default=30 * 60)
MAILARCHIVE_MAX_MESSAGE_BYTES = env.int(
    "MAILARCHIVE_MAX_MESSAGE_BYTES", default=50 * 1024 * 1024
)
MAILARCHIVE_MAIL_TIMEOUT = env.float("MAILARCHIVE_MAIL_TIMEOUT", default=60.0)
# The budget of parsing one message; a message over it is archived raw and
# marked "too complex". The memory limit is the parse process's address space.
MAILARCHIVE_PARSE_TIME_LIMIT = env.float("MAILARCHIVE_PARSE_TIME_LIMIT", default=60.0)
MAILARCHIVE_PARSE_MEMORY_LIMIT = env.int(
    "MAILARCHIVE_PARSE_MEMORY_LIMIT", default=2 * 1024 * 1024 * 1024
)
# Parse processes per indexing worker; 0 means one per core.
MAILARCHIVE_INDEX_PROCESSES = env.int("MAILARCHIVE_INDEX_PROCESSES", default=0)
# Reading the text of attachments (PDF, Office, ...) in the index stage. Each
# file is read in a process of its own under this budget, and its text kept up
# to MAX_CHARS characters; a file over the budget is recorded as not readable
# and its message is archived all the same.
MAILARCHIVE_ATTACHMENT_TEXT = env.bool("MAILARCHIVE_ATTACHMENT_TEXT", default=True)
MAILARCHIVE_EXTRACT_TIME_LIMIT = env.float(
    "MAILARCHIVE_EXTRACT_TIME_LIMIT", default=30.0
)
MAILARCHIVE_EXTRACT_MEMORY_LIMIT = env.int(
    "MAILARCHIVE_EXTRACT_MEMORY_LIMIT", default=1024 * 1024 * 1024
)
MAILARCHIVE_EXTRACT_MAX_CHARS = env.int(
    "MAILARCHIVE_EXTRACT_MAX_CHARS", default=200_000
)
MAILARCHIVE_IMPORT_DIR = env.str("MAILARCHIVE_IMPORT_DIR", default="")
MAILARCHIVE_MAX_UPLOAD_BYTES = env.int(
    "MAILARCHIVE_MAX_UPLOAD_BYTES", default=2 * 1024 * 1024 * 1024
)
MAILARCHIVE_UPLOAD_RETENTION_DAYS = env.int(
    "MAILARCHIVE_UPLOAD_RETENTION_DAYS", default=7
)
# Uploads stream to files under the data dir (on local storage, the same file
# system, so storing one is a rename), and are stopped at the limit above.
FILE_UPLOAD_TEMP_DIR = _private_dir(DATA_DIR / "upload-tmp")
FILE_UPLOAD_HANDLERS = [
    "mailarchive.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
SSL_CERT_FILE = env.str("SSL_CERT_FILE", default="")

# OAuth2 sign-in for mail accounts: a provider is offered once the archive is
# registered with it (README: "Signing in with Microsoft 365 or Google").
MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_ID = env.str(
    "MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_ID", default=""
)
MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_SECRET = env.str(
    "MAILARCHIVE_OAUTH2_MICROSOFT_CLIENT_SECRET", default=""
)
MAILARCHIVE_OAUTH2_MICROSOFT_TENANT = env.str(
    "MAILARCHIVE_OAUTH2_MICROSOFT_TENANT", default="common"
)
MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_ID = env.str(
    "MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_ID", default=""
)
MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_SECRET = env.str(
    "MAILARCHIVE_OAUTH2_GOOGLE_CLIENT_SECRET", default=""
)
MAILARCHIVE_OAUTH2_CUSTOM_ISSUER = env.str(
    "MAILARCHIVE_OAUTH2_CUSTOM_ISSUER", default=""
)
MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_ID = env.str(
    "MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_ID", default=""
)
MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_SECRET = env.str(
    "MAILARCHIVE_OAUTH2_CUSTOM_CLIENT_SECRET", default=""
)
# Alerts about mail accounts (accounts.services.alerts): an e-mail to the
# space's admins and the site admins, and a signed webhook POST if configured.
MAILARCHIVE_ALERT_FAILURES = env.int("MAILARCHIVE_ALERT_FAILURES", default=3)
MAILARCHIVE_ALERT_STALE_HOURS = env.int("MAILARCHIVE_ALERT_STALE_HOURS", default=24)
MAILARCHIVE_ALERT_FROM = env.str(
    "MAILARCHIVE_ALERT_FROM", default="mailarchive@localhost"
)
MAILARCHIVE_ALERT_WEBHOOK_URL = env.str("MAILARCHIVE_ALERT_WEBHOOK_URL", default="")
MAILARCHIVE_ALERT_WEBHOOK_SECRET = env.str(
    "MAILARCHIVE_ALERT_WEBHOOK_SECRET", default=""
)
# The address people reach the site at, for links in alert e-mails.
MAILARCHIVE_SITE_URL = env.str("MAILARCHIVE_SITE_URL", default="").rstrip("/")
# How alert e-mails leave: EMAIL_URL (smtp://user:password@host:587,
# smtp+tls://…, smtp+ssl://…); by default they are written to the log.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
EMAIL_TIMEOUT = env.int("MAILARCHIVE_EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = MAILARCHIVE_ALERT_FROM
SERVER_EMAIL = MAILARCHIVE_ALERT_FROM

# /metrics: readable with ``Authorization: Bearer <token>`` when a token is set,
# and from these networks (loopback by default) without one.
MAILARCHIVE_METRICS_TOKEN = env.str("MAILARCHIVE_METRICS_TOKEN", default="")
MAILARCHIVE_METRICS_ALLOW = env.list(
    "MAILARCHIVE_METRICS_ALLOW", default=["127.0.0.1/32", "::1/128"]
)
# The REST API under /api/v1/ (the ``api`` app). Every view decides space
# permissions itself through spaces.selectors, as the pages do.
MAILARCHIVE_API_RATE = env.str("MAILARCHIVE_API_RATE", default="600/minute")
MAILARCHIVE_API_ANONYMOUS_RATE = env.str(
    "MAILARCHIVE_API_ANONYMOUS_RATE", default="60/minute"
)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApiRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "api.renderers.ProblemJSONRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "URL_FORMAT_OVERRIDE": None,
    # OPTIONS would describe a view without asking for any permission.
    "DEFAULT_METADATA_CLASS": None,
    # Anonymous callers are told apart by REMOTE_ADDR, or by X-Forwarded-For
    # when this many proxies in front of the site add to it.
    "NUM_PROXIES": env.int("MAILARCHIVE_PROXY_COUNT", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mailarchive API",
    "DESCRIPTION": (
        "The archive's spaces, messages, threads, search, exports, mail "
        "accounts, imports and permissions, with the same permissions as the "
        "pages. Authenticate with `Authorization: Bearer <token>` (a personal "
        "API token) or a browser session. Errors are RFC 9457 problem details."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TAGS": [
        {"name": "spaces", "description": "Spaces the caller may see."},
        {"name": "messages", "description": "Messages, threads and files."},
        {"name": "search", "description": "The search page's search."},
        {"name": "trash", "description": "Removing and restoring mail."},
        {"name": "export", "description": "mbox downloads."},
        {"name": "mail accounts", "description": "For space admins."},
        {"name": "imports", "description": "For space admins."},
        {"name": "permissions", "description": "For space admins."},
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "filters": {
        "forbidden_without_traceback": {
            "()": "mailarchive.logfilters.ForbiddenWithoutTraceback"
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.request": {"filters": ["forbidden_without_traceback"]},
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}

CELERY_BEAT_SCHEDULE = {
    "poll-mail-accounts": {
        "task": "accounts.tasks.mail_accounts_poll_due",
        "schedule": MAILARCHIVE_POLL_INTERVAL,
        # A dispatch that could not run before the next one is due is dropped.
        "options": {"expires": max(MAILARCHIVE_POLL_INTERVAL - 5, 5)},
    },
    # Finishes messages that a killed poll or import secured but did not index.
    "index-pending-messages": {
        "task": "mailarchive.tasks.messages_index_pending_task",
        "schedule": 300,
        "options": {"expires": 290},
    },
    "collect-orphaned-stored-objects": {
        "task": "mailarchive.tasks.orphan_blobs_collect_task",
        "schedule": 3600,
        "options": {"expires": 3000},
    },
    # Alerts for accounts that stopped completing polls, and alerts whose
    # sending failed before (retried here).
    "evaluate-mail-account-alerts": {
        "task": "accounts.tasks.mail_account_alerts_evaluate_all",
        "schedule": 900,
        "options": {"expires": 850},
    },
    "sweep-import-uploads": {
        "task": "mailarchive.tasks.import_uploads_sweep_task",
        "schedule": 3600,
        "options": {"expires": 3000},
    },
}
