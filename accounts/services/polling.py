"""The poll: archive every new message of one account, then delete it.

The order is the product's promise (DESIGN.md, invariants 1 and 2):

1. take the account's lease, so one poller works on it at a time;
2. list the mailbox; messages already in the fetch ledger were archived by an
   earlier poll that did not get to delete them, so they are only deleted;
3. fetch the new ones in batches bounded by count and bytes (messages over
   ``MAILARCHIVE_MAX_MESSAGE_BYTES`` are not fetched and stay on the server),
   one batch ahead: a thread that owns the connection downloads the next
   batch while this one secures the previous (:mod:`.fetch_ahead`);
4. per batch, one transaction *secures* the messages (raw bytes durable,
   identity rows) with their ledger rows; only after it committed are those
   messages deleted on the server, and only then are the ledger rows marked
   deleted (for POP3 after QUIT, when deletions take effect);
5. the batch is then *indexed* (parsed under a budget per message, threaded,
   made searchable); a message the parser cannot finish is kept raw, and what
   a crash left unindexed is indexed at the end of the next poll.

A kill at any point leaves either uncommitted work (rolled back, the messages
still on the server) or committed work whose deletion the next poll repeats.
Correctness rests on the database's unique constraints (ledger per account,
content per space), not on the lease: overlapping polls cannot archive twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.clients import (
    Credential,
    ErrorKind,
    MailClientError,
    ServerListing,
    ServerMessage,
    open_client,
    protocol_get,
)
from accounts.crypto import PasswordUnreadableError
from accounts.models import FetchedMessage, MailAccount, PollRun
from accounts.providers import ProviderError
from accounts.selectors import fetch_settings_get
from accounts.sentences import (
    AUTOMATIC_OFF,
    BUSY,
    DATABASE,
    DISABLED,
    FETCH_DISABLED,
    INTERNAL,
    LEASE_LOST,
    NOT_GLOBAL,
    PASSWORD_UNREADABLE,
    STORAGE,
    account_error_sentence,
    poll_outcome_sentence,
)
from mailarchive import services as archive_services
from mailarchive.models import Message
from mailarchive.storage import StorageError

from .alerts import mail_account_alerts_evaluate_quietly
from .fetch_ahead import FetchAhead
from .lease import LeaseLostError, PollLease
from .mail_accounts import connection_settings_for
from .signin import mail_account_credential, oauth2_access_token_forget

logger = logging.getLogger(__name__)

BATCH_MAX_COUNT = 100
BATCH_MAX_BYTES = 32 * 1024 * 1024
DELETE_CHUNK = 500
LEDGER_LOOKUP_CHUNK = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class PollSummary:
    """What one poll of one account did."""

    account_id: int
    account_name: str
    poll_run_id: int | None
    status: str
    fetched: int = 0
    duplicates: int = 0
    deleted: int = 0
    left_on_server: int = 0
    error_kind: str = ""
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status == PollRun.Status.FAILED

    def line(self) -> str:
        """One line for people, e.g. "Sales (clone) retrieved 12 new messages"."""
        return poll_outcome_sentence(
            account_name=self.account_name,
            status=self.status,
            fetched=self.fetched,
            duplicates=self.duplicates,
            left_on_server=self.left_on_server,
            error=self.error,
        )


@dataclass
class _Progress:
    fetched: int = 0
    duplicates: int = 0
    deleted: int = 0
    listed: bool = False
    # Messages the listing showed, and a failure of the index stage to report.
    on_server: int = 0
    index_error: str = ""
    index_done: bool = False
    left: list[dict[str, Any]] = field(default_factory=list)


# -- the ledger ----------------------------------------------------------------


def mailbox_key(account: MailAccount) -> str:
    """Names the mailbox the account reads, to scope its ledger entries.

    Server ids are only unique within one mailbox: if an admin points the
    account at another server, user or folder, an old id must not match a new
    message (it would be deleted as "already archived"). A changed key makes
    the next poll fetch again; content identity then finds what is archived.
    """
    protocol = protocol_get(account.protocol)
    family = protocol.family
    folder = account.folder if protocol.reads_folders else ""
    identity = "\0".join([family, account.host.strip().lower(), account.username])
    return hashlib.sha256(f"{identity}\0{folder}".encode()).hexdigest()[:12]


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ledger_known(account_id: int, key: str, server_ids: Sequence[str]) -> set[str]:
    """The server ids that the account's ledger already holds."""
    prefixed = {f"{key}/{sid}": sid for sid in server_ids}
    found: set[str] = set()
    for chunk in _chunks(list(prefixed), LEDGER_LOOKUP_CHUNK):
        found.update(
            FetchedMessage.objects.filter(
                account_id=account_id, server_id__in=chunk
            ).values_list("server_id", flat=True)
        )
    return {prefixed[name] for name in found}


