"""Load a large, realistic archive into one space of a scratch PostgreSQL database.

Builds the database ``mailarchive_scale`` (dropped first if it exists; never the
test database) with the project's migrations, a space ``SCALE``, a site admin
``bench`` and ``--count`` messages (default 1,000,000) written with COPY rather
than through ``message_ingest``:

- a few thousand senders (Zipf-distributed: some write a lot), about 30 % of
  the conversations in Japanese, the rest in English, with subjects and bodies
  drawn from business-mail sentences; 20 % carry an HTML body, some with an
  inline ``cid:`` picture; 12 % have one to three attachments;
- threads of 1 to 30 messages with proper In-Reply-To and References chains
  (and their ``MessageReference`` rows), dates spread over ten years with more
  mail in later years, replies hours to days after their parent, message ids
  in arrival order;
- ``search_text`` built as ingest builds it and ``search_vector`` computed in
  SQL with the expression of ``_index_search_vector`` (a trigger during COPY);
- ``Thread`` rows with their counts and dates;
- raw sources: a few dozen distinct generated messages stored through the
  storage API under their content-addressed names; every row points at one of
  them, so message pages can open the raw source (it is not the row's text).

Secondary indexes are dropped during the load and rebuilt afterwards, two at a
time, then the tables are vacuumed and analysed, as a live database would be.
Foreign keys are not checked while loading (the rows are consistent by
construction); the script checks them with a few queries at the end.

    .venv/bin/python bench/generate.py --count 1000000
    .venv/bin/python bench/generate.py --drop
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import struct
import subprocess
import sys
import threading
import time
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import mailgen  # noqa: E402
from common import (  # noqa: E402
    BENCH_VAR,
    PYTHON,
    ROOT,
    SERVER_URL,
    database_drop,
    database_recreate,
    django_env,
    exit_on_sigterm,
    write_json,
)

DATABASE = "mailarchive_scale"
SPACE_KEY = "SCALE"
ADMIN = "bench"
DATA_DIR = BENCH_VAR / "scale"
TABLES = [
    "mailarchive_message",
    "mailarchive_thread",
    "mailarchive_attachment",
    "mailarchive_messagereference",
]
CHUNK = 10_000
SENDERS = 3_000
JAPANESE_SHARE = 0.30
RAW_VARIANTS = 48
LOAD_SETTINGS = [
    # Foreign keys are checked by the queries of ``check`` instead, once.
    "SET session_replication_role = replica",
    "SET synchronous_commit = off",
]
INDEX_SETTINGS = ["SET maintenance_work_mem = '1GB'"]
SEARCH_VECTOR_TRIGGER = """
CREATE OR REPLACE FUNCTION bench_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := setweight(to_tsvector('simple', coalesce(NEW.subject, '')),
                                   'A') || to_tsvector('simple', NEW.search_text);
    RETURN NEW;
END $$;
CREATE TRIGGER bench_search_vector BEFORE INSERT ON mailarchive_message
    FOR EACH ROW EXECUTE FUNCTION bench_search_vector();
