"""Reads of the archive: mail lists, messages, threads, neighbours, the trash.

Every list is paged by keyset (a cursor holding the sort values of the row at
the page's edge), so the thousandth page costs what the first one does, and
every selector runs a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Value
from django.db.models.functions import (
    Coalesce,
    Greatest,
    Least,
    Lower,
    Substr,
    TruncMonth,
)
from django.utils import timezone

from spaces.models import Space

from .models import (
    Attachment,
    AttachmentText,
    FeedToken,
    Message,
    ReadingPreference,
    Thread,
)
from .threading import ThreadInput, ThreadNode, flatten, thread_messages

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# Above this many messages the message page links to the thread instead of
# drawing its tree, so that one enormous thread cannot make every page slow.
THREAD_TREE_LIMIT = 300
LIST_FIELDS = (
    "pk",
    "space_id",
    "thread_id",
    "subject",
    "from_name",
    "from_address",
    "date",
    "has_attachments",
    "parseable",
    "index_state",
    "problems",
)


class BadCursor(ValueError):
    """A page cursor that is not one this module wrote."""


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    SENDER = "sender"
    SUBJECT = "subject"


@dataclass(frozen=True)
class SortKey:
    """One column of an ordering: a queryset name and its direction."""

    name: str
    descending: bool
    kind: str  # "datetime", "int" or "str": how its cursor value is decoded


SORT_KEYS: dict[Sort, tuple[SortKey, ...]] = {
    Sort.NEWEST: (SortKey("date", True, "datetime"), SortKey("pk", True, "int")),
    Sort.OLDEST: (SortKey("date", False, "datetime"), SortKey("pk", False, "int")),
    Sort.SENDER: (
        SortKey("sort_sender", False, "str"),
        SortKey("date", True, "datetime"),
        SortKey("pk", True, "int"),
    ),
    Sort.SUBJECT: (
        SortKey("sort_subject", False, "str"),
        SortKey("date", True, "datetime"),
        SortKey("pk", True, "int"),
    ),
}
# Attachments found by a search: their messages newest first, then in the
# order they are listed in the message (see search.attachments_search).
ATTACHMENT_KEYS: tuple[SortKey, ...] = (
    SortKey("message_date", True, "datetime"),
    SortKey("message_id", True, "int"),
    SortKey("position", False, "int"),
)
# The same expressions as the indexes of migration 0003, so that they are used.
SORT_ANNOTATIONS = {
    "sort_sender": Lower("from_address"),
    "sort_subject": Lower(Substr("subject", 1, 200)),
}


def cursor_encode(values: Sequence[Any]) -> str:
    """An opaque, URL-safe cursor for a row's sort values."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    data = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cursor_decode(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """The sort values a cursor holds; raises BadCursor for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError, RecursionError) as exc:
        # RecursionError: a few hundred nested brackets fit in a cursor.
        raise BadCursor(cursor) from exc
    if not isinstance(plain, list) or len(plain) != len(keys):
        raise BadCursor(cursor)
    values: list[Any] = []
    for key, value in zip(keys, plain, strict=True):
        if key.kind == "datetime":
            try:
                parsed = datetime.fromisoformat(value)
            except (TypeError, ValueError) as exc:
                raise BadCursor(cursor) from exc
            if timezone.is_naive(parsed):
                raise BadCursor(cursor)
            values.append(parsed)
        elif _fits(key.kind, value):
            values.append(value)
        else:
            raise BadCursor(cursor)
    return values


def _fits(kind: str, value: object) -> bool:
    """Whether a cursor's ``int`` or ``str`` value is one the database compares."""
    if kind == "int":
        return type(value) is int and abs(value) < 2**63
    return kind == "str" and isinstance(value, str) and _storable(value)


