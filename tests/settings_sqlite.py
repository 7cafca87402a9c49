"""The test settings on SQLite instead of PostgreSQL.

``make test`` runs the tests that touch the database differently once more
with these (``pytest --ds=tests.settings_sqlite -m 'not slow and not
postgres' …``, the list is ``SQLITE_TESTS`` in the Makefile): SQLite is what a
one-machine install runs on; it searches by substring rather than by
PostgreSQL's full-text and trigram indexes and lets one writer in at a time.
Tests marked ``postgres`` need PostgreSQL itself and are left out. The
database is a file in the run's throwaway data directory, with the pragmas of
a real install.
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
