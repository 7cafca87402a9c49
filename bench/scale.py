"""Server time and SQL queries of the reading pages on a large archive.

Runs against the database ``bench/generate.py`` built (``mailarchive_scale``),
in-process through Django's test ``Client`` as the site admin ``bench``. Server
time is the time of one request through the whole Django stack (middleware,
session and user lookup, permission check, view, selectors, templates); there is
no network and no WSGI server in it. Each scenario is requested ``--requests``
times after three warm-up requests:

- mail list, first page (the same URL each time);
- mail list, deep page: the page after a cursor taken from a row between 50 %
  and 99 % down the newest-first list, a different one each request;
- message page and thread page of random messages (so larger threads come up
  as often as real readers would hit them);
- search within the space for an English and a Japanese term, and for a word
  that no message holds (what a typo searches for);
- the same through the REST API with a personal token: the message list
  (first and deep page), a message, and the English search;
- last, ``message_ingest`` of ``--ingest`` new messages into the same space
  (half of them replies to archived messages): the time to archive one message
  when the space is large (no target; it shows costs that grow with the space).

Prints p50/p95/max, the median CPU time of this process per request (Python
only; the database's own CPU is not in it), SQL queries per request and the
share of time spent waiting for the database, against the targets (list,
message, thread p95 <= 50 ms; search p95 <= 200 ms). Asserts nothing; a page
that does not answer 200 stops the run. ``--explain`` prints EXPLAIN ANALYZE
of the costliest query of each scenario, ``--profile NAME`` a pyinstrument
profile of that scenario.

    .venv/bin/python bench/scale.py --requests 50
    .venv/bin/python bench/scale.py --explain --profile search-ja
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import SERVER_URL, database_url, django_env, table, write_json  # noqa: E402
from generate import ADMIN, DATA_DIR, DATABASE, SPACE_KEY  # noqa: E402

WARM_UP = 3
TARGETS_MS = {"list": 50.0, "message": 50.0, "thread": 50.0, "search": 200.0}
API_PAGE_SIZE = 50
# Messages archived into the large space after the reading pages are measured.
INGEST_COUNT = 20
SEARCH_EN = "invoice"
SEARCH_JA = "請求書"
# A word no message holds: the search a typo makes.
SEARCH_ABSENT = "kilimanjaro"


@dataclass
class Scenario:
    name: str
    kind: str  # a key of TARGETS_MS, or "ingest" (no target)
    urls: list[str]
    matches: int | None = None
    # Request headers, e.g. the API's Authorization.
    headers: dict[str, str] = field(default_factory=dict)
    times_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    db_ms: list[float] = field(default_factory=list)
    # SQL text -> (total seconds over the scenario, calls, last parameters)
    by_sql: dict[str, list[Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.times_ms)

        def pct(p: float) -> float:
            index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
            return round(ordered[index], 1)

        total = sum(self.times_ms)
        return {
            "name": self.name,
            "kind": self.kind,
            "requests": len(self.times_ms),
            "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": pct(95),
            "max_ms": round(ordered[-1], 1),
            "cpu_p50_ms": round(statistics.median(self.cpu_ms), 1),
            "queries": max(self.queries),
            "queries_min": min(self.queries),
            "db_share": round(sum(self.db_ms) / total, 2) if total else 0.0,
            "target_ms": TARGETS_MS.get(self.kind),
            "met": (
                pct(95) <= TARGETS_MS[self.kind] if self.kind in TARGETS_MS else None
            ),
            "matches": self.matches,
        }


class QueryMeter:
    """Counts and times every SQL query of the default connection."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.by_sql: dict[str, list[Any]] | None = None

    def __call__(
        self, execute: Callable, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.count += 1
            self.seconds += elapsed
            if self.by_sql is not None:
                entry = self.by_sql.setdefault(sql, [0.0, 0, None])
                entry[0] += elapsed
                entry[1] += 1
                entry[2] = params

    def reset(self, by_sql: dict[str, list[Any]] | None) -> None:
        self.count = 0
        self.seconds = 0.0
        self.by_sql = by_sql


def _scenarios(
    requests: int,
    seed: int,
    search_en: str,
    search_ja: str,
    search_absent: str,
    api_headers: dict[str, str],
) -> list[Scenario]:
    """The URLs to request, picked from the archive (not timed)."""
    from mailarchive.models import Message
    from mailarchive.search import MailSearch, messages_search
    from mailarchive.selectors import cursor_encode
    from spaces.models import Space

    rng = random.Random(seed)
    space = Space.objects.get(key=SPACE_KEY)
    base = f"/spaces/{SPACE_KEY}/mail/"
    live = Message.objects.filter(space=space, deleted_at__isnull=True)
    total = live.count()
    last_pk = live.order_by("-pk").values_list("pk", flat=True).first() or 0
    n = requests + WARM_UP

    deep = []
    for _ in range(n):
        offset = int(total * rng.uniform(0.5, 0.99))
        date, pk = live.order_by("-date", "-pk").values_list("date", "pk")[offset]
        deep.append(base + "?" + urlencode({"after": cursor_encode([date, pk])}))

    picked: list[tuple[int, int]] = []
    while len(picked) < n:
        candidate = rng.randint(1, last_pk)
        row = (
            live.filter(pk__gte=candidate)
            .order_by("pk")
            .values_list("pk", "thread_id")
            .first()
        )
        if row is not None:
            picked.append(row)

    def matches(text: str) -> int:
        qs, _parsed = messages_search(live, MailSearch(text=text))
        return qs.count()

    search = base + "search/?"
    scenarios = [
        Scenario("list-first", "list", [base] * n),
        Scenario("list-deep", "list", deep),
        Scenario("message", "message", [f"{base}{pk}/" for pk, _t in picked]),
        Scenario("thread", "thread", [f"{base}threads/{t}/" for _pk, t in picked if t]),
        Scenario(
            "search-en",
            "search",
            [search + urlencode({"q": search_en})] * n,
            matches(search_en),
        ),
        Scenario(
            "search-ja",
            "search",
            [search + urlencode({"q": search_ja})] * n,
            matches(search_ja),
        ),
        Scenario(
            "search-absent",
            "search",
            [search + urlencode({"q": search_absent})] * n,
            matches(search_absent),
        ),
    ]
    api = f"/api/v1/spaces/{SPACE_KEY}/"
    scenarios += [
        Scenario(
            "api-list-first",
            "list",
            [f"{api}messages/?limit={API_PAGE_SIZE}"] * n,
            headers=api_headers,
        ),
        Scenario(
            "api-list-deep",
            "list",
            [
                f"{api}messages/?limit={API_PAGE_SIZE}&" + url.split("?", 1)[1]
                for url in deep
            ],
            headers=api_headers,
        ),
        Scenario(
            "api-message",
            "message",
            [f"{api}messages/{pk}/" for pk, _t in picked],
            headers=api_headers,
        ),
        Scenario(
            "api-search-en",
            "search",
            [f"{api}search/?" + urlencode({"q": search_en})] * n,
            matches(search_en),
            headers=api_headers,
        ),
    ]
    return scenarios


@contextmanager
def _metered() -> Iterator[QueryMeter]:
    from django.db import connection

    meter = QueryMeter()
    with connection.execute_wrapper(meter):
        yield meter


def measure(client: Any, scenario: Scenario, meter: QueryMeter) -> None:
    """Request every URL of ``scenario``; the first WARM_UP are not counted."""
    for i, url in enumerate(scenario.urls):
        meter.reset(scenario.by_sql if i >= WARM_UP else None)
        started = time.perf_counter()
        cpu_started = time.process_time()
        response = client.get(url, secure=True, headers=scenario.headers)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        if i < WARM_UP:
            continue
        scenario.times_ms.append(elapsed * 1000)
        scenario.cpu_ms.append(cpu * 1000)
        scenario.queries.append(meter.count)
        scenario.db_ms.append(meter.seconds * 1000)


def measure_ingest(count: int, seed: int, meter: QueryMeter) -> Scenario:
    """``message_ingest`` of ``count`` new messages into the large space.

    Every other one is a reply to a message already archived (In-Reply-To and
    References), so that threading looks its parent up among all the others.
    Adds ``count`` + WARM_UP messages to the space.
    """
    import mailgen

    from mailarchive.models import Message
    from mailarchive.services import message_ingest
    from spaces.models import Space

    rng = random.Random(seed)
    space = Space.objects.get(key=SPACE_KEY)
    last_pk = Message.objects.order_by("-pk").values_list("pk", flat=True).first()
    generator = mailgen.MailboxGenerator(seed)
    scenario = Scenario("ingest", "ingest", [])
    for i in range(count + WARM_UP):
        raw = generator.message()
        if i % 2 == 0 and b"\nIn-Reply-To:" not in raw:
            parent = (
                Message.objects.filter(pk__gte=rng.randint(1, last_pk or 1))
                .order_by("pk")
                .values_list("message_id", flat=True)
                .first()
            )
            if parent:
                raw = (
                    f"In-Reply-To: <{parent}>\nReferences: <{parent}>\n".encode() + raw
                )
        meter.reset(scenario.by_sql if i >= WARM_UP else None)
        started = time.perf_counter()
        cpu_started = time.process_time()
        message_ingest(space_id=space.pk, raw=raw, source="import")
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if i < WARM_UP:
            continue
        scenario.times_ms.append(elapsed * 1000)
        scenario.cpu_ms.append(cpu * 1000)
        scenario.queries.append(meter.count)
        scenario.db_ms.append(meter.seconds * 1000)
    return scenario


def explain(scenario: Scenario) -> str:
    """EXPLAIN ANALYZE of the query that took ``scenario`` the most time in all."""
    from django.db import connection

    sql, (seconds, calls, params) = max(
        scenario.by_sql.items(), key=lambda item: item[1][0]
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return (
        f"--- {scenario.name}: its costliest query, {calls} calls, "
        f"{seconds * 1000 / calls:.1f} ms each on average\n"
        f"{sql}\n{params!r}\n{plan}\n"
    )


def profile(client: Any, scenario: Scenario) -> str:
    """A pyinstrument profile of requesting every URL of ``scenario`` once."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    with profiler:
        for url in scenario.urls:
            client.get(url, secure=True, headers=scenario.headers)
    return profiler.output_text(unicode=True, color=False, show_all=False)


def run(
    *,
    db_url: str,
    data_dir: Path,
    requests: int,
    seed: int,
    search_en: str,
    search_ja: str,
    search_absent: str,
    ingest_count: int,
    do_explain: bool,
    profile_name: str | None,
) -> dict[str, Any]:
    """Measure every scenario; returns the summaries (and plans when asked)."""
    os.environ.update(django_env(db_url, data_dir))
    # Static files are served by the web server in production, not measured here.
    (data_dir / "static").mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from mailarchive.models import Message

    client = Client(HTTP_HOST="localhost")
    client.force_login(
        get_user_model().objects.get(username=ADMIN),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    # A personal API token of the same admin, made (and revoked) for this run
    # only; the rate limit is lifted so that it measures the API, not the limit.
    from django.conf import settings

    from api.services import api_token_create, api_token_revoke

    settings.MAILARCHIVE_API_RATE = "1000000/second"
    admin = get_user_model().objects.get(username=ADMIN)
    token = api_token_create(user=admin, name="bench/scale.py")
    api_headers = {"authorization": f"Bearer {token.secret}"}
    scenarios = _scenarios(
        requests, seed, search_en, search_ja, search_absent, api_headers
    )
    messages = Message.objects.count()
    with _metered() as meter:
        for scenario in scenarios:
            print(f"  measuring {scenario.name}", file=sys.stderr, flush=True)
            measure(client, scenario, meter)
        if ingest_count:
            print("  measuring ingest", file=sys.stderr, flush=True)
            scenarios.append(measure_ingest(ingest_count, seed, meter))
    api_token_revoke(user=admin, token_id=token.token.pk)
    result: dict[str, Any] = {
        "messages": messages,
        "requests": requests,
        "scenarios": [s.summary() for s in scenarios],
    }
    if do_explain:
        result["explain"] = "\n".join(explain(s) for s in scenarios)
    if profile_name:
        chosen = next(s for s in scenarios if s.name == profile_name)
        result["profile"] = profile(client, chosen)
    return result


def report(result: dict[str, Any]) -> str:
    """The table of results, with each target and whether it was met."""
    rows = []
    for s in result["scenarios"]:
        rows.append(
            [
                s["name"],
                s["p50_ms"],
                s["p95_ms"],
                s["max_ms"],
                s["cpu_p50_ms"],
                s["queries"],
                f"{s['db_share'] * 100:.0f} %",
                "" if s["matches"] is None else s["matches"],
                "" if s["target_ms"] is None else f"<= {s['target_ms']:.0f}",
                {True: "yes", False: "NO", None: ""}[s["met"]],
            ]
        )
    headers = [
        "page", "p50 ms", "p95 ms", "max ms", "CPU p50 ms", "SQL", "in DB",
        "matches", "target p95", "met",
    ]  # fmt: skip
    return (
        f"{result['messages']:,} messages, {result['requests']} requests per page\n"
        + table(headers, rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=database_url(SERVER_URL, DATABASE))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--search-en", default=SEARCH_EN)
    parser.add_argument("--search-ja", default=SEARCH_JA)
    parser.add_argument("--search-absent", default=SEARCH_ABSENT)
    parser.add_argument(
        "--ingest",
        type=int,
        default=INGEST_COUNT,
        help="messages to archive into the space at the end (0: none)",
    )
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--profile", metavar="PAGE", help="e.g. search-ja")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(
        db_url=args.database_url,
        data_dir=args.data_dir,
        requests=args.requests,
        seed=args.seed,
        search_en=args.search_en,
        search_ja=args.search_ja,
        search_absent=args.search_absent,
        ingest_count=args.ingest,
        do_explain=args.explain,
        profile_name=args.profile,
    )
    print(report(result))
    if "explain" in result:
        print("\n" + result["explain"])
    if "profile" in result:
        print("\n" + result["profile"])
    write_json(args.json, result)


if __name__ == "__main__":
    main()