def _storable(text: str) -> bool:
    """Whether a database can compare ``text``: no NUL, no lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _beyond(keys: Sequence[SortKey], values: Sequence[Any], forward: bool) -> Q:
    """Rows strictly after (``forward``) or before the row holding ``values``.

    Written as a range bound on the first key plus the lexicographic comparison,
    so that the database starts its index scan at the cursor instead of at the
    first row.
    """
    first = keys[0]
    first_down = first.descending == forward
    condition = Q(**{f"{first.name}__{'lte' if first_down else 'gte'}": values[0]})
    alternatives = Q()
    for i, key in enumerate(keys):
        down = key.descending == forward
        step = Q(**{f"{key.name}__{'lt' if down else 'gt'}": values[i]})
        for earlier, value in zip(keys[:i], values[:i], strict=True):
            step &= Q(**{earlier.name: value})
        alternatives |= step
    return condition & alternatives


def _ordering(keys: Sequence[SortKey], forward: bool) -> list[Any]:
    order = []
    for key in keys:
        down = key.descending == forward
        order.append(F(key.name).desc() if down else F(key.name).asc())
    return order


@dataclass
class KeysetPage:
    """One page of rows and the cursors of its neighbours (None: no such page)."""

    rows: list[Any]
    next_cursor: str | None
    prev_cursor: str | None
    is_last: bool


def keyset_page(
    queryset: QuerySet,
    keys: Sequence[SortKey],
    *,
    size: int,
    after: str | None = None,
    before: str | None = None,
    last: bool = False,
) -> KeysetPage:
    """A page of ``queryset`` ordered by ``keys``, in one query.

    ``after``: the page following that cursor; ``before``: the page preceding
    it; ``last``: the final page; none of them: the first page. Raises BadCursor
    for a cursor that does not fit ``keys``.
    """
    forward = before is None and not last
    qs = queryset
    cursor = after if forward else before
    if cursor:
        qs = qs.filter(_beyond(keys, cursor_decode(cursor, keys), forward))
    rows = list(qs.order_by(*_ordering(keys, forward))[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if not forward:
        rows.reverse()

    def edge(row: Any) -> str:
        return cursor_encode([getattr(row, key.name) for key in keys])

    if not rows:
        return KeysetPage(rows=[], next_cursor=None, prev_cursor=None, is_last=True)
    if forward:
        has_next, has_prev = more, bool(after)
    else:
        has_next, has_prev = bool(before), more
    return KeysetPage(
        rows=rows,
        next_cursor=edge(rows[-1]) if has_next else None,
        prev_cursor=edge(rows[0]) if has_prev else None,
        is_last=not has_next,
    )


def messages_live(space: Space) -> QuerySet[Message]:
    """The space's messages that are not in the trash."""
    return Message.objects.filter(space=space, deleted_at__isnull=True)


def messages_of_spaces(spaces: QuerySet[Space], key: str = "") -> QuerySet[Message]:
    """The messages of ``spaces`` (only of the one called ``key`` among them,
    if given), trashed ones included: what a search across spaces looks in.

    Builds a query only.
    """
    qs = Message.objects.filter(space__in=spaces)
    return qs.filter(space__key=key) if key else qs


