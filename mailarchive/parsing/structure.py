"""The MIME tree of a message, from the email package's parser, within limits.

The email package's parser reads every part of a message however many there
are, and its header and parameter code is quadratic in places (parameters
repeated thousands of times, RFC 2231 continuations, quoted semicolons). The
parse here stops at ``MAX_PARTS`` parts or ``MAX_DEPTH`` levels (the tree
read so far is kept and the message is marked ``too-many-parts`` or
``too-deep``), and the parser only ever sees header values of at most
``MAX_HEADER_BYTES`` (``MAX_MIME_HEADER_BYTES`` for Content-*) with at most
``MAX_PARAMETERS`` parameters (marked ``truncated-headers``); the parser keeps
8-bit bytes as one character each, so characters here are bytes. The raw
message is stored apart and stays whole; these limits decide only what is
read from it.
"""

from __future__ import annotations

from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import Compat32, EmailPolicy

from .headers import HeaderContext
from .walk import MAX_DEPTH, MAX_PARTS

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_MIME_HEADER_BYTES",
    "MAX_PARAMETERS",
    "bounded_header_value",
    "parse_structure",
]

MAX_HEADER_BYTES = 64 * 1024
# Content-* values are parsed by the email package, in time that grows faster
# than their length for quoted strings and comments; nothing in them needs
# more than this.
MAX_MIME_HEADER_BYTES = 8 * 1024
MAX_PARAMETERS = 64

# Headers whose value the email package splits into parameters at ";".
_PARAMETER_HEADERS = frozenset({"content-type", "content-disposition"})
# Threading needs both ends of References: the root and the nearest parents.
_HEAD_AND_TAIL_HEADERS = frozenset({"references"})


class _Stop(Exception):
    """Raised inside the parser to end the parse at a limit."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def bounded_header_value(name: str, value: str) -> tuple[str, bool]:
    """``value`` cut to the limits, and whether it had to be cut. Pure."""
    key = name.strip().lower()
    limit = MAX_MIME_HEADER_BYTES if key.startswith("content-") else MAX_HEADER_BYTES
    cut = False
    if len(value) > limit:
        cut = True
        if key in _HEAD_AND_TAIL_HEADERS:
            half = limit // 2
            value = value[:half] + " " + value[-half:]
        else:
            value = value[:limit]
    if key in _PARAMETER_HEADERS and value.count(";") > MAX_PARAMETERS:
        # Every ";" counts, quoted or not: the parameter parser rescans the
        # value for quotes at each one.
        end = -1
        for _ in range(MAX_PARAMETERS + 1):
            end = value.index(";", end + 1)
        value = value[:end]
        cut = True
    return value, cut


class _BoundedPolicy(EmailPolicy):
    """The modern policy, with header values cut to the limits as read.

    Each header object is parsed once per message: the parser asks for a
    multipart's Content-Type again for every one of its parts.
    """

    problems: list[str] | None = None
    parsed: dict[tuple[str, str], object] | None = None

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        value, cut = bounded_header_value(name, value)
        if cut and self.problems is not None:
            self.problems.append("truncated-headers")
        return name, value

    def header_fetch_parse(self, name: str, value: str) -> object:
        if self.parsed is None or not isinstance(value, str) or hasattr(value, "name"):
            return super().header_fetch_parse(name, value)
        key = (name, value)
        found = self.parsed.get(key)
        if found is None:
            found = self.parsed[key] = super().header_fetch_parse(name, value)
        return found


class _BoundedCompat32(Compat32):
    """``compat32``, with header values cut to the limits as read."""

    problems: list[str] | None = None

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        value, cut = bounded_header_value(name, value)
        if cut and self.problems is not None:
            self.problems.append("truncated-headers")
        return name, value


def _bounded_factory(message_class: type[Message]) -> type[Message]:
    class Bounded(message_class):  # type: ignore[valid-type,misc]
        """A message that refuses children past the part and depth limits."""

        _depth = 0
        _counter: list[int] | None = None

        def attach(self, payload: Message) -> None:
            counter = self._counter
            if counter is None:  # the root: one part so far, itself
                counter = self._counter = [1]
            counter[0] += 1
            if counter[0] > MAX_PARTS:
                raise _Stop("too-many-parts")
            if self._depth + 1 > MAX_DEPTH:
                raise _Stop("too-deep")
            payload._depth = self._depth + 1  # type: ignore[attr-defined]
            payload._counter = counter  # type: ignore[attr-defined]
            super().attach(payload)

    Bounded.__name__ = Bounded.__qualname__ = f"Bounded{message_class.__name__}"
    return Bounded


_MODERN = _BoundedPolicy()
_COMPAT32 = _BoundedCompat32()
_BOUNDED_EMAIL_MESSAGE = _bounded_factory(EmailMessage)
_BOUNDED_MESSAGE = _bounded_factory(Message)


def _bounded_parse(raw: bytes, modern: bool, problems: list[str]) -> Message:
    """Parse ``raw``; at a limit, the tree read so far, with the problem noted."""
    policy = (
        _MODERN.clone(problems=problems, parsed={})
        if modern
        else _COMPAT32.clone(problems=problems)
    )
    message_class = _BOUNDED_EMAIL_MESSAGE if modern else _BOUNDED_MESSAGE
    created: list[Message] = []

    def factory(policy: EmailPolicy | Compat32 = policy) -> Message:
        message = message_class(policy=policy)
        created.append(message)
        return message

    parser = BytesFeedParser(_factory=factory, policy=policy)
    # The parser makes one message to learn how to call the factory.
    created.clear()
    try:
        parser.feed(raw)
        return parser.close()
    except _Stop as stop:
        problems.append(stop.problem)
        if not created:
            raise
        return created[0]


def parse_structure(raw: bytes, context: HeaderContext) -> tuple[Message | None, bool]:
    """The parsed message and whether its body can be walked.

    Tries the modern policy, then ``compat32`` when that raises, then a parse
    of the headers alone. Problems go to ``context``. Never raises.
    """
    for modern in (True, False):
        problems: list[str] = []
        try:
            message = _bounded_parse(raw, modern, problems)
        except RecursionError:
            # Nesting is bounded above, so this is a header the modern
            # policy's recursive parser cannot read (comments in comments).
            context.flag("defects")
            continue
        except Exception:  # next policy, then headers only
            continue
        for problem in problems:
            context.flag(problem)
        return message, True
    for base in (_MODERN, _COMPAT32):
        problems = []
        try:
            message = BytesParser(policy=base.clone(problems=problems)).parsebytes(
                raw, headersonly=True
            )
        except Exception:  # the raw bytes are archived anyway
            continue
        for problem in problems:
            context.flag(problem)
        return message, False
    return None, False
