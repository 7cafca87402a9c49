"""Parsing under a budget, in child processes that can be killed.

Anyone can send mail to an archived address, so a message may be crafted to
make parsing slow or hungry. The parser bounds its inputs and its algorithms;
this module is the last line that holds even when they fail: each message is
parsed in a child process (:mod:`.worker`) under a memory limit the child sets
on itself and a time limit this side enforces by killing the child. A message
over budget comes back as :class:`OverBudget` instead of a parse, and its caller
archives it raw. Several children parse at once, one per core by default.

Plain Python, no Django; children are kept between calls and restarted after
a kill.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .results import ParsedMessage
from .worker import Request, encode_request, read_frame, write_frame

K = TypeVar("K")

DEFAULT_TARGET = "mailarchive.parsing:parse_message"
# How often a caller waiting on slow parses hears back (it may hold a lease).
HEARTBEAT_SECONDS = 5.0
# How long a new child may take to start before it counts as broken.
STARTUP_SECONDS = 120
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ParseBudget:
    """What parsing one message may cost: wall-clock seconds and address space."""

    seconds: float
    memory_bytes: int


@dataclass(frozen=True)
class OverBudget:
    """A message whose parse was stopped: ``reason`` is time, memory or crash."""

    reason: str
    detail: str = ""


class _Child:
    """One worker process and its pipes."""

    def __init__(self, target: str, budget: ParseBudget) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.key = (target, budget.memory_bytes)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailarchive.parsing.worker",
                "--target",
                target,
                "--memory-bytes",
                str(budget.memory_bytes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.started_at = 0.0
        self._ready = False

    @property
    def stdout_fd(self) -> int:
        assert self.process.stdout is not None
        return self.process.stdout.fileno()

    def send(self, request: Request) -> None:
        """Hand ``request`` to the child; its time starts once it holds it."""
        assert self.process.stdin is not None
        if not self._ready:
            # Starting Python and importing the parser is not the message's cost.
            ready, _w, _x = select.select([self.stdout_fd], [], [], STARTUP_SECONDS)
            if not ready or read_frame(self.process.stdout) != b"":  # type: ignore[arg-type]
                raise OSError("the parse worker did not start")
            self._ready = True
        write_frame(self.process.stdin, encode_request(request))  # type: ignore[arg-type]
        self.started_at = time.monotonic()

    def receive(self) -> ParsedMessage | OverBudget:
        assert self.process.stdout is not None
        try:
            frame = read_frame(self.process.stdout)  # type: ignore[arg-type]
        except (EOFError, OSError) as error:
            return OverBudget("crash", str(error))
        if frame is None:
            return OverBudget("crash", f"exit status {self.process.wait()}")
        status, payload = pickle.loads(frame)
        if status == "memory":
            return OverBudget("memory")
        return payload

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class _Idle:
    """Children waiting for work, shared by every caller in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: list[_Child] = []
        self._pid = os.getpid()

    def take(self, target: str, budget: ParseBudget) -> _Child:
        key = (target, budget.memory_bytes)
        with self._lock:
            if self._pid != os.getpid():
                # A forked process must not share its parent's pipes.
                self._children, self._pid = [], os.getpid()
            for index, child in enumerate(self._children):
                if child.key == key and child.alive():
                    return self._children.pop(index)
        return _Child(target, budget)

    def give_back(self, child: _Child) -> None:
        if not child.alive():
            child.kill()
            return
        with self._lock:
            if self._pid == os.getpid():
                self._children.append(child)
                return
        child.kill()

    def close(self) -> None:
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.kill()


_IDLE = _Idle()
atexit.register(_IDLE.close)


@dataclass
class _Busy(Generic[K]):
    child: _Child
    key: K


