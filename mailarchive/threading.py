"""Conversation threading of archived messages (Jamie Zawinski's algorithm).

See https://www.jwz.org/doc/threading.html. The input is a flat list of
message summaries; the output is a forest of :class:`ThreadNode` in which every
input message appears exactly once, whatever the headers claim: reference
cycles, messages that name themselves as their own ancestor, duplicate or
missing Message-IDs and references to messages the archive never received are
all tolerated.

Differences from the published algorithm, and why:

* Messages are linked in a canonical order (date, Message-ID, key) rather than
  in the order they were delivered, so the thread shape does not depend on
  which copy of a conversation arrived first.
* Two messages with the same Message-ID are both kept; the one with the lower
  key owns the id, the others get a private id that nothing can reference.
* A message without References and In-Reply-To, or whose own last reference
  would create a loop, keeps the parent that other messages' references
  implied instead of becoming a root.
* Subject grouping (step 5) only moves replies and forwards (or placeholders
  for missing messages) under another root; two unrelated messages that merely
  share a subject stay separate threads.

Everything is iterative, so a chain of tens of thousands of replies does not
hit the recursion limit, and the cost is O(n log n) for n messages apart from
loop checks, which walk up the ancestors of one container.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "ThreadInput",
    "ThreadNode",
    "flatten",
    "normalize_subject",
    "thread_messages",
]


@dataclass(frozen=True)
class ThreadInput:
    """What threading needs to know about one archived message."""

    key: int
    message_id: str | None
    references: tuple[str, ...]
    in_reply_to: str | None
    subject: str
    date: datetime | None


@dataclass(slots=True)
class ThreadNode:
    """One position in a thread.

    ``key`` is None for a placeholder: a message that others refer to but the
    archive does not hold, or a container grouping replies to a common subject.
    """

    key: int | None
    message_id: str | None
    children: list[ThreadNode] = field(default_factory=list)

    @property
    def is_dummy(self) -> bool:
        """True for a placeholder that stands for no archived message."""
        return self.key is None


# Reply and forward markers of common mail clients, in several languages,
# optionally counted ("Re[2]:", "Re(2):", "Re^2:"), with ASCII or full-width
# colon; or a mailing-list tag in square brackets. Whitespace is matched
# possessively: two runs of it on either side of an optional count would
# otherwise be retried against each other, in time quadratic in their length.
_PREFIX_RE = re.compile(
    r"""
    \s*+
    (?:
        (?P<marker>
            re|fwd?|aw|wg|sv|vs|antw|antwort|r|rif|tr|ref|odp|res|enc|rv|ynt
            |отв|ответ|回复|回覆|答复|转发|轉寄|返信|転送
        )
        \s*+(?:\[\d++\]|\(\d++\)|\^\d++)?\s*+[:：]
      |
        \[[^\[\]]*+\]
    )
    \s*+
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _split_subject(subject: str) -> tuple[str, bool]:
    """Return the normalized subject and whether a reply/forward marker was found.

    Markers are matched from a moving position rather than by cutting them
    off one by one, so ``Re: `` fifty thousand times costs linear time.
    """
    text = subject or ""
    is_reply = False
    position = 0
    while True:
        match = _PREFIX_RE.match(text, position)
        if match is None or match.end() == position:
            break
        if match.group("marker") is not None:
            is_reply = True
        position = match.end()
    return " ".join(text[position:].split()).casefold(), is_reply


def normalize_subject(subject: str) -> str:
    """Return ``subject`` without reply/forward markers and list tags, case-folded.

    Strips any sequence of ``Re:``, ``Fwd:``, ``AW:``, ``WG:``, ``SV:``,
    ``VS:``, ``Antw:``, ``RE[2]:``, ``返信:``, ``転送:`` and similar markers
    and ``[list]`` tags, collapses whitespace and case-folds. Pure function.
    """
    return _split_subject(subject)[0]


def _clean_id(value: str | None) -> str | None:
    """Return a message id without surrounding whitespace and angle brackets."""
    if value is None:
        return None
    cleaned = value.strip().strip("<>").strip()
    return cleaned or None


def _timestamp(date: datetime | None) -> float:
    if date is None:
        return 0.0
    if date.tzinfo is None:
        # Naive dates come from headers without a zone; UTC is the usual reading.
        date = date.replace(tzinfo=UTC)
    return date.timestamp()


_SortKey = tuple[bool, float, str, int]


def _sort_key(item: ThreadInput, message_id: str | None) -> _SortKey:
    """Order by date (undated last), then Message-ID, then key, for stable output."""
    return (item.date is None, _timestamp(item.date), message_id or "", item.key)


