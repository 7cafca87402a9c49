"""Threads: which conversation a message joins, and keeping counts right."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Max, Min

from ..models import Message, MessageReference, Thread
from ..threading import normalize_subject

# A subject-only match joins an existing thread only when that thread was
# active this recently: "Re: Hello" a year later is a new conversation.
SUBJECT_THREAD_WINDOW = timedelta(days=60)
REPLY_PREFIXES = ("re:", "re[", "aw:", "sv:", "vs:", "antw:", "返信:", "答复:", "回复:")


def _is_reply_subject(subject: str) -> bool:
    return subject.strip().lower().startswith(REPLY_PREFIXES)


@dataclass(frozen=True)
class ThreadJoin:
    """A message about to be stored that joins a thread (see :func:`threads_plan`)."""

    pk: int
    message_id: str
    refs: list[str]
    subject: str
    date: datetime


@dataclass
class _ThreadState:
    normalized: str
    first_date: datetime | None
    last_date: datetime | None
    subject: str = ""


# A thread of the plan: ("db", pk) for one that exists, ("new", n) for the
# n-th that the plan starts. Existing threads sort first, so that a merge
# keeps the oldest thread, as ids do.
_Key = tuple[str, int]


@dataclass
class ThreadPlan:
    """Which thread each message of a batch joins, and what that changes.

    Made by :func:`threads_plan`, carried out by :func:`threads_record` once
    the messages' rows are written.
    """

    space_id: int
    joined: dict[int, _Key] = field(default_factory=dict)
    conflicts: dict[int, bool] = field(default_factory=dict)
    new: dict[int, _ThreadState] = field(default_factory=dict)
    alias: dict[_Key, _Key] = field(default_factory=dict)
    counted: dict[_Key, list[tuple[datetime, str]]] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)

    def resolve(self, key: _Key) -> _Key:
        while key in self.alias:
            key = self.alias[key]
        return key

    def thread_of_key(self, key: _Key) -> int:
        """The id of thread ``key`` ended up as (after :meth:`create`)."""
        kind, number = self.resolve(key)
        return number if kind == "db" else self.created[number]

    def thread_of(self, pk: int) -> int:
        """The id of the thread message ``pk`` joins (after :meth:`create`)."""
        return self.thread_of_key(self.joined[pk])

    def create(self) -> None:
        """Insert the threads the plan starts (those that were not merged
        into another), in one statement."""
        started = sorted(
            {n for kind, n in map(self.resolve, self.joined.values()) if kind == "new"}
        )
        rows = Thread.objects.bulk_create(
            [
                Thread(
                    space_id=self.space_id,
                    subject=self.new[n].subject,
                    normalized_subject=self.new[n].normalized,
                    message_count=0,
                )
                for n in started
            ]
        )
        self.created = {n: row.pk for n, row in zip(started, rows, strict=True)}


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def threads_plan(*, space_id: int, joins: Sequence[ThreadJoin]) -> ThreadPlan:
    """Choose the thread of each message in ``joins``, as if they were stored
    one after the other in that order.

    A message joins the threads of the messages it refers to, of those that
    refer to it (replies that arrived first) and of siblings that share a
    reference with it (their parent never arrived), earlier messages of
    ``joins`` included; when those are several threads, they are merged into
    the oldest. With no link at all, a reply-like subject joins a recent
    thread of the same subject; otherwise a new thread starts. A message whose
    Message-ID another message of the space already has is a conflict
    (flagged; not a reason to join that thread).

    Reads with four queries whatever the batch's size and writes nothing (see
    :meth:`ThreadPlan.create` and :func:`threads_record`). Runs inside the
    caller's transaction.
    """
    plan = ThreadPlan(space_id=space_id)
    wanted = sorted(
        {ref for join in joins for ref in [*join.refs, join.message_id] if ref}
    )
    # Who has these Message-IDs, and who refers to them. Two indexed lookups,
    # not one OR, which makes PostgreSQL read every message of the space.
    by_id: dict[str, list[_Key | None]] = {}
    refers: dict[str, list[tuple[str, _Key | None]]] = {}
    for chunk in _chunks(wanted):
        for message_id, thread_id in Message.objects.filter(
            space_id=space_id, message_id__in=chunk
        ).values_list("message_id", "thread_id"):
            by_id.setdefault(message_id, []).append(_db(thread_id))
        for ref_id, message_id, thread_id in MessageReference.objects.filter(
            space_id=space_id, ref_id__in=chunk
        ).values_list("ref_id", "message__message_id", "message__thread_id"):
            refers.setdefault(ref_id, []).append((message_id, _db(thread_id)))
    states: dict[_Key, _ThreadState] = {}
    linked_ids = {
        key[1]
        for keys in [*by_id.values(), *([k for _m, k in v] for v in refers.values())]
        for key in keys
        if key is not None
    }
    subjects = {
        normalized
        for join in joins
        if not join.refs
        and _is_reply_subject(join.subject)
        and (normalized := normalize_subject(join.subject)[:255])
    }
    columns = ("pk", "normalized_subject", "first_date", "last_date")
    known = Thread.objects.filter(
        space_id=space_id, pk__in=sorted(linked_ids)
    ).values_list(*columns)
    if subjects:
        earliest = min(join.date for join in joins) - SUBJECT_THREAD_WINDOW
        known = known.union(
            Thread.objects.filter(
                space_id=space_id,
                normalized_subject__in=sorted(subjects),
                last_date__gte=earliest,
            ).values_list(*columns)
        )
    for pk, normalized, first, last in known:
        states[("db", pk)] = _ThreadState(normalized, first, last)
    for join in joins:
        _plan_one(plan, join, by_id, refers, states)
    return plan


def _db(thread_id: int | None) -> _Key | None:
    return None if thread_id is None else ("db", thread_id)


def _plan_one(
    plan: ThreadPlan,
    join: ThreadJoin,
    by_id: dict[str, list[_Key | None]],
    refers: dict[str, list[tuple[str, _Key | None]]],
    states: dict[_Key, _ThreadState],
) -> None:
    own = join.message_id
    linked: set[_Key] = set()
    conflict = False
    for wanted in [*join.refs, own] if own else join.refs:
        rows = [(wanted, key) for key in by_id.get(wanted, [])]
        for message_id, key in [*rows, *refers.get(wanted, [])]:
            if own and message_id == own:
                conflict = True
            elif key is not None:
                linked.add(plan.resolve(key))
    normalized = normalize_subject(join.subject)[:255]
    if not linked and not join.refs and normalized and _is_reply_subject(join.subject):
        since = join.date - SUBJECT_THREAD_WINDOW
        recent = [
            (state.last_date, key)
            for key, state in states.items()
            if key not in plan.alias
            and state.normalized == normalized
            and state.last_date is not None
            and state.last_date >= since
        ]
        if recent:
            linked.add(max(recent)[1])
    if not linked:
        key: _Key = ("new", len(plan.new))
        plan.new[key[1]] = _ThreadState(
            normalized, None, None, subject=join.subject[:2000]
        )
        states[key] = plan.new[key[1]]
    else:
        ordered = sorted(linked)
        key = ordered[0]
        for merged in ordered[1:]:
            plan.alias[merged] = key
            _state_merge(states, key, merged)
    plan.joined[join.pk] = key
    plan.conflicts[join.pk] = conflict
    plan.counted.setdefault(key, []).append((join.date, join.subject[:2000]))
    _state_count(states, key, join.date, join.subject[:2000])
    if own:
        by_id.setdefault(own, []).append(key)
    for ref in join.refs:
        refers.setdefault(ref, []).append((own, key))


def _state_merge(states: dict[_Key, _ThreadState], into: _Key, merged: _Key) -> None:
    state, other = states.get(into), states.pop(merged, None)
    if state is None or other is None:
        return
    if other.first_date is not None and (
        state.first_date is None or other.first_date < state.first_date
    ):
        state.first_date, state.normalized = other.first_date, other.normalized
    if other.last_date is not None and (
        state.last_date is None or other.last_date > state.last_date
    ):
        state.last_date = other.last_date


def _state_count(
    states: dict[_Key, _ThreadState], key: _Key, date: datetime, subject: str
) -> None:
    state = states.get(key)
    if state is None:
        return
    if state.first_date is None or state.first_date > date:
        state.first_date, state.normalized = date, normalize_subject(subject)[:255]
    if state.last_date is None or state.last_date < date:
        state.last_date = date


_THREAD_COUNT_MORE = """
    UPDATE mailarchive_thread SET
        message_count = message_count + %s,
        subject = CASE WHEN first_date IS NULL OR first_date > %s
            THEN %s ELSE subject END,
        normalized_subject = CASE WHEN first_date IS NULL OR first_date > %s
            THEN %s ELSE normalized_subject END,
        first_date = CASE WHEN first_date IS NULL OR first_date > %s
            THEN %s ELSE first_date END,
        last_date = CASE WHEN last_date IS NULL OR last_date < %s
            THEN %s ELSE last_date END
    WHERE id = %s
