"""Tests for JWZ threading: shapes, hostile headers, invariants and scale."""

from __future__ import annotations

import itertools
import mailbox
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from mailarchive.threading import (
    ThreadInput,
    ThreadNode,
    flatten,
    normalize_subject,
    thread_messages,
)

BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def corpus_dir() -> Path:
    """The shared real-world corpus; missing it is a failure, never a skip."""
    path = Path(os.environ.get("MAILARCHIVE_TEST_CORPUS", "/work/shared/corpus"))
    if not (path / "mimekit").is_dir():
        pytest.fail(f"test corpus not found at {path}; set MAILARCHIVE_TEST_CORPUS")
    return path


class Builder:
    """Collects ThreadInputs with keys in creation order."""

    def __init__(self) -> None:
        self.items: list[ThreadInput] = []

    def add(
        self,
        subject: str,
        message_id: str | None,
        references: str = "",
        *,
        in_reply_to: str | None = None,
        date: datetime | None = BASE,
    ) -> int:
        key = len(self.items) + 1
        self.items.append(
            ThreadInput(
                key=key,
                message_id=message_id,
                references=tuple(references.split()),
                in_reply_to=in_reply_to,
                subject=subject,
                date=date,
            )
        )
        return key

    def render(self, roots: list[ThreadNode], *, include_dummies: bool = True) -> str:
        subjects = {item.key: item.subject for item in self.items}
        return "".join(
            "   " * depth
            + (subjects[node.key] if node.key is not None else "dummy")
            + "\n"
            for depth, node in flatten(roots, include_dummies=include_dummies)
        )


def all_keys(roots: Iterable[ThreadNode]) -> list[int]:
    return [node.key for _, node in flatten(roots) if node.key is not None]


def test_jwz_reference_shapes() -> None:
    """GIVEN the classic JWZ test threads (chains, missing parents, ambiguity)
    WHEN they are threaded by references only
    THEN the trees match the published algorithm's results."""
    b = Builder()
    b.add("A", "1")
    b.add("B", "2", "1")
    b.add("C", "3", "1 2")
    b.add("D", "4", "1")
    b.add("E", "5", "3 x1 x2 x3")
    b.add("F", "6", "2")
    b.add("G", "7", "nonesuch")
    b.add("H", "8", "nonesuch")
    b.add("Ambig1", "ambig1")
    b.add("Ambig2", "ambig2", "ambig1")
    b.add("Ambig3", "ambig3", "ambig1 ambig2")
    b.add("Ambig4", "ambig4", "ambig1 ambig2 ambig3")
    b.add("Ambig5a", "ambig5a", "ambig1 ambig2 ambig3 ambig4")
    b.add("Ambig5b", "ambig5b", "ambig1 ambig3 ambig2 ambig4")
    b.add("missingmessage", "missa")
    b.add("missingmessage", "missc", "missa missb")
    b.add("liar 1", "liar.1", "liar.a liar.c")
    b.add("liar 2", "liar.2", "liar.a liar.b liar.c")
    b.add("liar2 1", "liar2.1", "liar2.a liar2.b liar2.c")
    b.add("liar2 2", "liar2.2", "liar2.a liar2.c")

    roots = thread_messages(b.items, group_by_subject=False)

    assert b.render(roots) == (
        "A\n"
        "   B\n"
        "      C\n"
        "         E\n"
        "      F\n"
        "   D\n"
        "dummy\n"
        "   G\n"
        "   H\n"
        "Ambig1\n"
        "   Ambig2\n"
        "      Ambig3\n"
        "         Ambig4\n"
        "            Ambig5a\n"
        "            Ambig5b\n"
        "dummy\n"
        "   liar 1\n"
        "   liar 2\n"
        "dummy\n"
        "   liar2 1\n"
        "   liar2 2\n"
        "missingmessage\n"
        "   missingmessage\n"
    )
    placeholders = [node for _, node in flatten(roots) if node.is_dummy]
    assert {node.message_id for node in placeholders} == {
        "liar.a",
        "liar2.a",
        "nonesuch",
    }


