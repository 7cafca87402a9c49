"""Downloading a poll's next batch while the previous one is being secured.

A thread of its own owns the connection to the mail server: it fetches batch
N+1 while the poll commits batch N, and deletes on the server exactly the
messages the poll hands it, which the poll does only after their batch
committed. The server never waits for the database, and the database never
waits for the server, but the order of the promise is kept: no message is
deleted before it is archived.

The thread never touches the database. What it produces (batches, deletions
done, its error) goes back to the poll's thread through one queue, in order;
an error it meets is raised in the poll's thread as the very same exception,
so the poll reports it as it would have reported it without the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from accounts.clients import MailClient, ServerListing, ServerMessage

# How long either side waits before it looks again (for a stop, or to renew
# the poll's lease).
WAIT_SECONDS = 1.0


@dataclass
class FetchedBatch:
    """One batch as it came from the server.

    ``too_large`` are the messages over ``max_bytes`` (fetched without their
    bytes, or cut off by the client), as (server id, size): they stay on the
    server.
    """

    messages: list[ServerMessage]
    too_large: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class _Deleted:
    server_ids: list[str]


_FETCHED_ALL = object()
_END = object()


class FetchAhead:
    """Fetches ``batches`` from ``client`` one batch ahead of the consumer.

    Use it as a context manager around :meth:`batches`; leaving stops the
    thread and waits for it, so the client is free again (to log out).
    """

    def __init__(
        self,
        client: MailClient,
        batches: Iterable[Sequence[ServerListing]],
        *,
        max_bytes: int,
        heartbeat: Callable[[], None],
    ) -> None:
        self._client = client
        self._batches = batches
        self._max_bytes = max_bytes
        self._heartbeat = heartbeat
        self._out: queue.Queue[Any] = queue.Queue()
        self._deletions: queue.Queue[list[str] | None] = queue.Queue()
        # A batch may wait fetched while the previous one is being secured,
        # no more: at most two batches are held at once.
        self._slot = threading.Semaphore(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="fetch-ahead", daemon=True
        )

    def __enter__(self) -> FetchAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._slot.release()
        self._deletions.put(None)
        while self._thread.is_alive():
            self._thread.join(timeout=WAIT_SECONDS)

    # -- the poll's side ---------------------------------------------------------

    def batches(self, deleted: Callable[[list[str]], None]) -> Iterator[FetchedBatch]:
        """Yield the fetched batches in order, until every one was yielded and
        every deletion asked for with :meth:`delete` was done.

        ``deleted`` is called (in this thread) with the ids of each deletion
        done on the server. An error of the fetch thread is raised here.
        """
        while True:
            try:
                item = self._out.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                self._heartbeat()
                continue
            if isinstance(item, FetchedBatch):
                self._slot.release()
                # Handed over, not kept: the consumer drops the batch's bytes
                # once they are secured.
                ready = [item]
                del item
                yield ready.pop()
            elif isinstance(item, _Deleted):
                deleted(item.server_ids)
            elif item is _FETCHED_ALL:
                self._deletions.put(None)
            elif item is _END:
                return
            else:
                raise item

    def delete(self, server_ids: Sequence[str]) -> None:
        """Have ``server_ids`` deleted on the server, before the next fetch.

        Call it only once they are archived (their batch committed).
        """
        if server_ids:
            self._deletions.put(list(server_ids))

    # -- the fetch thread --------------------------------------------------------

    def _run(self) -> None:
        try:
            for batch in self._batches:
                if not self._wait_for_slot():
                    return
                self._delete_asked(block=False)
                if self._stop.is_set():
                    return
                self._out.put(self._fetch(batch))
            self._out.put(_FETCHED_ALL)
            if self._delete_asked(block=True):
                self._out.put(_END)
        except BaseException as error:  # raised again in the poll's thread
            self._out.put(error)

    def _wait_for_slot(self) -> bool:
        while not self._slot.acquire(timeout=WAIT_SECONDS):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _delete_asked(self, *, block: bool) -> bool:
        """Delete what the poll asked for; with ``block``, until it says it is
        done. Returns False if the poll stopped."""
        while True:
            try:
                server_ids = self._deletions.get(block=block, timeout=WAIT_SECONDS)
            except queue.Empty:
                if not block or self._stop.is_set():
                    return not self._stop.is_set()
                continue
            if server_ids is None or self._stop.is_set():
                return not self._stop.is_set()
            self._client.delete(server_ids)
            self._out.put(_Deleted(server_ids))

    def _fetch(self, batch: Sequence[ServerListing]) -> FetchedBatch:
        fetched = FetchedBatch(messages=[])
        for message in self._client.fetch([item.server_id for item in batch]):
            # The client stops reading at the limit, whatever the server
            # announced; such a message comes without its bytes.
            if message.too_large or len(message.raw or b"") > self._max_bytes:
                fetched.too_large.append((message.server_id, message.size))
            else:
                fetched.messages.append(message)
        return fetched
