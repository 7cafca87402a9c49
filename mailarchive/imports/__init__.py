"""Importing mbox and .eml files into a space, as a job that survives crashes.

A file arrives by browser upload (kept in the storage under ``imports/``),
from the server directory ``MAILARCHIVE_IMPORT_DIR`` (site admins only), or as a path
given to ``manage.py importmbox``. An ``ImportJob`` row records it, and
``mbox_import_run`` does the work for the Celery task and the command alike:
it counts the file's messages (status "scanning"), then hands each message to
``message_ingest`` (status "importing"), the same ingest and identity rules as
polling, so a message already in the space is reported as a duplicate.

Messages are committed in batches, each batch in one transaction together with
the job's counters and ``checkpoint`` (the number of entries of the file fully
handled). The counters therefore always say exactly what is in the archive,
however the import ends. Running the job again continues after the checkpoint;
running it from the very start would be correct too, because the identity rules
turn every message already stored into a duplicate. The checkpoint only keeps
the counters meaningful and saves the rework.

Memory stays bounded: the file is read as a stream and only the current message
is held. A message larger than ``MAILARCHIVE_MAX_MESSAGE_BYTES`` is not loaded;
it is listed among the job's errors with its offset in the file.

Uploads are refused past ``MAILARCHIVE_MAX_UPLOAD_BYTES`` while they stream in,
and ``import_uploads_sweep`` removes the files no import will read again.
"""

from .cleanup import import_uploads_sweep
from .jobs import (
    LEASE,
    import_job_create,
    import_job_rerun,
    import_job_rerunnable,
    import_server_file_accept,
    import_summary,
    import_upload_accept,
    import_upload_missing,
    require_global,
)
from .run import mbox_import_run
from .sources import (
    ImportPathError,
    ServerFile,
    import_check_head,
    import_dir_files,
    import_dir_resolve,
    import_dir_root,
)

__all__ = [
    "LEASE",
    "ImportPathError",
    "ServerFile",
    "import_check_head",
    "import_dir_files",
    "import_dir_resolve",
    "import_dir_root",
    "import_job_create",
    "import_job_rerun",
    "import_job_rerunnable",
    "import_server_file_accept",
    "import_summary",
    "import_upload_accept",
    "import_upload_missing",
    "import_uploads_sweep",
    "mbox_import_run",
    "require_global",
]
