"""Where extracted text goes: a buffer with a size cap and a clock.

Extraction stops early, keeping what it has, when the text reaches its cap or
the time allowed is nearly up; the process that runs it is killed when the time
is up altogether (see :mod:`mailarchive.parsing.pool`). Each reader calls
:meth:`TextSink.add` for every piece of text and :meth:`TextSink.tick` for every
unit of work that yields none (an empty cell, a page without text), so a
document that is all structure and no text stops as surely as one that is all
text.
"""

from __future__ import annotations

import time


class Stop(Exception):
    """Extraction has what it may have; the text so far is the result."""

    reason = "stopped"


class TextFull(Stop):
    reason = "text-limit"


class OutOfTime(Stop):
    reason = "time-limit"


class TooMuchWork(Stop):
    reason = "work-limit"


# How many ticks pass between two looks at the clock.
_CLOCK_EVERY = 256


class TextSink:
    """Collects pieces of text up to ``max_chars``, until ``deadline``.

    ``max_steps`` bounds the units of work (cells, paragraphs, pages) however
    little text they give. Raises a :class:`Stop` from :meth:`add` or
    :meth:`tick` when a limit is reached; the text collected stays readable.
    """

    def __init__(self, *, max_chars: int, deadline: float, max_steps: int) -> None:
        self.max_chars = max(0, max_chars)
        self.deadline = deadline
        self.max_steps = max_steps
        self.pieces: list[str] = []
        self.chars = 0
        self.steps = 0
        self.stopped: str = ""
        self.problems: list[str] = []

    def add(self, text: str) -> None:
        """Append ``text`` (a paragraph, a cell); raises TextFull at the cap."""
        self.tick()
        if not text:
            return
        room = self.max_chars - self.chars
        if len(text) >= room:
            if room > 0:
                self.pieces.append(text[:room])
                self.chars += room
            raise TextFull
        self.pieces.append(text)
        self.chars += len(text) + 1

    def tick(self, steps: int = 1) -> None:
        """Count ``steps`` units of work; raises when over the work or time."""
        before = self.steps
        self.steps += steps
        if self.steps > self.max_steps:
            raise TooMuchWork
        if self.steps // _CLOCK_EVERY != before // _CLOCK_EVERY or steps > 1:
            self.check_clock()

    def check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime

    def mark(self) -> int:
        """A point to come back to with :meth:`drop_if_alone`."""
        return len(self.pieces)

    def drop_if_alone(self, mark: int) -> None:
        """Take back the one piece added since ``mark`` (a heading that no text
        followed)."""
        if len(self.pieces) == mark + 1:
            self.chars -= len(self.pieces.pop()) + 1

    def note(self, problem: str) -> None:
        """Record something that was skipped (a member too large, say)."""
        if len(self.problems) < 50:
            self.problems.append(problem)

    def text(self) -> str:
        return "\n".join(self.pieces)