ALTER TABLE mailarchive_message ENABLE ALWAYS TRIGGER bench_search_vector;
"""
DROP_TRIGGER = """
DROP TRIGGER bench_search_vector ON mailarchive_message;
DROP FUNCTION bench_search_vector();
"""
MESSAGE_COLUMNS = (
    "id", "space_id", "thread_id", "message_id", "in_reply_to", '"references"',
    "subject", "from_name", "from_address", '"to"', "cc", "date",
    "date_offset_minutes", "received_at", "text_body", "html_body", "raw_name",
    "raw_size", "raw_sha256", "content_digest", "has_attachments", "problems",
    "parseable", "message_id_conflict", "source", "search_text",
)  # fmt: skip
ATTACHMENT_COLUMNS = (
    "id", "message_id", "position", "filename", "content_type", "size", "sha256",
    "blob_name", "content_id", "inline",
)  # fmt: skip
REFERENCE_COLUMNS = ("id", "space_id", "message_id", "ref_id")
THREAD_COLUMNS = (
    "id", "space_id", "subject", "normalized_subject", "message_count",
    "first_date", "last_date",
)  # fmt: skip
# Room in the id space of each loader for attachments and references.
ATTACHMENTS_PER_MESSAGE_MAX = 4
REFERENCES_PER_MESSAGE_MAX = 11


@dataclass
class Blob:
    name: str
    size: int
    sha256: str
    content_type: str = ""
    suffix: str = ""


@dataclass
class Plan:
    """The shape of the archive, decided before any text is written.

    Arrays are indexed by message id - 1 and thread id - 1; ``m_parent`` holds
    the parent's message id or 0.
    """

    count: int
    space_id: int
    people: list[mailgen.Person]
    m_thread: array = field(default_factory=lambda: array("l"))
    m_parent: array = field(default_factory=lambda: array("l"))
    m_date: array = field(default_factory=lambda: array("d"))
    m_sender: array = field(default_factory=lambda: array("l"))
    t_lang: list[str] = field(default_factory=list)
    t_topic: array = field(default_factory=lambda: array("l"))
    t_customer: list[str] = field(default_factory=list)
    t_subject: list[str] = field(default_factory=list)
    raw_blobs: list[Blob] = field(default_factory=list)
    attachment_blobs: list[Blob] = field(default_factory=list)
    logo: Blob | None = None


def _thread_size(rng: random.Random, cumulative: list[float]) -> int:
    return rng.choices(range(1, 31), cum_weights=cumulative)[0]


def plan_archive(count: int, space_id: int, seed: int) -> Plan:
    """Decide threads, senders and dates of ``count`` messages (no text yet)."""
    rng = random.Random(seed)
    people = mailgen.people(rng, SENDERS)
    by_lang = {
        lang: [i for i, p in enumerate(people) if p.lang == lang]
        for lang in ("en", "ja")
    }
    cum = {
        lang: mailgen.zipf_cumulative(len(ids), 0.8) for lang, ids in by_lang.items()
    }
    everyone_cum = mailgen.zipf_cumulative(len(people), 0.8)
    sizes_cum = list(_accumulate([1 / n**1.6 for n in range(1, 31)]))
    topic_cum = mailgen.zipf_cumulative(len(mailgen.TOPICS), 0.9)
    customers = [c[1] for c in mailgen.COMPANIES]

    g_date: list[float] = []
    g_parent: list[int] = []  # index into the g_ lists, or -1
    g_sender: list[int] = []
    g_thread: list[int] = []
    threads: list[tuple[str, int, str]] = []
    span = mailgen.SPAN_SECONDS
    start = mailgen.START.timestamp()
    while len(g_date) < count:
        size = min(_thread_size(rng, sizes_cum), count - len(g_date))
        lang = "ja" if rng.random() < JAPANESE_SHARE else "en"
        pool = by_lang[lang]
        starter = pool[rng.choices(range(len(pool)), cum_weights=cum[lang])[0]]
        others = [
            rng.choices(range(len(people)), cum_weights=everyone_cum)[0]
            for _ in range(rng.randint(1, 3))
        ]
        participants = [starter, *others]
        thread_no = len(threads)
        threads.append(
            (
                lang,
                rng.choices(range(len(topic_cum)), cum_weights=topic_cum)[0],
                rng.choice(customers),
            )
        )
        base = len(g_date)
        # More mail in later years: the density of thread starts grows linearly.
        g_date.append(start + span * rng.random() ** 0.5)
        g_parent.append(-1)
        g_sender.append(starter)
        g_thread.append(thread_no)
        for k in range(1, size):
            parent = k - 1 if rng.random() < 0.6 else rng.randrange(k)
            g_date.append(g_date[base + parent] + 60 + rng.expovariate(1 / 21_600))
            g_parent.append(base + parent)
            parent_sender = g_sender[base + parent]
            choices = [p for p in participants if p != parent_sender] or participants
            g_sender.append(rng.choice(choices))
            g_thread.append(thread_no)

    # Message ids follow arrival (date) order, thread ids their first message.
    order = sorted(range(count), key=g_date.__getitem__)
    id_of = array("l", bytes(8 * count))
    for rank, g in enumerate(order):
        id_of[g] = rank + 1
    thread_id_of = array("l", [0]) * len(threads)
    next_thread = 1
    plan = Plan(count=count, space_id=space_id, people=people)
    for g in order:
        t = g_thread[g]
        if thread_id_of[t] == 0:
            thread_id_of[t] = next_thread
            next_thread += 1
        plan.m_thread.append(thread_id_of[t])
        plan.m_parent.append(id_of[g_parent[g]] if g_parent[g] >= 0 else 0)
        plan.m_date.append(g_date[g])
        plan.m_sender.append(g_sender[g])
    by_thread_id = sorted(range(len(threads)), key=thread_id_of.__getitem__)
    for t in by_thread_id:
        lang, topic, customer = threads[t]
        plan.t_lang.append(lang)
        plan.t_topic.append(topic)
        plan.t_customer.append(customer)
        plan.t_subject.append(
            mailgen.subject_for(random.Random(seed * 7919 + t), lang, topic, customer)
        )
    return plan


def _accumulate(values: list[float]) -> list[float]:
    total = 0.0
    out = []
    for v in values:
        total += v
        out.append(total)
    return out


def message_id(plan: Plan, pk: int) -> str:
    """The Message-ID of message ``pk`` (without angle brackets)."""
    domain = plan.people[plan.m_sender[pk - 1]].address.split("@")[1]
    return f"{pk:x}.{(pk * 2654435761) & 0xFFFFFFFF:08x}@{domain}"


def references_of(plan: Plan, pk: int) -> list[str]:
    """The References chain of ``pk``, root first; long chains keep root + last 9."""
    chain = []
    parent = plan.m_parent[pk - 1]
    while parent:
        chain.append(parent)
        parent = plan.m_parent[parent - 1]
    chain.reverse()
    if len(chain) > 10:
        chain = [chain[0], *chain[-9:]]
    return [message_id(plan, p) for p in chain]


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def message_rows(
    plan: Plan, lo: int, hi: int, seed: int
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Message, attachment and reference rows for message ids ``lo``..``hi - 1``.

    Attachment and reference ids are taken from ranges reserved per message id,
    so loaders working on other ranges never collide.
    """
    rng = random.Random(seed * 1_000_003 + lo)
    messages: list[tuple] = []
    attachments: list[tuple] = []
    references: list[tuple] = []
    people = plan.people
    logo = plan.logo
    for pk in range(lo, hi):
        i = pk - 1
        thread = plan.m_thread[i]
        lang = plan.t_lang[thread - 1]
        topic = plan.t_topic[thread - 1]
        customer = plan.t_customer[thread - 1]
        sender = people[plan.m_sender[i]]
        parent = plan.m_parent[i]
        if parent:
            recipient = people[plan.m_sender[parent - 1]]
            marker = "返信: " if lang == "ja" and pk % 3 == 0 else "Re: "
            subject = marker + plan.t_subject[thread - 1]
        else:
            recipient = people[(pk * 7919) % len(people)]
            subject = plan.t_subject[thread - 1]
        text = mailgen.body_for(
            rng,
            lang=lang,
            topic=topic,
            sender=sender,
            recipient=recipient,
            customer=customer,
            quote=bool(parent),
        )
        to = [[recipient.name, recipient.address]]
        cc = []
        if rng.random() < 0.2:
            other = people[rng.randrange(len(people))]
            cc.append([other.name, other.address])
        html = ""
        names: list[str] = []
        position = 0
        att_base = pk * ATTACHMENTS_PER_MESSAGE_MAX
        kind = rng.random()
        if kind < 0.20:
            cid = ""
            if logo is not None and rng.random() < 0.25:
                cid = f"logo.{pk:x}@{sender.address.split('@')[1]}"
                attachments.append(
                    (
                        att_base,
                        pk,
                        0,
                        "logo.png",
                        "image/png",
                        logo.size,
                        logo.sha256,
                        logo.name,
                        cid,
                        True,
                    )
                )
                position = 1
            html = mailgen.html_for(text, logo_cid=cid)
        if 0.20 <= kind < 0.32:
            for _ in range(rng.choices((1, 2, 3), (80, 15, 5))[0]):
                blob = rng.choice(plan.attachment_blobs)
                filename = mailgen.attachment_name(rng, lang, topic, blob.suffix)
                names.append(filename)
                attachments.append(
                    (
                        att_base + position,
                        pk,
                        position,
                        filename,
                        blob.content_type,
                        blob.size,
                        blob.sha256,
                        blob.name,
                        "",
                        False,
                    )
                )
                position += 1
        refs = references_of(plan, pk) if parent else []
        own_id = message_id(plan, pk)
        for n, ref in enumerate(refs):
            references.append(
                (pk * REFERENCES_PER_MESSAGE_MAX + n, plan.space_id, pk, ref)
            )
        people_lines = [f"{sender.name} {sender.address}"]
        people_lines += [f"{name} {address}" for name, address in to + cc]
        search_text = "\n".join([subject, *people_lines, *names, text])
        raw = plan.raw_blobs[pk % len(plan.raw_blobs)]
        date = plan.m_date[i]
        messages.append(
            (
                pk,
                plan.space_id,
                thread,
                own_id,
                refs[-1] if refs else "",
                json.dumps(refs),
                subject,
                sender.name,
                sender.address,
                json.dumps(to, ensure_ascii=False),
                json.dumps(cc, ensure_ascii=False),
                _when(date),
                sender.offset_minutes,
                _when(date + 30 + (pk % 570)),
                text,
                html,
                raw.name,
                raw.size,
                raw.sha256,
                hashlib.sha256(f"scale:{pk}".encode()).hexdigest(),
                bool(names),
                "[]",
                True,
                False,
                "import" if pk % 7 == 0 else "poll",
                search_text,
            )
        )
    return messages, attachments, references