class _Container:
    """Mutable working node of the algorithm; ``item`` is None for a placeholder."""

    __slots__ = (
        "item",
        "message_id",
        "sort_key",
        "parent",
        "child_count",
        "children",
        "gone",
    )

    def __init__(
        self,
        message_id: str | None,
        item: ThreadInput | None = None,
        sort_key: _SortKey | None = None,
    ) -> None:
        self.item = item
        self.message_id = message_id
        self.sort_key = sort_key
        self.parent: _Container | None = None
        self.child_count = 0
        # Most messages have no replies; their list is created on first use.
        self.children: list[_Container] | None = None
        self.gone = False


def _is_ancestor(candidate: _Container, node: _Container) -> bool:
    """True when ``candidate`` is ``node`` or one of its ancestors."""
    if candidate is node:
        return True
    if candidate.child_count == 0:
        return False
    current = node.parent
    while current is not None:
        if current is candidate:
            return True
        current = current.parent
    return False


def _attach(parent: _Container, child: _Container) -> None:
    child.parent = parent
    parent.child_count += 1


def _detach(child: _Container) -> None:
    parent = child.parent
    if parent is not None:
        parent.child_count -= 1
        child.parent = None


def _references(item: ThreadInput, message_id: str | None) -> list[str]:
    """Return the ancestry the message claims, oldest first, without itself."""
    references = [ref for ref in map(_clean_id, item.references) if ref]
    if not references:
        in_reply_to = _clean_id(item.in_reply_to)
        references = [in_reply_to] if in_reply_to else []
    if message_id is not None and message_id in references:
        references = [ref for ref in references if ref != message_id]
    return references


def _link_references(items: Sequence[ThreadInput]) -> list[_Container]:
    """JWZ step 1: build containers with parent links; return all of them."""
    prepared: list[tuple[_SortKey, str | None, ThreadInput]] = []
    owner: dict[str, int] = {}
    for item in items:
        message_id = _clean_id(item.message_id)
        prepared.append((_sort_key(item, message_id), message_id, item))
        if message_id is not None:
            known = owner.get(message_id)
            if known is None or item.key < known:
                owner[message_id] = item.key
    prepared.sort(key=lambda entry: entry[0])

    table: dict[str, _Container] = {}
    containers: list[_Container] = []

    def lookup(message_id: str) -> _Container:
        container = table.get(message_id)
        if container is None:
            container = _Container(message_id)
            table[message_id] = container
            containers.append(container)
        return container

    for sort_key, message_id, item in prepared:
        if message_id is not None and owner[message_id] == item.key:
            container = lookup(message_id)
            container.item = item
            container.sort_key = sort_key
        else:
            # Private container: a missing or duplicate id can't be referenced.
            container = _Container(message_id, item, sort_key)
            containers.append(container)

        previous: _Container | None = None
        for ref in _references(item, message_id):
            current = lookup(ref)
            if (
                previous is not None
                and current.parent is None
                and not _is_ancestor(current, previous)
            ):
                _attach(previous, current)
            previous = current

        # No references means the message doesn't know its parent, so a parent
        # implied by other messages' references stays; so does one that the
        # message's own (looping) claim would replace.
        if (
            previous is not None
            and previous is not container.parent
            and not _is_ancestor(container, previous)
        ):
            _detach(container)
            _attach(previous, container)
    return containers


def _build_children(containers: list[_Container]) -> list[_Container]:
    """Turn parent links into child lists; return the roots."""
    roots: list[_Container] = []
    for container in containers:
        parent = container.parent
        if parent is None:
            roots.append(container)
        elif parent.children is None:
            parent.children = [container]
        else:
            parent.children.append(container)
    return roots


def _preorder(roots: list[_Container]) -> list[_Container]:
    order: list[_Container] = []
    stack = list(roots)
    while stack:
        container = stack.pop()
        order.append(container)
        if container.children:
            stack.extend(container.children)
    return order


def _prune(roots: list[_Container]) -> list[_Container]:
    """JWZ step 4: drop empty placeholders and promote their children."""
    for container in reversed(_preorder(roots)):
        children = container.children
        if not children or all(child.item is not None for child in children):
            continue
        kept: list[_Container] = []
        for child in children:
            if child.item is None:
                kept.extend(child.children or ())
            else:
                kept.append(child)
        container.children = kept

    pruned: list[_Container] = []
    for root in roots:
        if root.item is None:
            if not root.children:
                continue
            if len(root.children) == 1:
                pruned.append(root.children[0])
                continue
        pruned.append(root)
    return pruned


def _earliest_item(container: _Container) -> _Container:
    """The earliest real message among a placeholder's (real) children."""
    return min(
        (child for child in container.children or () if child.item is not None),
        key=lambda child: child.sort_key or (),
    )


