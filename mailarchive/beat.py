"""The beat scheduler: periodic tasks in the database, the settings' ones always on.

The tasks of CELERY_BEAT_SCHEDULE (polling, indexing, collecting orphaned
objects, sweeping uploads) are defined by the settings, and beat writes them
to the database as it starts. This scheduler writes them enabled as well, so
that a task switched off by hand in the database is on again at the next
start: automatic polling is switched on the site admin page, the one audited
switch (``fetch_settings_set``), and the task itself only asks it.
"""

from __future__ import annotations

from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry


class SettingsEntry(ModelEntry):
    @classmethod
    def _unpack_fields(cls, schedule: Any, **entry: Any) -> dict[str, Any]:
        fields = super()._unpack_fields(schedule, **entry)
        fields["enabled"] = True
        return fields


class SettingsScheduler(DatabaseScheduler):
    Entry = SettingsEntry
