"""WSGI entry point (gunicorn mailarchive.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from mailarchive.privacy import keep_new_files_private

keep_new_files_private()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailarchive.settings")
application = get_wsgi_application()