def parse_many(
    jobs: Iterable[tuple[K, Callable[[], bytes | Request]]],
    *,
    budget: ParseBudget,
    workers: int = 1,
    target: str = DEFAULT_TARGET,
    heartbeat: Callable[[], None] | None = None,
) -> Iterator[tuple[K, ParsedMessage | OverBudget]]:
    """Parse each job's raw message under ``budget``; yields (key, result).

    ``jobs`` gives a key and a function that returns the raw bytes, or a
    :class:`Request` naming the file that holds them (the child reads it) and
    a spool directory for large parts; it is only called when a child is
    free, so at most ``workers`` messages are in memory at once. Results come
    as they finish, not in order. ``heartbeat`` is called every few seconds
    while children work. Never raises for what a message does to the parser.
    """
    pending = iter(jobs)
    busy: list[_Busy[K]] = []
    try:
        while True:
            done: list[tuple[K, ParsedMessage | OverBudget]] = []
            _fill(busy, pending, done, budget, target, workers)
            if not busy:
                yield from done
                return
            # Children that answered get their next message before the
            # answers are handed out, so they parse while the caller works.
            done.extend(_collect(busy, budget))
            _fill(busy, pending, done, budget, target, workers)
            yield from done
            if heartbeat is not None:
                heartbeat()
    finally:
        for item in busy:
            item.child.kill()


def _fill(
    busy: list[_Busy[K]],
    pending: Iterator[tuple[K, Callable[[], bytes | Request]]],
    done: list[tuple[K, ParsedMessage | OverBudget]],
    budget: ParseBudget,
    target: str,
    workers: int,
) -> None:
    """Give free children the next jobs (a job that fails to start is done)."""
    while len(busy) < max(1, workers):
        job = next(pending, None)
        if job is None:
            return
        key, load = job
        outcome = _start(key, load, budget, target)
        if isinstance(outcome, _Busy):
            busy.append(outcome)
        else:
            done.append((key, outcome))


def parse_one(
    raw: bytes, *, budget: ParseBudget, target: str = DEFAULT_TARGET
) -> ParsedMessage | OverBudget:
    """Parse one message under ``budget`` (see :func:`parse_many`)."""
    for _key, result in parse_many([(0, lambda: raw)], budget=budget, target=target):
        return result
    raise AssertionError("parse_many yielded nothing for one job")


def _start(
    key: K, load: Callable[[], bytes | Request], budget: ParseBudget, target: str
) -> _Busy[K] | OverBudget:
    loaded = load()
    request = loaded if isinstance(loaded, Request) else Request(data=loaded)
    del loaded
    for attempt in range(2):
        child = _IDLE.take(target, budget)
        try:
            child.send(request)
        except (OSError, EOFError) as error:
            # A child that died while idle; a fresh one gets the message.
            child.kill()
            if attempt:
                return OverBudget("crash", str(error))
            continue
        return _Busy(child, key)
    raise AssertionError("unreachable")


def _collect(
    busy: list[_Busy[K]], budget: ParseBudget
) -> Iterator[tuple[K, ParsedMessage | OverBudget]]:
    """Wait for at least one busy child to answer or run out of time."""
    now = time.monotonic()
    deadline = min(item.child.started_at for item in busy) + budget.seconds
    by_fd = {item.child.stdout_fd: item for item in busy}
    wait = min(max(0.0, deadline - now), HEARTBEAT_SECONDS)
    ready, _w, _x = select.select(list(by_fd), [], [], wait)
    finished: list[tuple[_Busy[K], ParsedMessage | OverBudget]] = []
    for fd in ready:
        item = by_fd[fd]
        result = item.child.receive()
        finished.append((item, result))
    now = time.monotonic()
    for item in busy:
        if any(item is done for done, _r in finished):
            continue
        if now - item.child.started_at >= budget.seconds:
            finished.append(
                (item, OverBudget("time", f"more than {budget.seconds:g} s"))
            )
    for item, result in finished:
        busy.remove(item)
        if isinstance(result, OverBudget):
            item.child.kill()
        else:
            _IDLE.give_back(item.child)
        yield item.key, result


def close_idle() -> None:
    """Stop the children kept for later calls (they also stop at exit)."""
    _IDLE.close()


def describe(result: Any) -> str:
    """A short phrase for a result that is over budget, for the message's problems."""
    if not isinstance(result, OverBudget):
        return ""
    return {
        "time": "it took longer than the time allowed",
        "memory": "it needed more memory than allowed",
    }.get(result.reason, "the parser stopped")
