"""The secure stage: raw bytes durable and identity committed, nothing parsed.

Exactly-once is decided here, on the wire's clock: a message's identity in a
space is the digest of its content without trace headers, computed from the
raw bytes alone. Parsing, attachments, threads and search come later in the
index stage (:mod:`.index`), which may take as long as it likes or give up on
a message without putting it at risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Message
from ..parsing import content_digest
from ..storage import blobs_put
from .index import messages_index
from .rows import rows_insert_new


@dataclass(frozen=True)
class SecuredMessage:
    """One raw message made safe: the row that holds it, and whether it is new."""

    message_pk: int
    created: bool
    raw_sha256: str


@dataclass(frozen=True)
class IngestResult:
    message_pk: int
    created: bool
    parseable: bool


def messages_secure(
    *,
    space_id: int,
    raws: Sequence[bytes],
    source: str,
    received_at: datetime | None = None,
) -> list[SecuredMessage]:
    """Store ``raws`` durably and commit one identity row per new content.

    Writes every raw object to storage (synced once for the batch) before the
    rows, then inserts the rows of contents the space does not hold yet in one
    statement that ignores conflicts, so overlapping callers cannot archive a
    content twice. Returns one result per raw, in order; a content already in
    the space (or twice in ``raws``) is ``created=False``. New rows wait in the
    ``pending`` index state. Runs in the caller's transaction: the poller
    commits the fetch ledger in the same one. Safe to re-run.
    """
    if not raws:
        return []
    digests = [content_digest(raw) for raw in raws]
    stored = blobs_put("raw", raws)
    existing = dict(
        Message.objects.filter(space_id=space_id, content_digest__in=set(digests))
        .order_by()
        .values_list("content_digest", "pk")
    )
    now = received_at or timezone.now()
    fresh: dict[str, dict[str, Any]] = {}
    for raw, digest, (name, sha) in zip(raws, digests, stored, strict=True):
        if digest in existing or digest in fresh:
            continue
        fresh[digest] = {
            "space_id": space_id,
            "content_digest": digest,
            "raw_name": name,
            "raw_size": len(raw),
            "raw_sha256": sha,
            "source": source,
            "date": now,
            "index_state": Message.IndexState.PENDING,
        }
    if fresh:
        with transaction.atomic(savepoint=False):
            rows_insert_new(Message, list(fresh.values()))
            inserted = dict(
                Message.objects.filter(space_id=space_id, content_digest__in=fresh)
                .order_by()
                .values_list("content_digest", "pk")
            )
    else:
        inserted = {}
    results: list[SecuredMessage] = []
    first_seen: set[str] = set()
    for digest, (_name, sha) in zip(digests, stored, strict=True):
        created = digest in fresh and digest not in first_seen
        first_seen.add(digest)
        pk = existing.get(digest) or inserted[digest]
        results.append(SecuredMessage(message_pk=pk, created=created, raw_sha256=sha))
    return results


def message_ingest(
    *,
    space_id: int,
    raw: bytes,
    source: str,
    received_at: datetime | None = None,
) -> IngestResult:
    """Archive ``raw`` into the space exactly once and index it now.

    Both stages for one message: secured (committed with the caller's
    transaction, if any), then indexed through the budgeted parser. A message
    whose content is already in the space is reported as a duplicate and
    changes nothing. Never raises for malformed or hostile mail: what cannot be
    parsed within its budget is archived raw and marked. Safe to re-run.
    """
    with transaction.atomic():
        secured = messages_secure(
            space_id=space_id, raws=[raw], source=source, received_at=received_at
        )[0]
    if secured.created:
        messages_index(message_pks=[secured.message_pk])
    parseable = (
        Message.objects.filter(pk=secured.message_pk)
        .values_list("parseable", flat=True)
        .first()
    )
    return IngestResult(
        message_pk=secured.message_pk,
        created=secured.created,
        parseable=bool(parseable),
    )