# -- loading -----------------------------------------------------------------

_PLAN: Plan | None = None


def _copy(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _load_range(url: str, lo: int, hi: int, seed: int, done: Any) -> None:
    """A loader process: COPY messages ``lo``..``hi - 1`` in chunks."""
    import psycopg

    plan = _PLAN
    if plan is None:
        raise RuntimeError("loader started without a plan")
    with psycopg.connect(url) as conn:
        for statement in LOAD_SETTINGS:
            conn.execute(statement)
        for start in range(lo, hi, CHUNK):
            end = min(start + CHUNK, hi)
            messages, attachments, references = message_rows(plan, start, end, seed)
            with conn.cursor() as cursor:
                _copy(cursor, "mailarchive_message", MESSAGE_COLUMNS, messages)
                _copy(cursor, "mailarchive_attachment", ATTACHMENT_COLUMNS, attachments)
                _copy(
                    cursor,
                    "mailarchive_messagereference",
                    REFERENCE_COLUMNS,
                    references,
                )
            conn.commit()
            with done.get_lock():
                done.value += end - start


def thread_rows(plan: Plan) -> list[tuple]:
    """One row per thread with its message count, first and last date."""
    from mailarchive.threading import normalize_subject

    counts = [0] * len(plan.t_subject)
    first = [0.0] * len(plan.t_subject)
    last = [0.0] * len(plan.t_subject)
    for i, thread in enumerate(plan.m_thread):
        t = thread - 1
        date = plan.m_date[i]
        if counts[t] == 0 or date < first[t]:
            first[t] = date
        last[t] = max(last[t], date)
        counts[t] += 1
    return [
        (
            t + 1,
            plan.space_id,
            subject,
            normalize_subject(subject)[:255],
            counts[t],
            _when(first[t]),
            _when(last[t]),
        )
        for t, subject in enumerate(plan.t_subject)
    ]


def _check_columns(conn: Any) -> None:
    """Fail early, naming the column, when the schema gained a required column."""
    written = {
        "mailarchive_message": MESSAGE_COLUMNS,
        "mailarchive_thread": THREAD_COLUMNS,
        "mailarchive_attachment": ATTACHMENT_COLUMNS,
        "mailarchive_messagereference": REFERENCE_COLUMNS,
    }
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_name = ANY(%s) AND is_nullable = 'NO' "
        "AND column_default IS NULL AND is_identity = 'NO'",
        [TABLES],
    ).fetchall()
    missing = [
        f"{table_name}.{column}"
        for table_name, column in rows
        if column not in {c.strip('"') for c in written[table_name]}
    ]
    if missing:
        raise RuntimeError(
            "bench/generate.py does not fill these required columns: "
            + ", ".join(sorted(missing))
            + "; add them to its column lists and rows"
        )