"""


def threads_record(plan: ThreadPlan, *, refresh: Iterable[int] = ()) -> None:
    """Carry out ``plan`` once its messages' rows are written: merge threads,
    count the messages in their threads, and recount ``refresh`` (threads
    whose messages changed otherwise).

    Counting is one statement per thread in plain SQL, sent together: it runs
    for every archived message, and building it through the ORM's conditional
    expressions cost more than the database took to run it.
    """
    recount = set(refresh)
    merged: dict[int, list[int]] = {}
    for alias in plan.alias:
        kind, number = alias
        if kind == "db":
            merged.setdefault(plan.thread_of_key(alias), []).append(number)
    if merged:
        # Lock in id order so that concurrent merges cannot deadlock.
        involved = sorted({*merged, *(pk for pks in merged.values() for pk in pks)})
        list(Thread.objects.select_for_update().filter(pk__in=involved).order_by("pk"))
        for into, pks in sorted(merged.items()):
            Message.objects.filter(thread_id__in=pks).update(thread_id=into)
            Thread.objects.filter(pk__in=pks).delete()
            recount.add(into)
    rows = []
    for key, counted in plan.counted.items():
        if key in plan.alias:
            # Merged away later in the batch: its messages count where they
            # ended up, which is recounted.
            recount.add(plan.thread_of_key(key))
            continue
        thread = plan.thread_of_key(key)
        if thread in recount:
            continue
        first, subject = min(counted, key=lambda dated: dated[0])
        last = max(date for date, _subject in counted)
        adapt = connection.ops.adapt_datetimefield_value
        first_value, last_value = adapt(first), adapt(last)
        normalized = normalize_subject(subject)[:255]
        rows.append(
            [
                len(counted),
                first_value,
                subject,
                first_value,
                normalized,
                first_value,
                first_value,
                last_value,
                last_value,
                thread,
            ]
        )
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(_THREAD_COUNT_MORE, rows)
    for thread in sorted(recount):
        thread_refresh(thread)


def thread_refresh(thread_pk: int) -> None:
    """Recount a thread's messages and dates (trashed messages do not count).

    Safe to re-run. The thread's subject is that of its earliest message.
    """
    live = Message.objects.filter(thread_id=thread_pk, deleted_at__isnull=True)
    stats = live.aggregate(n=Count("pk"), first=Min("date"), last=Max("date"))
    first = live.order_by("date", "pk").values_list("subject", flat=True).first()
    updates = {
        "message_count": stats["n"],
        "first_date": stats["first"],
        "last_date": stats["last"],
    }
    if first is not None:
        updates["subject"] = first[:2000]
        updates["normalized_subject"] = normalize_subject(first)[:255]
    Thread.objects.filter(pk=thread_pk).update(**updates)
