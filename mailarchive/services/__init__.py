"""Writes to the archive: the two stages of archiving, threads, trash, feeds.

- :mod:`.ingest` — the secure stage (raw bytes and identity, before parsing);
- :mod:`.index` — the index stage (parse under a budget, attachments, threads,
  search);
- :mod:`.threads`, :mod:`.trash`, :mod:`.blobs`, :mod:`.feeds`,
  :mod:`.preferences`.
"""

from .blobs import orphan_blob_grace, orphan_blobs_collect
from .feeds import feed_token_regenerate, feed_token_revoke
from .index import Indexer, IndexSummary, messages_index, messages_index_pending
from .ingest import IngestResult, SecuredMessage, message_ingest, messages_secure
from .preferences import reading_preference_set
from .rows import rows_insert_new
from .threads import thread_refresh
from .trash import (
    message_trash,
    message_trash_undo,
    messages_purge,
    messages_restore,
    space_mail_trash_all,
)

__all__ = [
    "IndexSummary",
    "Indexer",
    "IngestResult",
    "SecuredMessage",
    "feed_token_regenerate",
    "feed_token_revoke",
    "message_ingest",
    "message_trash",
    "message_trash_undo",
    "messages_index",
    "messages_index_pending",
    "messages_purge",
    "messages_restore",
    "messages_secure",
    "orphan_blob_grace",
    "orphan_blobs_collect",
    "reading_preference_set",
    "rows_insert_new",
    "space_mail_trash_all",
    "thread_refresh",
]