def _group_by_subject(roots: list[_Container]) -> list[_Container]:
    """JWZ step 5: move replies whose thread start is missing under a same-subject root.

    Placeholders take the subject of their earliest child and count as
    replies. The preferred target for a subject is a real non-reply message,
    then a placeholder, then the earliest reply.
    """
    info: dict[int, tuple[str, bool, tuple[int, _SortKey]]] = {}
    for root in roots:
        if root.item is not None and root.sort_key is not None:
            subject, is_reply = _split_subject(root.item.subject)
            rank = (2 if is_reply else 0, root.sort_key)
        else:
            first = _earliest_item(root)
            first_subject = first.item.subject if first.item is not None else ""
            subject, is_reply = _split_subject(first_subject)[0], True
            rank = (1, first.sort_key or (False, 0.0, "", 0))
        info[id(root)] = (subject, is_reply, rank)

    best: dict[str, _Container] = {}
    for root in roots:
        subject, _, rank = info[id(root)]
        if not subject:
            continue
        current = best.get(subject)
        if current is None or rank < info[id(current)][2]:
            best[subject] = root

    created: list[_Container] = []
    for root in sorted(roots, key=lambda r: info[id(r)][2][1]):
        subject, is_reply, _ = info[id(root)]
        target = best.get(subject) if subject else None
        if root.gone or target is None or target is root or not is_reply:
            continue
        root.gone = True
        if target.children is None:
            target.children = []
        if root.item is None:
            target.children.extend(root.children or ())
        elif target.item is None or not info[id(target)][1]:
            target.children.append(root)
        else:
            # Two replies without their original: hold both under a placeholder.
            holder = _Container(None)
            holder.children = [target, root]
            target.gone = True
            created.append(holder)
            best[subject] = holder
            info[id(holder)] = (subject, True, (1, info[id(target)][2][1]))
    return [root for root in [*roots, *created] if not root.gone]


def _to_nodes(roots: list[_Container]) -> list[ThreadNode]:
    """Step 6: sort by date and convert to :class:`ThreadNode`, iteratively."""
    nodes: dict[int, ThreadNode] = {}
    for container in reversed(_preorder(roots)):
        children = container.children or []
        if len(children) > 1:
            children.sort(key=lambda child: child.sort_key or ())
        if container.item is None:
            # Placeholders sort where their earliest message does.
            container.sort_key = children[0].sort_key
        nodes[id(container)] = ThreadNode(
            container.item.key if container.item is not None else None,
            container.message_id,
            [nodes.pop(id(child)) for child in children],
        )
    return [nodes[id(root)] for root in sorted(roots, key=lambda r: r.sort_key or ())]


def thread_messages(
    items: Iterable[ThreadInput], *, group_by_subject: bool = True
) -> list[ThreadNode]:
    """Arrange ``items`` into threads and return the thread roots.

    Every input key appears exactly once in the result; placeholders
    (``key=None``) appear only as roots holding at least two messages.
    Children and roots are sorted by date, undated messages last. Pure
    function: the input is not modified and the call can be repeated freely.
    Raises ValueError when two items share a key.
    """
    materialized = list(items)
    if len({item.key for item in materialized}) != len(materialized):
        raise ValueError("thread_messages() needs a distinct key for every item")
    with _collector_paused():
        containers = _link_references(materialized)
        try:
            roots = _prune(_build_children(containers))
            if group_by_subject:
                roots = _group_by_subject(roots)
            return _to_nodes(roots)
        finally:
            # Parent and child links form cycles; cutting them lets reference
            # counting free the working containers without the cycle collector.
            for container in containers:
                container.parent = None
                container.children = None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector while the working containers grow.

    Threading allocates one long-lived object per message and no garbage, so
    the collections triggered by that growth would only rescan the heap, and
    they more than double the run time for large archives. The collector is
    switched back on afterwards unless it was already off when the call began.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def flatten(
    roots: Iterable[ThreadNode], *, include_dummies: bool = True
) -> list[tuple[int, ThreadNode]]:
    """Return ``(depth, node)`` pairs in pre-order, ready to render as an indented list.

    With ``include_dummies=False`` placeholders are left out and their
    children take their depth. Pure function.
    """
    result: list[tuple[int, ThreadNode]] = []
    stack = [(0, root) for root in reversed(list(roots))]
    while stack:
        depth, node = stack.pop()
        child_depth = depth + 1
        if node.key is not None or include_dummies:
            result.append((depth, node))
        else:
            child_depth = depth
        stack.extend((child_depth, child) for child in reversed(node.children))
    return result