def _ledger_mark_deleted(account_id: int, key: str, server_ids: Sequence[str]) -> None:
    now = timezone.now()
    for chunk in _chunks(list(server_ids), LEDGER_LOOKUP_CHUNK):
        FetchedMessage.objects.filter(
            account_id=account_id,
            server_id__in=[f"{key}/{sid}" for sid in chunk],
            deleted_from_server_at__isnull=True,
        ).update(deleted_from_server_at=now)


# -- one poll ------------------------------------------------------------------


def _batches(listing: Iterable[ServerListing]) -> Iterator[list[ServerListing]]:
    """Consecutive batches within BATCH_MAX_COUNT and BATCH_MAX_BYTES (≥ 1 each)."""
    batch: list[ServerListing] = []
    size = 0
    for item in listing:
        if batch and (
            len(batch) >= BATCH_MAX_COUNT or size + item.size > BATCH_MAX_BYTES
        ):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch


def _left(server_id: str, size: int, reason: str) -> dict[str, Any]:
    return {"server_id": server_id, "size": size, "reason": reason}


def _secure(account: MailAccount, raws: list[bytes], now: Any) -> list[Any]:
    return archive_services.messages_secure(
        space_id=account.space_id,
        raws=raws,
        source=Message.Source.POLL,
        received_at=now,
    )


def _secure_each(
    account: MailAccount, messages: list[ServerMessage], now: Any
) -> tuple[list[tuple[ServerMessage, Any]], list[ServerMessage]]:
    """The batch one message at a time, after storing it whole failed."""
    secured: list[tuple[ServerMessage, Any]] = []
    failed: list[ServerMessage] = []
    for message in messages:
        try:
            with transaction.atomic():
                secured.append((message, _secure(account, [message.raw], now)[0]))
        except (DatabaseError, StorageError):
            raise
        except Exception:
            # One bad message never stops the account: it stays on the server.
            logger.exception(
                "message %s of mail account %s could not be archived",
                message.server_id,
                account.pk,
            )
            failed.append(message)
    return secured, failed


def _archive_batch(
    account: MailAccount,
    key: str,
    messages: list[ServerMessage],
    progress: _Progress,
) -> tuple[list[str], list[int]]:
    """Secure one batch: raw bytes, identity rows and ledger rows in one commit.

    Returns the server ids now safely archived, and the ids of the messages
    this batch added (to be indexed). Nothing is parsed here, so no message,
    however crafted, can hold the batch up. A database outage or a storage
    fault (disk full, permission denied) propagates and rolls the whole batch
    back: every further message would fail the same way.
    """
    if not messages:
        return [], []
    now = timezone.now()
    failed: list[ServerMessage] = []
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                results = _secure(account, [m.raw for m in messages], now)
            secured = list(zip(messages, results, strict=True))
        except (DatabaseError, StorageError):
            raise
        except Exception:
            secured, failed = _secure_each(account, messages, now)
        # A ledger row that an overlapping poll committed first stays as it
        # is: either row proves the message archived.
        archive_services.rows_insert_new(
            FetchedMessage,
            [
                {
                    "account_id": account.pk,
                    "server_id": f"{key}/{message.server_id}",
                    "message_id": result.message_pk,
                    "raw_sha256": result.raw_sha256,
                }
                for message, result in secured
            ],
        )
    created = [result.message_pk for _m, result in secured if result.created]
    progress.fetched += len(created)
    progress.duplicates += len(secured) - len(created)
    progress.left.extend(_left(m.server_id, len(m.raw), "unarchivable") for m in failed)
    return [message.server_id for message, _r in secured], created