def test_reference_loops_keep_every_message() -> None:
    """GIVEN messages whose references form cycles of length 1, 2, 3 and 4
    WHEN they are threaded
    THEN every one of them is in the result exactly once, in a tree."""
    b = Builder()
    b.add("Loop1", "loop1", "loop2 loop3")
    b.add("Loop2", "loop2", "loop3 loop1")
    b.add("Loop3", "loop3", "loop1 loop2")
    b.add("Loop4", "loop4", "loop5")
    b.add("Loop5", "loop5", "loop4")
    b.add("Loop6", "loop6", "loop6")
    b.add("Loop7", "loop7", "loop8 loop9 loop10 loop8 loop9 loop10")
    b.add("Loop8", "loop8", "loop9 loop10 loop7 loop9 loop10 loop7")
    b.add("Loop9", "loop9", "loop10 loop7 loop8 loop10 loop7 loop8")
    b.add("Loop10", "loop10", "loop7 loop8 loop9 loop7 loop8 loop9")

    roots = thread_messages(b.items, group_by_subject=False)

    assert sorted(all_keys(roots)) == [item.key for item in b.items]
    # Equal dates: messages are linked and listed in Message-ID order.
    assert b.render(roots) == (
        "Loop2\n"
        "   Loop3\n"
        "      Loop1\n"
        "Loop5\n"
        "   Loop4\n"
        "Loop6\n"
        "Loop7\n"
        "   Loop8\n"
        "      Loop9\n"
        "         Loop10\n"
    )


def test_message_claiming_to_be_its_own_ancestor() -> None:
    b = Builder()
    b.add("root", "r")
    b.add("liar", "liar", "r liar")
    b.add("self only", "self", "self", in_reply_to="self")
    b.add("child of liar", "kid", "r liar")

    roots = thread_messages(b.items, group_by_subject=False)

    assert b.render(roots) == "root\n   liar\n      child of liar\nself only\n"


def test_duplicate_message_ids_all_appear() -> None:
    """GIVEN two and three messages sharing a Message-ID
    WHEN threaded
    THEN all of them appear; replies attach to the first archived copy."""
    b = Builder()
    b.add("dup", "dup")
    first_kid = b.add("dup-kid", "dup-kid", "dup")
    second_kid = b.add("dup-kid", "dup-kid", "dup")
    b.add("dup-kid-2", "dup-kid-2", "dup")
    b.add("dup-kid-2", "dup-kid-2", "dup")
    b.add("dup-kid-2", "dup-kid-2", "dup")
    b.add("grandchild", "gc", "dup dup-kid", date=BASE + timedelta(hours=1))

    roots = thread_messages(b.items, group_by_subject=False)

    assert b.render(roots) == (
        "dup\n"
        "   dup-kid\n"
        "      grandchild\n"
        "   dup-kid\n"
        "   dup-kid-2\n"
        "   dup-kid-2\n"
        "   dup-kid-2\n"
    )
    kids = roots[0].children
    assert [kid.key for kid in kids[:2]] == [first_kid, second_kid]
    assert [kid.message_id for kid in kids[:2]] == ["dup-kid", "dup-kid"]


def test_later_copy_of_duplicate_id_does_not_steal_replies() -> None:
    """The first archived copy owns the id even when the later copy is older."""
    b = Builder()
    original = b.add("original", "same", date=BASE + timedelta(days=2))
    b.add("impostor", "same", date=BASE)
    b.add("reply", "reply", "same", date=BASE + timedelta(days=3))

    roots = thread_messages(b.items, group_by_subject=False)

    assert b.render(roots) == "impostor\noriginal\n   reply\n"
    assert roots[1].key == original