def _secondary_indexes(conn: Any) -> tuple[list[str], list[str], list[str]]:
    """(drop statements, create statements for indexes, for unique constraints)."""
    unique = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)",
        [TABLES],
    ).fetchall()
    constraint_names = {name for _t, name, _d in unique}
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_class c ON c.relname = i.indexname "
        "JOIN pg_index x ON x.indexrelid = c.oid "
        "WHERE i.tablename = ANY(%s) AND NOT x.indisprimary",
        [TABLES],
    ).fetchall()
    drops = [f'ALTER TABLE {t} DROP CONSTRAINT "{n}"' for t, n, _d in unique]
    drops += [f'DROP INDEX "{n}"' for n, _d in indexes if n not in constraint_names]
    creates = [d for n, d in indexes if n not in constraint_names]
    constraints = [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in unique]
    return drops, creates, constraints


def _run_parallel(
    url: str, statements: list[str], sessions: int, setup: list[str]
) -> None:
    """Run ``statements`` on ``sessions`` connections, longest-first as listed."""
    import psycopg

    pending = list(statements)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                for statement in setup:
                    conn.execute(statement)
                while True:
                    with lock:
                        if not pending or errors:
                            return
                        statement = pending.pop(0)
                    conn.execute(statement)
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(sessions)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


