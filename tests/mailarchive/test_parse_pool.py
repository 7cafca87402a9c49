"""The parse budget: children that are killed, not parsers that are trusted."""

from __future__ import annotations

import time

import pytest

from mailarchive.parsing import ParsedMessage
from mailarchive.parsing.pool import OverBudget, ParseBudget, parse_many, parse_one

TARGET = "tests.misbehaving_parser:parse"
BUDGET = ParseBudget(seconds=3.0, memory_bytes=768 * 1024 * 1024)
MEMORY_ONLY = ParseBudget(seconds=60.0, memory_bytes=768 * 1024 * 1024)


def raw(subject: str, marker: str = "") -> bytes:
    extra = f"X-Parser-Test: {marker}\r\n" if marker else ""
    return (
        f"From: a@example.com\r\nSubject: {subject}\r\n{extra}\r\nbody\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("marker", "reason"),
    [("loop", "time"), ("grow", "memory"), ("crash", "crash")],
    ids=["endless-loop", "endless-memory", "dies"],
)
def test_a_parse_over_budget_is_stopped_and_reported(marker, reason):
    # Each case is given room on the other limit, so that a loaded machine
    # cannot turn one reason into another.
    budget = MEMORY_ONLY if reason == "memory" else BUDGET
    result = parse_one(raw("bad", marker), budget=budget, target=TARGET)
    assert isinstance(result, OverBudget)
    assert result.reason == reason


def test_good_messages_around_a_bad_one_all_parse():
    """GIVEN two children and a stream with a message whose parse never ends
    WHEN the stream is parsed THEN every good message comes back parsed, the
    bad one comes back over budget, and the good ones do not wait for it."""
    jobs = [(i, lambda i=i: raw(f"good {i}")) for i in range(12)]
    jobs.insert(3, ("bad", lambda: raw("bad", "loop")))
    finished_at: dict[object, float] = {}
    results: dict[object, object] = {}
    start = time.monotonic()
    for key, result in parse_many(jobs, budget=BUDGET, workers=2, target=TARGET):
        results[key] = result
        finished_at[key] = time.monotonic() - start
    assert isinstance(results.pop("bad"), OverBudget)
    assert sorted(results) == list(range(12))
    assert all(isinstance(r, ParsedMessage) for r in results.values())
    assert [results[i].subject for i in range(12)] == [f"good {i}" for i in range(12)]
    # The other child went on while one was stuck: most good messages were
    # done before the stuck one was given up on.
    done_before = [k for k in range(12) if finished_at[k] < finished_at["bad"]]
    assert len(done_before) >= 8


def test_a_child_killed_for_one_message_is_replaced():
    assert isinstance(
        parse_one(raw("x", "crash"), budget=BUDGET, target=TARGET), OverBudget
    )
    again = parse_one(raw("after"), budget=BUDGET, target=TARGET)
    assert isinstance(again, ParsedMessage)
    assert again.subject == "after"
