"""Filters of the log configuration (``LOGGING`` in settings)."""

from __future__ import annotations

import logging


class ForbiddenWithoutTraceback(logging.Filter):
    """A 403 is an answer, not a fault: keep its one line, drop the traceback
    that Django attaches to every refused permission. Changes the record only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