def _index_cost(statement: str) -> int:
    """Rough build cost, so that the big indexes start first."""
    if "gin_trgm_ops" in statement:
        return 0
    if "gin" in statement.lower():
        return 1
    if "mailarchive_message " in statement or "mailarchive_message(" in statement:
        return 2
    return 3


def _png() -> bytes:
    """A small valid PNG (a 48x16 grey bar), the shape of a signature logo."""
    width, height = 48, 16
    raw = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _store_blobs(plan: Plan, seed: int) -> None:
    """Write raw sources and attachment files through the storage API."""
    from mailarchive.storage import blob_put

    generator = mailgen.MailboxGenerator(seed)
    for _ in range(RAW_VARIANTS):
        raw = generator.message()
        name, sha = blob_put("raw", raw)
        plan.raw_blobs.append(Blob(name, len(raw), sha))
    rng = random.Random(seed)
    for maintype, subtype, suffix in mailgen.ATTACHMENT_KINDS:
        for size in (30_000, 120_000, 400_000, 1_500_000):
            data = rng.randbytes(size)
            name, sha = blob_put("att", data)
            plan.attachment_blobs.append(
                Blob(name, size, sha, f"{maintype}/{subtype}", suffix)
            )
    logo = _png()
    name, sha = blob_put("att", logo)
    plan.logo = Blob(name, len(logo), sha, "image/png", ".png")


def _setup_django(url: str, data_dir: Path) -> None:
    os.environ.update(django_env(url, data_dir))
    import django

    django.setup()


def _space_and_admin() -> int:
    from django.contrib.auth import get_user_model

    from spaces.services import space_create

    user_model = get_user_model()
    user_model.objects.create_superuser(ADMIN, "bench@example.com", None)
    space = space_create(key=SPACE_KEY, name="Scale benchmark")
    return space.pk


def _check(conn: Any, count: int) -> dict[str, int]:
    """Counts, and the foreign keys the load did not check: all must hold."""
    found = {
        "messages": conn.execute("SELECT count(*) FROM mailarchive_message").fetchone()[
            0
        ],
        "threads": conn.execute("SELECT count(*) FROM mailarchive_thread").fetchone()[
            0
        ],
        "attachments": conn.execute(
            "SELECT count(*) FROM mailarchive_attachment"
        ).fetchone()[0],
        "references": conn.execute(
            "SELECT count(*) FROM mailarchive_messagereference"
        ).fetchone()[0],
    }
    problems = {
        "thread counts": "SELECT count(*) FROM mailarchive_thread t WHERE "
        "message_count <> (SELECT count(*) FROM mailarchive_message m "
        "WHERE m.thread_id = t.id)",
        "messages without thread": "SELECT count(*) FROM mailarchive_message m "
        "LEFT JOIN mailarchive_thread t ON t.id = m.thread_id WHERE t.id IS NULL",
        "attachments without message": "SELECT count(*) FROM mailarchive_attachment a "
        "LEFT JOIN mailarchive_message m ON m.id = a.message_id WHERE m.id IS NULL",
        "references without message": "SELECT count(*) FROM "
        "mailarchive_messagereference r LEFT JOIN mailarchive_message m "
        "ON m.id = r.message_id WHERE m.id IS NULL",
        "messages without search vector": "SELECT count(*) FROM mailarchive_message "
        "WHERE search_vector IS NULL",
    }
    for label, sql in problems.items():
        bad = conn.execute(sql).fetchone()[0]
        if bad:
            raise RuntimeError(f"generated archive is inconsistent: {bad} {label}")
    if found["messages"] != count:
        raise RuntimeError(f"{found['messages']} messages loaded, {count} planned")
    return found