@dataclass(frozen=True)
class MailFilter:
    """What the mail list shows: a month and a date range (both in the viewer's
    time zone, the range's days inclusive), a sender's address, only messages
    with attachments, one thread."""

    month: date | None = None
    sender: str = ""
    date_from: date | None = None
    date_to: date | None = None
    has_attachments: bool = False
    thread_id: int | None = None


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in the active time zone."""
    return datetime(
        day.year, day.month, day.day, tzinfo=timezone.get_current_timezone()
    )


def month_bounds(month: date) -> tuple[datetime | None, datetime | None]:
    """The first instant of ``month`` and of the next one, in the active zone.

    The calendar's first and last months have no outer bound: a date that a
    far time zone moves past either end is shown, and counted, in them.
    """
    zone = timezone.get_current_timezone()
    start = datetime(month.year, month.month, 1, tzinfo=zone)
    first = None if (month.year, month.month) == (MINYEAR, 1) else start
    if month.month < 12:
        return first, start.replace(month=month.month + 1)
    if month.year < MAXYEAR:
        return first, start.replace(year=month.year + 1, month=1)
    return first, None


def _filtered(qs: QuerySet[Message], mail_filter: MailFilter) -> QuerySet[Message]:
    if mail_filter.month:
        start, end = month_bounds(mail_filter.month)
        if start is not None:
            qs = qs.filter(date__gte=start)
        if end is not None:
            qs = qs.filter(date__lt=end)
    if mail_filter.date_from:
        qs = qs.filter(date__gte=day_start(mail_filter.date_from))
    if mail_filter.date_to and mail_filter.date_to < date.max:
        qs = qs.filter(date__lt=day_start(mail_filter.date_to + timedelta(days=1)))
    if mail_filter.sender:
        qs = qs.alias(sort_sender=SORT_ANNOTATIONS["sort_sender"]).filter(
            sort_sender=mail_filter.sender.lower()
        )
    if mail_filter.has_attachments:
        qs = qs.filter(has_attachments=True)
    if mail_filter.thread_id is not None:
        qs = qs.filter(thread_id=mail_filter.thread_id)
    return qs


def mail_list_page(
    space: Space,
    *,
    sort: Sort = Sort.NEWEST,
    mail_filter: MailFilter | None = None,
    size: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    before: str | None = None,
    last: bool = False,
) -> KeysetPage:
    """One page of the space's mail, with each row's thread size. One query."""
    qs = _filtered(messages_live(space), mail_filter or MailFilter())
    keys = SORT_KEYS[sort]
    annotations = {
        k.name: SORT_ANNOTATIONS[k.name] for k in keys if k.name in SORT_ANNOTATIONS
    }
    qs = qs.annotate(
        thread_size=Coalesce(F("thread__message_count"), Value(1)), **annotations
    ).only(*LIST_FIELDS)
    return keyset_page(qs, keys, size=size, after=after, before=before, last=last)


@dataclass(frozen=True)
class MonthCount:
    month: date
    count: int


def month_index(space: Space) -> list[MonthCount]:
    """How many messages the space holds per month (viewer's zone), newest first."""
    # A date within a day of either end of the calendar would leave it when
    # moved into a far time zone, which the database driver cannot read back:
    # such dates count in the first or last month.
    edges = (
        datetime.min.replace(tzinfo=UTC) + timedelta(days=1),
        datetime.max.replace(tzinfo=UTC) - timedelta(days=1),
    )
    inside = Least(Greatest(F("date"), Value(edges[0])), Value(edges[1]))
    rows = (
        messages_live(space)
        .annotate(month=TruncMonth(inside, tzinfo=timezone.get_current_timezone()))
        .values("month")
        .annotate(n=Count("pk"))
        .order_by("-month")
    )
    return [
        MonthCount(month=timezone.localtime(r["month"]).date(), count=r["n"])
        for r in rows
    ]


def messages_pending_count(space: Space) -> int:
    """How many messages of ``space`` are secured but not yet indexed."""
    return Message.objects.filter(
        space=space, index_state=Message.IndexState.PENDING
    ).count()


# Counting stops here: the page says "more than" past it.
WAITING_COUNT_LIMIT = 1000


def attachments_waiting_count(space: Space) -> int:
    """How many listed attachments of ``space`` have not had their text read.

    The index stage reads every attachment of a message before it writes the
    message, so these are attachments archived before their text was read
    (``reindex --attachments`` reads them) or while reading was turned off;
    the attachments of messages still waiting to be indexed are read with
    them. Counts up to WAITING_COUNT_LIMIT + 1, from a partial index.
    """
    waiting = Attachment.objects.filter(
        text_read=False,
        inline=False,
        message__space=space,
        message__deleted_at__isnull=True,
    )
    return waiting.order_by().values("pk")[: WAITING_COUNT_LIMIT + 1].count()


def attachment_texts(sha256s: Iterable[str]) -> dict[str, AttachmentText]:
    """The texts read from the contents ``sha256s``, by digest (one query)."""
    wanted = set(sha256s)
    if not wanted:
        return {}
    return {
        row.sha256: row
        for row in AttachmentText.objects.filter(sha256__in=wanted).defer(
            "search_vector"
        )
    }


def listed_attachments(message_pks: Iterable[int]) -> list[Attachment]:
    """The listed (not inline) attachments of some messages, in their order."""
    return list(
        Attachment.objects.filter(message_id__in=set(message_pks), inline=False)
        .order_by("message_id", "position")
        .only("pk", "message_id", "position", "filename", "sha256")
    )


def message_get(
    space: Space, message_pk: int, *, include_trashed: bool = False
) -> Message | None:
    """The message ``message_pk`` of ``space`` with its thread, or None.

    Trashed messages are found only with ``include_trashed`` (for space admins).
    """
    qs = Message.objects.filter(space=space, pk=message_pk).select_related(
        "thread", "deleted_by"
    )
    if not include_trashed:
        qs = qs.filter(deleted_at__isnull=True)
    return qs.defer("search_text", "search_vector").first()


def message_attachments(message: Message) -> list[Attachment]:
    return list(Attachment.objects.filter(message=message).order_by("position"))


def attachment_get(
    space: Space, message_pk: int, position: int, *, include_trashed: bool = False
) -> Attachment | None:
    """An attachment of a message of ``space`` (trashed ones only if asked)."""
    qs = Attachment.objects.filter(
        message__space=space, message__pk=message_pk, position=position
    )
    if not include_trashed:
        qs = qs.filter(message__deleted_at__isnull=True)
    return qs.first()


@dataclass(frozen=True)
class Neighbours:
    """The next older and newer messages of the space (None at either end)."""

    older: Message | None
    newer: Message | None


def message_neighbours(message: Message) -> Neighbours:
    """The messages either side of ``message`` in the newest-first list."""
    keys = SORT_KEYS[Sort.NEWEST]
    values = [message.date, message.pk]
    base = Message.objects.filter(
        space_id=message.space_id, deleted_at__isnull=True
    ).only(*LIST_FIELDS)
    older = base.filter(_beyond(keys, values, True)).order_by(*_ordering(keys, True))
    newer = base.filter(_beyond(keys, values, False)).order_by(*_ordering(keys, False))
    return Neighbours(older=older.first(), newer=newer.first())


@dataclass
class TreeRow:
    """One line of a drawn thread: a message, or a placeholder for a missing one."""

    depth: int
    message: Message | None


def thread_tree(thread: Thread) -> list[TreeRow]:
    """The thread's live messages as a tree, flattened for drawing. One query.

    Every live message of the thread appears exactly once; placeholders stand
    for messages that replies refer to but the archive does not hold.
    """
    messages = list(
        Message.objects.filter(thread=thread, deleted_at__isnull=True)
        .only(*LIST_FIELDS, "message_id", "in_reply_to", "references")
        .order_by("date", "pk")
    )
    by_pk = {m.pk: m for m in messages}
    roots: list[ThreadNode] = thread_messages(
        ThreadInput(
            key=m.pk,
            message_id=m.message_id or None,
            references=tuple(m.references or ()),
            in_reply_to=m.in_reply_to or None,
            subject=m.subject,
            date=m.date,
        )
        for m in messages
    )
    rows = []
    for depth, node in flatten(roots):
        rows.append(
            TreeRow(depth=depth, message=None if node.key is None else by_pk[node.key])
        )
    return rows


@dataclass(frozen=True)
class ThreadPosition:
    """Where a message sits in its thread: the drawn tree and its neighbours."""

    rows: list[TreeRow]
    previous: Message | None
    next: Message | None
    too_large: bool


def thread_position(message: Message) -> ThreadPosition:
    """The tree of ``message``'s thread and the messages before and after it.

    For a thread above THREAD_TREE_LIMIT no tree is drawn and the neighbours are
    by date; either way a fixed number of queries.
    """
    thread = message.thread
    if thread is None:
        return ThreadPosition(rows=[], previous=None, next=None, too_large=False)
    if thread.message_count > THREAD_TREE_LIMIT:
        keys = SORT_KEYS[Sort.OLDEST]
        values = [message.date, message.pk]
        base = Message.objects.filter(thread=thread, deleted_at__isnull=True).only(
            *LIST_FIELDS
        )
        previous = base.filter(_beyond(keys, values, False)).order_by(
            *_ordering(keys, False)
        )
        following = base.filter(_beyond(keys, values, True)).order_by(
            *_ordering(keys, True)
        )
        return ThreadPosition(
            rows=[], previous=previous.first(), next=following.first(), too_large=True
        )
    rows = thread_tree(thread)
    order = [r.message for r in rows if r.message is not None]
    index = next((i for i, m in enumerate(order) if m.pk == message.pk), None)
    if index is None:
        return ThreadPosition(rows=rows, previous=None, next=None, too_large=False)
    return ThreadPosition(
        rows=rows,
        previous=order[index - 1] if index > 0 else None,
        next=order[index + 1] if index + 1 < len(order) else None,
        too_large=False,
    )


def thread_get(space: Space, thread_id: int) -> Thread | None:
    """The thread ``thread_id`` of ``space`` if it still holds live messages."""
    return (
        Thread.objects.filter(space=space, pk=thread_id, message_count__gt=0)
        .select_related("space")
        .first()
    )


def message_by_message_id(spaces: QuerySet[Space], message_id: str) -> Message | None:
    """The first live message with this Message-ID in any of ``spaces``.

    "First" is the earliest archived, so the answer does not change as more
    copies arrive elsewhere. Accepts the id with or without angle brackets.
    """
    bare = message_id.strip()
    if bare.startswith("<") and bare.endswith(">"):
        bare = bare[1:-1]
    if not bare or not _storable(bare):
        return None
    return (
        Message.objects.filter(
            message_id=bare, deleted_at__isnull=True, space__in=spaces
        )
        .select_related("space")
        .only("pk", "space__key")
        .order_by("pk")
        .first()
    )


TRASH_KEYS = (SortKey("deleted_at", True, "datetime"), SortKey("pk", True, "int"))


def trash_page(
    space: Space,
    *,
    size: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    before: str | None = None,
) -> KeysetPage:
    """One page of the space's trash, most recently deleted first. One query."""
    qs = (
        Message.objects.filter(space=space, deleted_at__isnull=False)
        .select_related("deleted_by")
        .only(*LIST_FIELDS, "deleted_at", "deleted_by__username")
    )
    return keyset_page(qs, TRASH_KEYS, size=size, after=after, before=before)


def trash_count(space: Space) -> int:
    return Message.objects.filter(space=space, deleted_at__isnull=False).count()


def live_count(space: Space) -> int:
    return messages_live(space).count()


def feed_token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a feed token is stored. Pure."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def feed_token_owner(token: str) -> FeedToken | None:
    """The active user's token row for the feed token ``token``, or None.

    Looked up by digest: what arrives in the URL never reaches the database.
    """
    return (
        FeedToken.objects.filter(
            token_hash=feed_token_digest(token), user__is_active=True
        )
        .select_related("user")
        .first()
    )


# Messages shown with their bodies on one page of a thread: enough to read a
# conversation in one go, few enough that its HTML frames load quickly.
THREAD_PAGE_SIZE = 20


class ThreadOrder(StrEnum):
    DATE = "date"
    TREE = "tree"


@dataclass(frozen=True)
class ConversationEntry:
    """One message of a thread page, with its attachments, at its tree depth."""

    depth: int
    message: Message
    attachments: list[Attachment]


@dataclass(frozen=True)
class Participant:
    name: str
    address: str


@dataclass
class ConversationPage:
    """A page of a thread: its outline, the page's messages and where it is."""

    outline: list[TreeRow]
    entries: list[ConversationEntry]
    number: int
    page_count: int
    participants: list[Participant]
    newest_pk: int | None


def _conversation_order(outline: list[TreeRow], order: ThreadOrder) -> list[TreeRow]:
    """The thread's messages (placeholders left out) in reading order."""
    present = [r for r in outline if r.message is not None]
    if order == ThreadOrder.TREE:
        return present
    dated = sorted(present, key=lambda r: (r.message.date, r.message.pk))
    return [TreeRow(depth=0, message=r.message) for r in dated]


def thread_conversation(
    thread: Thread,
    *,
    order: ThreadOrder = ThreadOrder.DATE,
    page: int = 1,
    size: int = THREAD_PAGE_SIZE,
) -> ConversationPage:
    """One page of ``thread`` with the messages' bodies and attachments.

    Three queries whatever the thread's or the page's size: the outline (light
    fields of every live message, for the order and the participants), the
    page's messages in full, and their attachments. A page number past the end
    gives the last page.
    """
    outline = thread_tree(thread)
    ordered = _conversation_order(outline, order)
    page_count = max(1, -(-len(ordered) // size))
    number = min(max(page, 1), page_count)
    shown = ordered[(number - 1) * size : number * size]
    pks = [r.message.pk for r in shown]
    full = {
        m.pk: m
        for m in Message.objects.filter(pk__in=pks)
        .defer("search_text", "search_vector")
        .prefetch_related(
            Prefetch(
                "attachments",
                queryset=Attachment.objects.order_by("position"),
                to_attr="ordered_attachments",
            )
        )
    }
    entries = [
        ConversationEntry(
            depth=r.depth,
            message=full[r.message.pk],
            attachments=full[r.message.pk].ordered_attachments,
        )
        for r in shown
        if r.message.pk in full
    ]
    seen: dict[str, Participant] = {}
    for row in ordered:
        m = row.message
        ident = (m.from_address or m.from_name).lower()
        if ident and ident not in seen:
            seen[ident] = Participant(name=m.from_name, address=m.from_address)
    newest = max(ordered, key=lambda r: (r.message.date, r.message.pk), default=None)
    return ConversationPage(
        outline=outline,
        entries=entries,
        number=number,
        page_count=page_count,
        participants=list(seen.values()),
        newest_pk=newest.message.pk if newest else None,
    )


def thread_page_of(message: Message, *, size: int = THREAD_PAGE_SIZE) -> int:
    """The page of its thread (oldest first) on which ``message`` is. One query."""
    if message.thread_id is None:
        return 1
    keys = SORT_KEYS[Sort.OLDEST]
    earlier = Message.objects.filter(
        thread_id=message.thread_id, deleted_at__isnull=True
    ).filter(_beyond(keys, [message.date, message.pk], False))
    return earlier.count() // size + 1


@dataclass(frozen=True)
class ThreadNeighbours:
    """The threads of the space active just before and just after a thread."""

    older: Thread | None
    newer: Thread | None


THREAD_KEYS = (SortKey("last_date", True, "datetime"), SortKey("pk", True, "int"))


def thread_neighbours(thread: Thread) -> ThreadNeighbours:
    """The space's threads either side of ``thread`` by last activity. Two queries."""
    if thread.last_date is None:
        return ThreadNeighbours(older=None, newer=None)
    values = [thread.last_date, thread.pk]
    base = Thread.objects.filter(space_id=thread.space_id, message_count__gt=0)
    older = base.filter(_beyond(THREAD_KEYS, values, True)).order_by(
        *_ordering(THREAD_KEYS, True)
    )
    newer = base.filter(_beyond(THREAD_KEYS, values, False)).order_by(
        *_ordering(THREAD_KEYS, False)
    )
    return ThreadNeighbours(older=older.first(), newer=newer.first())


# Names shown per conversation in the list; the rest are counted.
LIST_PARTICIPANTS = 4


@dataclass(frozen=True)
class ConversationRow:
    """One line of the conversation view: a thread and who wrote in it."""

    thread: Thread
    participants: list[Participant]
    more_participants: int


def thread_list_page(
    space: Space,
    *,
    oldest_first: bool = False,
    month: date | None = None,
    size: int = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    before: str | None = None,
    last: bool = False,
) -> KeysetPage:
    """One page of the space's conversations by last activity, each row a
    ConversationRow. Two queries: the threads, then the page's senders.

    ``month`` keeps the threads whose last message falls in that month.
    """
    qs = Thread.objects.filter(
        space=space, message_count__gt=0, last_date__isnull=False
    )
    if month:
        start, end = month_bounds(month)
        if start is not None:
            qs = qs.filter(last_date__gte=start)
        if end is not None:
            qs = qs.filter(last_date__lt=end)
    keys = THREAD_KEYS_OLDEST if oldest_first else THREAD_KEYS
    page = keyset_page(qs, keys, size=size, after=after, before=before, last=last)
    senders: dict[int, dict[str, Participant]] = {t.pk: {} for t in page.rows}
    rows = (
        Message.objects.filter(thread_id__in=list(senders), deleted_at__isnull=True)
        .order_by("thread_id", "date", "pk")
        .values_list("thread_id", "from_name", "from_address")
    )
    for thread_id, name, address in rows:
        ident = (address or name).lower()
        if ident:
            senders[thread_id].setdefault(ident, Participant(name, address))
    page.rows = [
        ConversationRow(
            thread=t,
            participants=list(senders[t.pk].values())[:LIST_PARTICIPANTS],
            more_participants=max(0, len(senders[t.pk]) - LIST_PARTICIPANTS),
        )
        for t in page.rows
    ]
    return page


THREAD_KEYS_OLDEST = (
    SortKey("last_date", False, "datetime"),
    SortKey("pk", False, "int"),
)


def messages_threadless_count(space: Space) -> int:
    """Live messages of ``space`` that are in no thread (waiting to be indexed,
    or unreadable): the conversation view cannot show them."""
    return messages_live(space).filter(thread__isnull=True).count()


def mail_view_for(user: Any) -> str:
    """How ``user`` chose to see the mail list (messages unless they chose)."""
    if not user.is_authenticated:
        return ReadingPreference.MailView.MESSAGES
    chosen = (
        ReadingPreference.objects.filter(user=user)
        .values_list("mail_view", flat=True)
        .first()
    )
    return chosen or ReadingPreference.MailView.MESSAGES