def _poll_mailbox(
    account: MailAccount, lease: PollLease, progress: _Progress, *, wait: bool
) -> None:
    """Connect and do the poll; raises on the first error that stops it."""
    credential = mail_account_credential(account)
    lease.renew(force=True)
    key = mailbox_key(account)
    at_logout = protocol_get(account.protocol).deletes_at_logout
    # POP3 deletions take effect at QUIT, when the session closes normally.
    pop_deleted: list[str] = []

    def deleted(server_ids: Sequence[str]) -> None:
        """Bookkeeping of messages the client deleted on the server."""
        if at_logout:
            pop_deleted.extend(server_ids)
        else:
            _ledger_mark_deleted(account.pk, key, server_ids)
            progress.deleted += len(server_ids)

    # Batches are indexed while the next ones are fetched and secured.
    indexer = archive_services.Indexer(heartbeat=lease.renew, dispatch=not wait)
    try:
        _fetch_and_secure(account, credential, key, lease, progress, deleted, indexer)
    finally:
        # What was secured is indexed, whatever stopped the poll.
        indexer.finish()
        if isinstance(indexer.failure, StorageError):
            progress.index_error = str(indexer.failure)
    if pop_deleted:
        _ledger_mark_deleted(account.pk, key, pop_deleted)
        progress.deleted += len(pop_deleted)
    if wait and not progress.index_error:
        # Whatever an earlier poll secured but did not get to index (it
        # crashed, or was killed between the stages) is finished now.
        try:
            archive_services.messages_index_pending(
                space_id=account.space_id, heartbeat=lease.renew
            )
            progress.index_done = True
        except StorageError as error:
            # The mail is secured and deleted; its index waits for storage.
            logger.warning("mail account %s: indexing stopped: %s", account.pk, error)
            progress.index_error = str(error)


def _fetch_and_secure(
    account: MailAccount,
    credential: Credential,
    key: str,
    lease: PollLease,
    progress: _Progress,
    deleted: Callable[[Sequence[str]], None],
    indexer: Any,
) -> None:
    """The part of a poll connected to the server: list, secure, delete.

    Batches are downloaded one ahead by a thread that owns the connection
    (:class:`.fetch_ahead.FetchAhead`) while this thread secures the previous
    one; a batch is handed to it for deletion only once it is committed.
    ``deleted`` is called here with what was deleted on the server.
    """
    max_bytes = settings.MAILARCHIVE_MAX_MESSAGE_BYTES
    with open_client(connection_settings_for(account, credential=credential)) as client:
        listing = client.list_messages()
        lease.renew(force=True)
        known = _ledger_known(account.pk, key, [item.server_id for item in listing])
        fresh: list[ServerListing] = []
        for item in listing:
            if item.server_id in known:
                continue
            if item.size > max_bytes:
                progress.left.append(_left(item.server_id, item.size, "too_large"))
            else:
                fresh.append(item)
        progress.listed = True
        progress.on_server = len(listing)
        already = [item.server_id for item in listing if item.server_id in known]
        for chunk in _chunks(already, DELETE_CHUNK):
            client.delete(list(chunk))
            deleted(chunk)
            lease.renew()
        ahead = FetchAhead(
            client, _batches(fresh), max_bytes=max_bytes, heartbeat=lease.renew
        )
        with ahead:
            for batch in ahead.batches(deleted):
                progress.left.extend(
                    _left(server_id, size, "too_large")
                    for server_id, size in batch.too_large
                )
                archived, created = _archive_batch(
                    account, key, batch.messages, progress
                )
                # A poll that stalled until another took over stops here; what
                # it committed is in the ledger, and the other poll deletes it.
                lease.renew(force=True)
                ahead.delete(archived)
                # The bytes are in storage now: not held while they are indexed.
                del batch
                indexer.submit(created)


def _run_for(account: MailAccount, trigger: str, poll_run_id: int | None) -> PollRun:
    run = None
    if poll_run_id is not None:
        run = PollRun.objects.filter(pk=poll_run_id, account=account).first()
    if run is None:
        run = PollRun.objects.create(account=account, trigger=trigger)
    return run


def _skip(run: PollRun, account: MailAccount, kind: str) -> PollSummary:
    error = account_error_sentence(account, kind)
    PollRun.objects.filter(pk=run.pk).update(
        status=PollRun.Status.SKIPPED,
        finished_at=timezone.now(),
        error=error,
        error_kind=kind,
    )
    return PollSummary(
        account_id=account.pk,
        account_name=account.name,
        poll_run_id=run.pk,
        status=PollRun.Status.SKIPPED,
        error_kind=kind,
        error=error,
    )