def generate(
    *,
    count: int,
    server_url: str,
    database: str,
    data_dir: Path,
    seed: int,
    workers: int,
) -> dict[str, Any]:
    """Build the scratch database and fill it; returns counts, sizes and timings.

    Destroys the database ``database`` first. Not incremental: every run starts
    from an empty database.
    """
    global _PLAN
    import psycopg

    timings: dict[str, float] = {}
    started = phase = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal phase
        now = time.perf_counter()
        timings[name] = round(now - phase, 1)
        phase = now
        print(f"  {name}: {timings[name]:.1f} s", file=sys.stderr, flush=True)

    url = database_recreate(server_url, database)
    env = django_env(url, data_dir)
    subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), "migrate", "--no-input", "-v0"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    _setup_django(url, data_dir)
    space_id = _space_and_admin()
    lap("database and migrations")

    plan = plan_archive(count, space_id, seed)
    _store_blobs(plan, seed)
    from django.db import connections

    connections.close_all()
    lap(f"plan of {count:,} messages, {len(plan.t_subject):,} threads")

    with psycopg.connect(url, autocommit=True) as conn:
        _check_columns(conn)
        drops, creates, constraints = _secondary_indexes(conn)
        for statement in drops:
            conn.execute(statement)
        conn.execute(SEARCH_VECTOR_TRIGGER)

    _PLAN = plan
    done = multiprocessing.get_context("fork").Value("q", 0)
    bounds = [1 + count * k // workers for k in range(workers + 1)]
    context = multiprocessing.get_context("fork")
    loaders = [
        context.Process(
            target=_load_range,
            args=(url, bounds[k], bounds[k + 1], seed, done),
            daemon=True,
        )
        for k in range(workers)
    ]
    for loader in loaders:
        loader.start()
    with psycopg.connect(url) as conn:
        for statement in LOAD_SETTINGS:
            conn.execute(statement)
        with conn.cursor() as cursor:
            _copy(cursor, "mailarchive_thread", THREAD_COLUMNS, thread_rows(plan))
        conn.commit()
    last = time.perf_counter()
    while any(loader.is_alive() for loader in loaders):
        for loader in loaders:
            loader.join(timeout=1)
        if time.perf_counter() - last >= 15:
            last = time.perf_counter()
            print(
                f"  loaded {done.value:,} of {count:,} messages after "
                f"{last - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    if any(loader.exitcode != 0 for loader in loaders):
        raise RuntimeError("a loader process failed; see its traceback above")
    lap("COPY of rows (search vectors computed by trigger)")

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DROP_TRIGGER)
    ordered = sorted(creates, key=_index_cost) + constraints
    _run_parallel(url, ordered, workers, INDEX_SETTINGS)
    lap(f"{len(ordered)} indexes and unique constraints rebuilt")

    _run_parallel(
        url, [f"VACUUM (ANALYZE) {t}" for t in TABLES], workers, INDEX_SETTINGS
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for table_name in TABLES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table_name}), false)"
            )
    lap("vacuum, analyse, sequences")

    with psycopg.connect(url) as conn:
        found = _check(conn, count)
        sizes = {
            t: conn.execute("SELECT pg_total_relation_size(%s)", [t]).fetchone()[0]
            for t in TABLES
        }
        database_bytes = conn.execute(
            "SELECT pg_database_size(current_database())"
        ).fetchone()[0]
    lap("consistency checks")
    total = time.perf_counter() - started
    return {
        "count": count,
        "database": database,
        "database_url": url,
        "data_dir": str(data_dir),
        "space_key": SPACE_KEY,
        "admin": ADMIN,
        "rows": found,
        "table_bytes": sizes,
        "database_bytes": database_bytes,
        "timings": timings,
        "seconds": round(total, 1),
        "messages_per_second": round(count / total),
        "workers": workers,
    }


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--server", default=SERVER_URL, help="PostgreSQL server URL")
    parser.add_argument("--database", default=DATABASE, help="scratch database name")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--drop", action="store_true", help="drop the database, exit")
    args = parser.parse_args()
    if args.drop:
        database_drop(args.server, args.database)
        print(f"dropped {args.database}")
        return
    result = generate(
        count=args.count,
        server_url=args.server,
        database=args.database,
        data_dir=args.data_dir,
        seed=args.seed,
        workers=max(1, args.workers),
    )
    size_gib = result["database_bytes"] / (1 << 30)
    print(
        f"{result['count']:,} messages ({result['rows']['threads']:,} threads, "
        f"{result['rows']['attachments']:,} attachments, "
        f"{result['rows']['references']:,} references) in {result['seconds']:.0f} s "
        f"= {result['messages_per_second']:,} messages/s; database {size_gib:.1f} GiB"
    )
    print(f"DATABASE_URL={result['database_url']}")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
