"""The test settings on SQLite instead of PostgreSQL.

``make test`` runs the database-independent attachment-text tests once more
with these (``pytest --ds=tests.settings_sqlite …``): SQLite is what a
one-machine install runs on, and it searches by substring rather than by
PostgreSQL's full-text and trigram indexes. The database is a file in the
run's throwaway data directory, with the pragmas of a real install.
"""

import os
import tempfile
from pathlib import Path

_data_dir = Path(tempfile.mkdtemp(prefix="mailarchive-test-sqlite-"))
os.environ["TEST_DATABASE_URL"] = f"sqlite:///{_data_dir / 'mailarchive.sqlite3'}"

from tests.settings import *  # noqa: E402, F403

DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": str(_data_dir / "test-mailarchive.sqlite3")
}