def _finish(
    run: PollRun, account: MailAccount, progress: _Progress, kind: str, detail: str
) -> PollSummary:
    """Record the poll and the account's health in one transaction."""
    now = timezone.now()
    status = PollRun.Status.FAILED if kind else PollRun.Status.OK
    error = account_error_sentence(account, kind, detail) if kind else ""
    health: dict[str, Any] = {"last_poll_at": now}
    if progress.listed:
        health["left_on_server"] = progress.left
        health["on_server_count"] = max(progress.on_server - progress.deleted, 0)
        health["on_server_at"] = now
    if progress.index_error:
        health.update(index_error=progress.index_error, index_error_at=now)
    elif progress.index_done:
        health.update(index_error="", index_error_at=None)
    if kind:
        health.update(
            last_error=error,
            last_error_kind=kind,
            last_error_detail=detail,
            last_error_at=now,
            consecutive_failures=F("consecutive_failures") + 1,
        )
    else:
        health.update(last_success_at=now, consecutive_failures=0)
    with transaction.atomic():
        PollRun.objects.filter(pk=run.pk).update(
            status=status,
            finished_at=now,
            fetched=progress.fetched,
            duplicates=progress.duplicates,
            deleted=progress.deleted,
            left_on_server=len(progress.left),
            error=error,
            error_kind=kind,
            error_detail=detail,
        )
        MailAccount.objects.filter(pk=account.pk).update(**health)
    summary = PollSummary(
        account_id=account.pk,
        account_name=account.name,
        poll_run_id=run.pk,
        status=status,
        fetched=progress.fetched,
        duplicates=progress.duplicates,
        deleted=progress.deleted,
        left_on_server=len(progress.left),
        error_kind=kind,
        error=error,
    )
    logger.info("mail account %s: %s", account.pk, summary.line())
    return summary


def mail_account_poll(
    *,
    account_id: int,
    trigger: str,
    poll_run_id: int | None = None,
    wait_for_index: bool = True,
) -> PollSummary:
    """Poll one account: archive new mail, then delete it from the server.

    Records a PollRun (the one given, or a new one) and the account's health,
    then sends the alerts a change of health calls for. Never raises for
    mail-server, message, storage or database trouble during the poll: the
    summary says what happened. Skips when fetching is disabled, the space
    is not global, another poll holds the account's lease, or (for queued
    polls) the account was disabled or automatic polling switched off since.
    Safe to re-run at any time, also after a crash: nothing is archived twice
    and nothing is deleted that is not archived. Returns once what it secured
    is indexed too; with ``wait_for_index=False`` indexing is left to the
    Celery workers (one task per batch).
    """
    account = MailAccount.objects.select_related("space").filter(pk=account_id).first()
    if account is None:
        return PollSummary(
            account_id=account_id,
            account_name=str(account_id),
            poll_run_id=None,
            status=PollRun.Status.SKIPPED,
            error_kind="missing",
            error="the mail account no longer exists",
        )
    run = _run_for(account, trigger, poll_run_id)
    if settings.MAILARCHIVE_FETCH_DISABLED:
        return _skip(run, account, FETCH_DISABLED)
    if not account.space.is_global:
        return _skip(run, account, NOT_GLOBAL)
    # Queued polls honour a switch flipped after they were queued; the command
    # line polls the accounts it is given.
    if trigger != PollRun.Trigger.COMMAND and not account.enabled:
        return _skip(run, account, DISABLED)
    if (
        trigger == PollRun.Trigger.SCHEDULE
        and not fetch_settings_get().automatic_polling
    ):
        return _skip(run, account, AUTOMATIC_OFF)
    lease = PollLease(account.pk)
    if not lease.acquire():
        return _skip(run, account, BUSY)
    try:
        PollRun.objects.filter(pk=run.pk).update(
            status=PollRun.Status.RUNNING, started_at=timezone.now()
        )
        progress = _Progress()
        kind = detail = ""
        try:
            _poll_mailbox(account, lease, progress, wait=wait_for_index)
        except MailClientError as error:
            kind, detail = error.kind, error.detail
            if error.kind == ErrorKind.TOKEN_REJECTED:
                # Perhaps revoked early; the next poll asks for a new one.
                oauth2_access_token_forget(account_id=account.pk)
        except ProviderError as error:
            kind, detail = error.kind, error.detail
        except PasswordUnreadableError:
            kind = PASSWORD_UNREADABLE
        except LeaseLostError:
            kind = LEASE_LOST
        except StorageError as error:
            logger.error("poll of mail account %s: %s", account.pk, error)
            kind, detail = STORAGE, str(error)
        except DatabaseError as error:
            logger.warning("poll of mail account %s: database error", account.pk)
            kind, detail = DATABASE, type(error).__name__
        except Exception as error:
            logger.exception("poll of mail account %s stopped", account.pk)
            kind, detail = INTERNAL, type(error).__name__
        summary = _finish(run, account, progress, kind, detail)
    finally:
        lease.release()
    # The health just changed (or not): alert whom it concerns. Never fails
    # the poll; what could not be sent is sent by the periodic evaluation.
    mail_account_alerts_evaluate_quietly(account_id=account.pk)
    return summary