def test_messages_without_id() -> None:
    b = Builder()
    b.add("parent", "p")
    b.add("no id reply", None, "p")
    b.add("no id alone", None)
    b.add("blank id", "  <>  ")

    roots = thread_messages(b.items, group_by_subject=False)

    # Equal dates sort by Message-ID, and a missing one sorts first.
    assert b.render(roots) == "no id alone\nblank id\nparent\n   no id reply\n"
    assert [node.message_id for _, node in flatten(roots)] == [None, None, "p", None]


def test_in_reply_to_used_only_without_references() -> None:
    b = Builder()
    b.add("one", "one")
    b.add("two", "two")
    b.add("irt only", "x", in_reply_to="<one>")
    b.add("refs win", "y", "<two>", in_reply_to="<one>")

    roots = thread_messages(b.items, group_by_subject=False)

    assert b.render(roots) == "one\n   irt only\ntwo\n   refs win\n"


def test_message_without_references_keeps_implied_parent() -> None:
    """GIVEN a reply whose client sent no References but whose own reply did
    WHEN threaded in either arrival order
    THEN the reply sits under the parent its child's References imply."""
    shapes = set()
    for order in ([0, 1, 2], [2, 1, 0]):
        rows = [
            ("start", "a", ""),
            ("bare reply", "b", ""),
            ("reply to reply", "c", "a b"),
        ]
        b = Builder()
        for index in order:
            subject, message_id, refs = rows[index]
            b.add(subject, message_id, refs)
        shapes.add(b.render(thread_messages(b.items, group_by_subject=False)))
    assert shapes == {"start\n   bare reply\n      reply to reply\n"}


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: simple subject", "simple subject"),
        ("Re: simple subject  ", "simple subject"),
        ("Re: Re: simple subject  ", "simple subject"),
        ("Re: Re[4]: simple subject  ", "simple subject"),
        ("Re: [Mailing-List] Re[4]: simple subject  ", "simple subject"),
        ("Re:RE:rE[3]: Subject", "subject"),
        ("RE(2): Subject", "subject"),
        ("Re^3: Subject", "subject"),
        ("RE : Réunion", "réunion"),
        ("AW: WG: Termin am Montag", "termin am montag"),
        ("SV: VS: Antw: Vergadering", "vergadering"),
        ("Fwd: FW: Fw: quarterly numbers", "quarterly numbers"),
        ("[ann] [dev]   Release   1.0", "release 1.0"),
        ("返信: 会議の件", "会議の件"),
        ("転送：資料", "資料"),
        ("Re： 全角コロン", "全角コロン"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("Reply needed", "reply needed"),
        ("Regarding: the plan", "regarding: the plan"),
        ("Re:", ""),
        ("", ""),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


def test_subject_grouping_of_orphan_replies() -> None:
    """GIVEN replies whose References were lost and unrelated same-subject mail
    WHEN threaded with subject grouping
    THEN replies join their original; non-replies stay separate threads."""
    b = Builder()
    b.add("Budget", "budget")
    b.add("Re: Budget", "budget-re", date=BASE + timedelta(hours=1))
    b.add("[team] RE: budget", "budget-re2", date=BASE + timedelta(hours=2))
    b.add("Lunch", "lunch1")
    b.add("Lunch", "lunch2", date=BASE + timedelta(days=1))
    b.add("Re: Offsite", "offsite-re1")
    b.add("AW: Offsite", "offsite-re2", date=BASE + timedelta(hours=3))
    b.add("Re: Offsite", "offsite-re3", date=BASE + timedelta(hours=4))

    grouped = thread_messages(b.items)
    ungrouped = thread_messages(b.items, group_by_subject=False)

    assert b.render(grouped) == (
        "Budget\n"
        "   Re: Budget\n"
        "   [team] RE: budget\n"
        "Lunch\n"
        "dummy\n"
        "   Re: Offsite\n"
        "   AW: Offsite\n"
        "   Re: Offsite\n"
        "Lunch\n"
    )
    assert len(ungrouped) == len(b.items)


def test_subject_grouping_moves_placeholder_children_under_original() -> None:
    """GIVEN replies to a Message-ID the archive lacks and a same-subject original
    WHEN threaded
    THEN the replies hang under the original and no placeholder is left."""
    b = Builder()
    b.add("Release plan", "plan-as-sent-by-list")
    b.add("Re: Release plan", "r1", "plan-original", date=BASE + timedelta(hours=1))
    b.add("Re: Release plan", "r2", "plan-original", date=BASE + timedelta(hours=2))

    roots = thread_messages(b.items)

    assert b.render(roots) == (
        "Release plan\n   Re: Release plan\n   Re: Release plan\n"
    )


def test_sorting_by_date_with_undated_last() -> None:
    b = Builder()
    b.add("undated root", "u", date=None)
    b.add("late root", "late", date=BASE + timedelta(days=5))
    b.add("early root", "early", date=BASE)
    b.add("undated reply", "e0", "early", date=None)
    b.add("second reply", "e2", "early", date=BASE + timedelta(hours=2))
    # Naive dates are read as UTC and may be mixed with aware ones.
    b.add("first reply", "e1", "early", date=datetime(2024, 3, 1, 13, 0))

    roots = thread_messages(b.items, group_by_subject=False)

    assert b.render(roots) == (
        "early root\n"
        "   first reply\n"
        "   second reply\n"
        "   undated reply\n"
        "late root\n"
        "undated root\n"
    )


def test_flatten_without_dummies_lifts_children() -> None:
    b = Builder()
    b.add("G", "7", "nonesuch")
    b.add("H", "8", "nonesuch")
    b.add("H reply", "9", "nonesuch 8")

    roots = thread_messages(b.items)

    assert b.render(roots) == "dummy\n   G\n   H\n      H reply\n"
    assert b.render(roots, include_dummies=False) == "G\nH\n   H reply\n"


def test_duplicate_keys_are_rejected() -> None:
    item = ThreadInput(1, "a", (), None, "x", BASE)
    with pytest.raises(ValueError, match="distinct key"):
        thread_messages([item, item])


def test_input_is_not_modified_and_rerun_gives_same_result() -> None:
    b = Builder()
    b.add("A", "1")
    b.add("B", "2", "1")
    b.add("C", "3", "1 2")
    snapshot = list(b.items)

    first = thread_messages(b.items)
    second = thread_messages(b.items)

    assert b.items == snapshot
    assert first == second


def random_inputs(rng: random.Random, count: int) -> list[ThreadInput]:
    """Hostile random input: shared ids, self and cyclic references, no dates."""
    pool = [f"id{n}@example.org" for n in range(max(2, count // 2))]
    subjects = ["Hello", "Re: Hello", "AW: hello", "Other", "Re: Other", "", "Re:"]
    items = []
    for key in rng.sample(range(1, 10 * count + 1), count):
        message_id = None if rng.random() < 0.1 else rng.choice(pool)
        references = tuple(
            rng.choice(pool + [message_id or "nobody"])
            for _ in range(rng.choice([0, 0, 1, 2, 3, 6]))
        )
        in_reply_to = rng.choice([None, rng.choice(pool)])
        date = (
            None
            if rng.random() < 0.2
            else BASE + timedelta(minutes=rng.randrange(0, 60 * 24 * 3))
        )
        if date is not None and rng.random() < 0.2:
            date = date.replace(tzinfo=None)
        items.append(
            ThreadInput(
                key, message_id, references, in_reply_to, rng.choice(subjects), date
            )
        )
    return items


def sort_value(node: ThreadNode, by_key: dict[int, ThreadInput]) -> tuple:
    if node.key is None:
        return sort_value(node.children[0], by_key)
    date = by_key[node.key].date
    if date is not None and date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    return (date is None, date.timestamp() if date else 0.0)


@pytest.mark.parametrize("group_by_subject", [True, False], ids=["subject", "refs"])
@pytest.mark.parametrize("seed", range(150))
def test_every_key_appears_exactly_once(seed: int, group_by_subject: bool) -> None:
    """GIVEN random messages with shared ids, cycles and self-references
    WHEN threaded
    THEN every key appears exactly once, the result is a forest, placeholders
    are roots with at least two children, and siblings are in date order."""
    rng = random.Random(seed)
    items = random_inputs(rng, rng.randrange(1, 60))
    by_key = {item.key: item for item in items}

    roots = thread_messages(items, group_by_subject=group_by_subject)

    pairs = flatten(roots)
    keys = Counter(node.key for _, node in pairs if node.key is not None)
    assert keys == Counter(by_key.keys())
    assert len({id(node) for _, node in pairs}) == len(pairs)
    for depth, node in pairs:
        if node.is_dummy:
            assert depth == 0
            assert len(node.children) >= 2
            assert all(not child.is_dummy for child in node.children)
        else:
            assert node.message_id == (
                (by_key[node.key].message_id or "").strip().strip("<>").strip() or None
            )
    for siblings in [roots, *(node.children for _, node in pairs)]:
        values = [sort_value(node, by_key) for node in siblings]
        assert values == sorted(values)


def shape_by_message_id(roots: list[ThreadNode]) -> list[tuple[int, str | None]]:
    return [(depth, node.message_id) for depth, node in flatten(roots)]


THREADS = {
    "chain-and-branches": [
        ("Plan", "a", "", 0),
        ("Re: Plan", "b", "a", 1),
        ("Re: Plan", "c", "a b", 2),
        ("Re: Plan", "d", "a", 3),
        ("Re: Plan", "e", "a b c", 4),
        ("Re: Plan", "f", "a d", 5),
    ],
    "missing-root": [
        ("Re: Gone", "b", "a", 1),
        ("Re: Gone", "c", "a", 2),
        ("Re: Gone", "d", "a c", 3),
        ("Re: Gone", "e", "a x c", 4),
        ("Gone too", "f", "a x", 5),
    ],
    "ambiguous-and-lying": [
        ("Ambig1", "a1", "", 0),
        ("Ambig2", "a2", "a1", 1),
        ("Ambig3", "a3", "a1 a2", 2),
        ("Ambig4", "a4", "a1 a3 a2", 3),
        ("liar 1", "l1", "la lc", 4),
        ("liar 2", "l2", "la lb lc", 5),
    ],
    "orphans-by-subject": [
        ("Status", "s", "", 0),
        ("Re: Status", "s1", "", 1),
        ("Re: Status", "s2", "s1", 2),
        ("AW: Status", "s3", "missing", 3),
        ("Re: Status", "s4", "missing", 4),
        ("Status", "s5", "", 5),
    ],
    "undated": [
        ("Q", "q", "", None),
        ("Re: Q", "q1", "q", None),
        ("Re: Q", "q2", "q", None),
        ("Re: Q", "q3", "q q1", None),
        ("Re: Q", "q4", "nowhere", None),
    ],
}


@pytest.mark.parametrize("name", THREADS)
def test_delivery_order_does_not_change_the_shape(name: str) -> None:
    """GIVEN a small thread
    WHEN its messages arrive in every possible order (keys follow arrival)
    THEN the thread shape is identical every time."""
    rows = THREADS[name]
    shapes = set()
    for order in itertools.permutations(rows):
        items = [
            ThreadInput(
                key=arrival,
                message_id=message_id,
                references=tuple(refs.split()),
                in_reply_to=None,
                subject=subject,
                date=None if hour is None else BASE + timedelta(hours=hour),
            )
            for arrival, (subject, message_id, refs, hour) in enumerate(order, 1)
        ]
        shapes.add(tuple(shape_by_message_id(thread_messages(items))))
    assert len(shapes) == 1


def test_hundred_thousand_messages() -> None:
    """GIVEN 100,000 messages in a few thousand threads, some with lost references
    WHEN threaded
    THEN every message is placed exactly once."""
    rng = random.Random(7)
    items = []
    for key in range(100_000):
        references: tuple[str, ...] = ()
        if key and rng.random() < 0.8:
            parent = rng.randrange(max(0, key - 200), key)
            references = (f"m{parent - 1}@x", f"m{parent}@x")
        items.append(
            ThreadInput(
                key,
                f"m{key}@x",
                references,
                None,
                f"Re: topic {key % 3000}",
                BASE + timedelta(seconds=key),
            )
        )

    roots = thread_messages(items)

    keys = [node.key for _, node in flatten(roots) if node.key is not None]
    assert len(keys) == len(items)
    assert set(keys) == set(range(100_000))


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_ten_thousand_deep_chain(reverse: bool) -> None:
    """A chain of 10,000 replies threads without hitting the recursion limit."""
    items = [
        ThreadInput(
            key,
            f"c{key}",
            tuple(f"c{n}" for n in range(max(0, key - 10), key)),
            f"c{key - 1}" if key else None,
            "Re: long" if key else "long",
            BASE + timedelta(minutes=key),
        )
        for key in range(10_000)
    ]
    if reverse:
        items.reverse()

    pairs = flatten(thread_messages(items))

    assert [(depth, node.key) for depth, node in pairs] == [
        (n, n) for n in range(10_000)
    ]


def corpus_messages(folder: Path) -> Iterator[Message]:
    """Every message of the corpus mailboxes, and every message forwarded inside."""
    for path in sorted(folder.glob("*.mbox.txt")):
        stack: list[Message] = list(mailbox.mbox(path, create=False))
        while stack:
            message = stack.pop(0)
            yield message
            for part in message.walk():
                if part.get_content_type() == "message/rfc822":
                    stack.extend(part.get_payload())


def corpus_inputs(folder: Path) -> list[ThreadInput]:
    items = []
    for key, message in enumerate(corpus_messages(folder), 1):
        try:
            date = parsedate_to_datetime(message["Date"]) if message["Date"] else None
        except (TypeError, ValueError):
            date = None
        items.append(
            ThreadInput(
                key=key,
                message_id=message["Message-ID"],
                references=tuple(str(message["References"] or "").split()),
                in_reply_to=message["In-Reply-To"],
                subject=str(message["Subject"] or ""),
                date=date,
            )
        )
    return items


def test_real_mailboxes() -> None:
    """GIVEN the corpus mailboxes and the messages forwarded inside them
    (repeated Message-IDs, missing ids and dates, a reply without References)
    WHEN threaded
    THEN every message appears once, the reply joins its original by subject
    and unrelated messages sharing a subject stay apart."""
    items = corpus_inputs(corpus_dir() / "mimekit" / "mbox")
    assert len(items) > 50
    by_key = {item.key: item for item in items}

    roots = thread_messages(items)

    pairs = flatten(roots)
    assert sorted(node.key for _, node in pairs if node.key is not None) == sorted(
        by_key
    )
    original = [
        node
        for node in roots
        if node.key is not None
        and by_key[node.key].subject == "mailusr1@navstar1 3.0b6gold #1"
    ]
    assert len(original) == 1
    assert [by_key[child.key].subject for child in original[0].children] == [
        "Re: mailusr1@navstar1 3.0b6gold #1"
    ]
    copies = [
        node for _, node in pairs if node.message_id == "31C106D2.794B2@netscape.com"
    ]
    assert len(copies) == 4
    assert len({node.key for node in copies}) == 4
    certificates = [
        node
        for node in roots
        if node.key is not None
        and by_key[node.key].subject == "My encryption certificate for S/MIME testing"
    ]
    assert len(certificates) == 2
