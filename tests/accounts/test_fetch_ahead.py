"""The fetch thread of a poll: one batch ahead, deletions only when asked."""

from __future__ import annotations

import threading
import time

import pytest

from accounts.clients import ErrorKind, MailClientError, ServerListing, ServerMessage
from accounts.services.fetch_ahead import FetchAhead


class RecordingClient:
    """Serves ``fetch`` and ``delete`` from memory and records the calls."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fetching = threading.Event()
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def fetch(self, server_ids):
        self.threads.add(threading.current_thread().name)
        self.calls.append(("fetch", list(server_ids)))
        if self.fail_on in server_ids:
            raise MailClientError(ErrorKind.TIMEOUT, "the server stopped answering")
        self.fetching.set()
        for server_id in server_ids:
            yield ServerMessage(server_id=server_id, size=3, raw=b"abc")

    def delete(self, server_ids):
        self.threads.add(threading.current_thread().name)
        self.calls.append(("delete", list(server_ids)))


def _batches(*names: str) -> list[list[ServerListing]]:
    return [[ServerListing(server_id=name, size=3)] for name in names]


def test_the_next_batch_is_fetched_while_one_is_secured_and_deleted_after() -> None:
    """GIVEN three batches
    WHEN the consumer holds on to the first one
    THEN the second is fetched meanwhile, in the fetch thread; each batch is
    deleted only once the consumer asked, and all before the end."""
    client = RecordingClient()
    deleted: list[list[str]] = []
    seen = []
    with FetchAhead(
        client, _batches("a", "b", "c"), max_bytes=10, heartbeat=lambda: None
    ) as ahead:
        for batch in ahead.batches(deleted.append):
            if not seen:
                deadline = time.monotonic() + 10
                while ("fetch", ["b"]) not in client.calls:
                    assert time.monotonic() < deadline, "no fetch ahead"
                    time.sleep(0.01)
            seen.append([m.server_id for m in batch.messages])
            assert ("delete", seen[-1]) not in client.calls
            ahead.delete(seen[-1])
    assert seen == [["a"], ["b"], ["c"]]
    assert deleted == [["a"], ["b"], ["c"]]
    assert client.calls.index(("fetch", ["b"])) < client.calls.index(("delete", ["a"]))
    assert client.threads == {"fetch-ahead"}


def test_an_error_of_the_fetch_thread_is_raised_in_the_poll() -> None:
    client = RecordingClient(fail_on="b")
    seen = []
    with (
        pytest.raises(MailClientError) as caught,
        FetchAhead(
            client, _batches("a", "b", "c"), max_bytes=10, heartbeat=lambda: None
        ) as ahead,
    ):
        for batch in ahead.batches(lambda ids: None):
            seen.append([m.server_id for m in batch.messages])
    assert caught.value.kind == ErrorKind.TIMEOUT
    assert seen == [["a"]]
    assert ("fetch", ["c"]) not in client.calls


def test_a_stopped_poll_deletes_nothing_it_did_not_ask_for() -> None:
    client = RecordingClient()
    with (
        pytest.raises(RuntimeError),
        FetchAhead(
            client, _batches("a", "b"), max_bytes=10, heartbeat=lambda: None
        ) as ahead,
    ):
        for _batch in ahead.batches(lambda ids: None):
            raise RuntimeError("the database went away")
    assert [call for call in client.calls if call[0] == "delete"] == []


def test_messages_over_the_limit_come_apart() -> None:
    client = RecordingClient()
    with FetchAhead(
        client, _batches("a"), max_bytes=2, heartbeat=lambda: None
    ) as ahead:
        [batch] = list(ahead.batches(lambda ids: None))
    assert batch.messages == []
    assert batch.too_large == [("a", 3)]


def test_a_batch_handed_over_is_not_held_by_the_fetch_side() -> None:
    """GIVEN a consumer that dropped the batch it was given
    THEN nothing else holds its bytes while the consumer goes on (a large
    message is not kept in memory while it is being indexed)."""
    import gc
    import weakref

    alive = []
    with FetchAhead(
        RecordingClient(), _batches("a"), max_bytes=10, heartbeat=lambda: None
    ) as ahead:
        for batch in ahead.batches(lambda ids: None):
            alive.append(weakref.ref(batch.messages[0]))
            del batch
            gc.collect()
            assert alive[0]() is None
