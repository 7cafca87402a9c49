"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from mailarchive.privacy import keep_new_files_private

keep_new_files_private()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailarchive.settings")
application = get_asgi_application()
