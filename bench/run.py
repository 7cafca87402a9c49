"""Run every benchmark and write ``docs/benchmarks.md`` with a chart.

``make bench`` runs the full set (1,000,000-message scale, 5,000-message ingest,
a 100,000-message poll, a 50 MB message and a 1 GiB mbox import; about half an hour
on two cores, then reading attachments' text: 50 documents of each kind and a
3,000-message import read with and without it); ``make bench-quick`` the same
with small sizes in under five minutes, and two or three more for the
attachment text. Each benchmark runs as its own process and leaves its figures in
``var/bench/results/``; this script prints one summary with the ratios and
targets, writes ``docs/benchmarks.md`` (machine, versions, commands, results,
method) and ``docs/benchmarks-ingest.png``. Nothing is asserted: the figures
are reported whether the targets are met or not.

    .venv/bin/python bench/run.py            # full
    .venv/bin/python bench/run.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH_VAR,
    PYTHON,
    ROOT,
    SERVER_URL,
    database_drop,
    database_url,
    exit_on_sigterm,
    machine,
    markdown_table,
    stop_child,
)

RESULTS = BENCH_VAR / "results"
DOC = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "benchmarks-ingest.png"
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"


@dataclass(frozen=True)
class Profile:
    name: str
    scale_messages: int
    scale_requests: int
    ingest_messages: int
    poll_messages: int
    large_mb: int
    mbox_mb: int
    database: str
    # Messages for bench/ingest_vs_imaplib.py, a second opinion (0: not run).
    crosscheck_messages: int = 0
    # bench/extract.py: documents of each kind, messages of its import.
    extract_documents: int = 10
    extract_messages: int = 600


FULL = Profile(
    "full",
    1_000_000,
    50,
    5_000,
    100_000,
    50,
    1024,
    "mailarchive_scale",
    2_000,
    extract_documents=50,
    extract_messages=3_000,
)
QUICK = Profile("quick", 20_000, 20, 300, 1_000, 50, 20, "mailarchive_scale_quick")


def _step(name: str, args: list[str]) -> tuple[dict[str, Any], str, float]:
    """Run one benchmark script; returns its JSON, its command and its seconds."""
    out = RESULTS / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [PYTHON, str(ROOT / "bench" / args[0]), *args[1:], "--json", str(out)]
    shown = ".venv/bin/python bench/" + " ".join(args)
    print(f"\n== {shown}", flush=True)
    started = time.perf_counter()
    _run_child(cmd)
    return json.loads(out.read_text()), shown, time.perf_counter() - started


def _run_child(cmd: list[str], **kwargs: Any) -> str:
    """Run a benchmark script; stopped politely (SIGTERM) if this run is stopped."""
    process = subprocess.Popen(cmd, cwd=ROOT, text=True, **kwargs)
    try:
        stdout, _stderr = process.communicate()
    except BaseException:
        stop_child(process)
        raise
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, cmd)
    return stdout or ""


def _step_text(args: list[str]) -> tuple[dict[str, Any], str, float]:
    """Run a benchmark script that only prints; keeps its output as it is."""
    cmd = [PYTHON, str(ROOT / "bench" / args[0]), *args[1:]]
    shown = ".venv/bin/python bench/" + " ".join(args)
    print(f"\n== {shown}", flush=True)
    started = time.perf_counter()
    stdout = _run_child(cmd, stdout=subprocess.PIPE)
    print(stdout, end="", flush=True)
    return {"output": stdout.strip()}, shown, time.perf_counter() - started


def chart(ingest: dict[str, Any], path: Path) -> None:
    """Messages/s per protocol for limit, archive and peer, as grouped bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = list(ingest["ratios"])
    contenders = [
        ("limit", "#9e9e9e"),
        ("archive secured", "#aec7e8"),
        ("archive", "#1f77b4"),
        ("peer", "#ff7f0e"),
    ]
    labels = {
        "limit": "limit (plain imaplib/poplib, discard)",
        "archive secured": "mailarchive, server empty",
        "archive": "mailarchive fetchmail",
        "peer": f"django-mailbox {ingest.get('peer_version') or ''}".strip(),
    }
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    width = 0.26
    for k, (who, colour) in enumerate(contenders):
        values = []
        for protocol in protocols:
            run = next(
                (
                    r
                    for r in ingest["runs"]
                    if r["protocol"] == protocol and r["contender"] == who
                ),
                None,
            )
            values.append(run["messages_per_second"] if run else 0)
        positions = [i + (k - 1) * width for i in range(len(protocols))]
        bars = axes.bar(positions, values, width, label=labels[who], color=colour)
        axes.bar_label(bars, fmt="%.0f", fontsize=8, padding=2)
    axes.set_xticks(range(len(protocols)), [p.upper() for p in protocols])
    axes.set_yscale("log")
    axes.set_ylabel("messages per second (log scale)")
    axes.set_title(
        f"Ingest of {ingest['messages']:,} realistic messages from Dovecot into "
        "PostgreSQL"
    )
    axes.legend(fontsize=8, loc="upper right")
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _scale_rows(scale: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for s in scale["scenarios"]:
        rows.append(
            [
                s["name"],
                s["p50_ms"],
                s["p95_ms"],
                s["max_ms"],
                s["cpu_p50_ms"],
                s["queries"],
                f"{s['db_share'] * 100:.0f} %",
                "" if s["matches"] is None else f"{s['matches']:,}",
                "" if s["target_ms"] is None else f"≤ {s['target_ms']:.0f}",
                {True: "yes", False: "**no**", None: ""}[s["met"]],
            ]
        )
    return rows


def _ingest_rows(ingest: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for r in ingest["runs"]:
        rows.append(
            [
                r["protocol"].upper(),
                r["contender"],
                r["messages"],
                round(r["bytes"] / 1e6, 1),
                round(r["seconds"], 2),
                r["messages_per_second"],
                r["mb_per_second"],
                round(r["peak_rss_mib"]),
                r["note"],
            ]
        )
    return rows


def _ratio_rows(ingest: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for protocol, ratio in ingest["ratios"].items():
        limit = ratio["secured_vs_limit"]
        alone = ratio.get("secured_alone_vs_limit")
        peer = ratio.get("complete_vs_peer")
        rows.append(
            [
                protocol.upper(),
                f"{limit:.2f}",
                "yes" if limit >= 0.5 else "**no**",
                "" if alone is None else f"{alone:.2f}",
                "" if peer is None else f"{peer:.2f}",
                "" if peer is None else ("yes" if peer >= 10 else "**no**"),
            ]
        )
    return rows


def _memory_rows(memory: dict[str, Any]) -> list[list[Any]]:
    rows = []
    if "poll" in memory:
        poll = memory["poll"]
        rows.append(
            [
                f"fetchmail polling an IMAPS mailbox of {poll['expected']:,} messages "
                f"({poll['bytes'] / 1e6:.0f} MB)",
                round(poll["peak_rss_mib"]),
                "< 300",
                "yes" if poll["peak_rss_mib"] < 300 else "**no**",
                f"{poll['messages_per_second']} msg/s in {poll['seconds']:.0f} s"
                + (f"; {poll['note']}" if poll["note"] else ""),
            ]
        )
    if "large" in memory:
        large = memory["large"]
        rows.append(
            [
                f"fetchmail archiving one {large['bytes'] / 1e6:.1f} MB message",
                round(large["peak_rss_mib"]),
                "",
                "",
                f"{large['seconds']:.1f} s"
                + (f"; {large['note']}" if large["note"] else ""),
            ]
        )
    if "import" in memory:
        imported = memory["import"]["import"]
        stdlib = memory["import"]["stdlib"]
        rows.append(
            [
                f"importing a {memory['import']['file_mib']} MiB mbox "
                f"({imported['messages']:,.0f} messages) into PostgreSQL",
                round(imported["rss"]),
                "< 300",
                "yes" if imported["rss"] < 300 else "**no**",
                f"{imported['rate']:.0f} msg/s, {imported['mibs']:.1f} MiB/s; "
                f"`mailbox.mbox` merely reading it: {stdlib['rate']:.0f} msg/s, "
                f"{stdlib['rss']:.0f} MiB",
            ]
        )
    return rows


def document(
    profile: Profile,
    results: dict[str, dict[str, Any]],
    commands: dict[str, str],
    seconds: dict[str, float],
    info: dict[str, str],
    when: str,
) -> str:
    """``docs/benchmarks.md``: what was measured, how, on what, and the figures."""
    generated = results["generate"]
    scale = results["scale"]
    ingest = results["ingest"]
    memory = results["memory"]
    make = "make bench" if profile.name == "full" else "make bench-quick"
    parts = [
        "# Benchmarks",
        "",
        f"Generated by `{make}` (`bench/run.py`, profile *{profile.name}*) on "
        f"{when}. Every figure below comes from that one run; nothing here is "
        "asserted by the test suite. Re-run the command to reproduce them.",
        "",
        "## Machine and versions",
        "",
        markdown_table(["", ""], [[k, v] for k, v in info.items()]),
        "",
        "## Commands",
        "",
        "```sh",
        *commands.values(),
        "```",
        "",
        "Wall time per step: "
        + ", ".join(f"{name} {seconds[name]:.0f} s" for name in seconds)
        + ".",
        "",
        f"## Reading at scale: {generated['count']:,} messages in one space",
        "",
        f"`bench/generate.py` loaded {generated['count']:,} messages "
        f"({generated['rows']['threads']:,} threads, "
        f"{generated['rows']['attachments']:,} attachments, "
        f"{generated['rows']['references']:,} reference rows) into PostgreSQL in "
        f"{generated['seconds']:.0f} s ({generated['messages_per_second']:,} "
        f"messages/s, {generated['workers']} loaders; database "
        f"{generated['database_bytes'] / (1 << 30):.1f} GiB). Phases: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in generated["timings"].items())
        + ".",
        "",
        f"Server time of {scale['requests']} requests per page (after three "
        "warm-up requests), in-process through Django's test `Client` as a site "
        "admin: the whole Django stack (middleware, session, permission check, "
        "view, selectors, templates), no network and no WSGI server. *CPU* is the "
        "median CPU time of the Python process per request (the rest of the "
        "wall time is waiting for PostgreSQL or for a core), *SQL* the number "
        "of queries of one request, *in DB* the share of the time spent "
        "waiting for PostgreSQL. The last row, *ingest*, is `message_ingest` of "
        "new messages into the same space (half of them replies to archived "
        "messages), timed per message: it has no target, but shows any cost "
        "that grows with the size of the space.",
        "",
        markdown_table(
            [
                "page",
                "p50 ms",
                "p95 ms",
                "max ms",
                "CPU p50 ms",
                "SQL",
                "in DB",
                "matches",
                "target p95 ms",
                "met",
            ],
            _scale_rows(scale),
        ),  # fmt: skip
        "",
        "## Ingest: fetchmail against the limit and the peer",
        "",
        f"A Dovecot mailbox of {ingest['messages']:,} generated messages (mostly "
        "small text, 20 % HTML, 12 % with an attachment of 20 KB to 500 KB, 3 % "
        "of all with one of 1 to 3 MB; English and Japanese). Each contender "
        "fetched its own copy of the same mailbox; times run from connect to "
        "logout inside the contender's process. *limit*: plain imaplib (UID "
        "FETCH of 100 messages at a time) or poplib (RETR) keeping nothing. "
        "*archive*: `manage.py fetchmail` storing raw bytes durably (fsync), "
        "parsing, threading, indexing for search, then deleting on the server. "
        f"*peer*: django-mailbox {ingest.get('peer_version') or ''} "
        "`Mailbox.get_new_mail()` with `DJANGO_MAILBOX_STORE_ORIGINAL_MESSAGE`, "
        "into its own PostgreSQL database.",
        "",
        markdown_table(
            [
                "protocol",
                "who",
                "messages",
                "MB",
                "s",
                "msg/s",
                "MB/s",
                "peak RSS MiB",
                "note",
            ],
            _ingest_rows(ingest),
        ),  # fmt: skip
        "",
        markdown_table(
            [
                "protocol",
                "secured / limit",
                "≥ 0.5",
                "secured / limit, --no-wait",
                "complete / peer",
                "≥ 10",
            ],
            _ratio_rows(ingest),
        ),
        "",
        f"![Ingest throughput per protocol]({CHART.name})",
        "",
        *(
            [
                "A second opinion from `bench/ingest_vs_imaplib.py` (the poll "
                "service in-process against imaplib, on the test suite's own "
                "message generator), same run:",
                "",
                "```",
                results["crosscheck"]["output"],
                "```",
                "",
            ]
            if "crosscheck" in results
            else []
        ),
        "## Memory",
        "",
        "Peak resident memory (`ru_maxrss` of the measured process).",
        "",
        markdown_table(
            ["what", "peak RSS MiB", "target", "met", "throughput"],
            _memory_rows(memory),
        ),
        "",
        *(_extract_section(results["extract"]) if "extract" in results else []),
    ]
    if ANALYSIS.exists():
        parts += [ANALYSIS.read_text().strip(), ""]
    return "\n".join(parts)


def _extract_section(extract: dict[str, Any]) -> list[str]:
    """The part of ``docs/benchmarks.md`` on reading attachments' text."""
    rows = [
        [
            kind,
            figures["documents"],
            round(figures["bytes"] / figures["documents"] / 1000, 1),
            round(figures["documents"] / figures["seconds"], 1),
            round(figures["bytes"] / figures["seconds"] / 1e6, 2),
            figures["failed"],
        ]
        for kind, figures in extract["extraction"].items()
    ]
    ingest = extract["ingest"]
    runs = [
        [
            "on" if run["reading"] else "off",
            round(run["seconds"], 1),
            round(run["messages_per_second"], 1),
            round(run["peak_rss_mib"]),
        ]
        for run in (ingest["off"], ingest["on"])
    ]
    return [
        "## Reading the text of attachments",
        "",
        "`bench/extract.py`. Extraction: distinct generated documents of each "
        "kind read through the extraction processes as the index stage reads "
        "them (one per core, the default budget); MB are the files' bytes.",
        "",
        markdown_table(
            ["kind", "documents", "kB each", "documents/s", "MB/s", "failed"], rows
        ),
        "",
        f"Cost on ingest: {ingest['messages']:,} generated messages, "
        f"{ingest['with_documents']:,} of them with one real document, imported "
        "with `importmbox` (secure and index stage) into a fresh PostgreSQL "
        "database with reading off and on.",
        "",
        markdown_table(["reading", "s", "msg/s", "peak RSS MiB"], runs),
        "",
        f"Reading attachments costs {ingest['cost']:.0%} of ingest throughput.",
        "",
    ]


def summary(results: dict[str, dict[str, Any]]) -> str:
    """The figures that matter, one line each, for the terminal."""
    lines = ["", "== summary"]
    for s in results["scale"]["scenarios"]:
        lines.append(
            f"  {s['name']:<13} p50 {s['p50_ms']:7.1f} ms  p95 {s['p95_ms']:7.1f} ms  "
            f"{s['queries']:2} SQL"
            + (
                ""
                if s["target_ms"] is None
                else f"  target {s['target_ms']:.0f} ms: "
                + ("met" if s["met"] else "MISSED")
            )
        )
    for protocol, ratio in results["ingest"]["ratios"].items():
        limit = ratio["secured_vs_limit"]
        line = (
            f"  {protocol.upper():<5} secured/limit {limit:.2f} "
            f"(>= 0.5: {'met' if limit >= 0.5 else 'MISSED'})"
        )
        if "secured_alone_vs_limit" in ratio:
            line += f", --no-wait {ratio['secured_alone_vs_limit']:.2f}"
        peer = ratio.get("complete_vs_peer")
        if peer is not None:
            met = "met" if peer >= 10 else "MISSED"
            line += f", complete/peer {peer:.2f} (>= 10: {met})"
        lines.append(line)
    memory = results["memory"]
    if "poll" in memory:
        rss = memory["poll"]["peak_rss_mib"]
        lines.append(
            f"  poll of {memory['poll']['expected']:,} messages: "
            f"peak RSS {rss:.0f} MiB (< 300: {'met' if rss < 300 else 'MISSED'})"
        )
    if "large" in memory:
        lines.append(
            f"  one {memory['large']['bytes'] / 1e6:.1f} MB message: peak RSS "
            f"{memory['large']['peak_rss_mib']:.0f} MiB"
        )
    if "import" in memory:
        imported = memory["import"]["import"]
        lines.append(
            f"  mbox import: peak RSS {imported['rss']:.0f} MiB, "
            f"{imported['rate']:.0f} msg/s vs mailbox.mbox "
            f"{memory['import']['stdlib']['rate']:.0f} msg/s"
        )
        secured = memory["import"].get("secured")
        if secured:
            ratio = secured["rate"] / memory["import"]["stdlib"]["rate"]
            lines.append(
                f"  mbox import secured: {secured['rate']:.0f} msg/s, "
                f"{ratio:.2f} of mailbox.mbox (>= 0.5: "
                f"{'met' if ratio >= 0.5 else 'MISSED'})"
            )
    if "extract" in results:
        mixed = results["extract"]["extraction"]["all"]
        lines.append(
            f"  attachment text: {mixed['documents'] / mixed['seconds']:.1f} "
            f"documents/s, {mixed['bytes'] / mixed['seconds'] / 1e6:.2f} MB/s; "
            f"costs {results['extract']['ingest']['cost']:.0%} of ingest"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 5 min")
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the scale database afterwards"
    )
    parser.add_argument(
        "--document-only",
        action="store_true",
        help="rewrite the document and chart from the last run's figures",
    )
    args = parser.parse_args()
    if args.document_only:
        path = RESULTS / "run.json"
        saved = json.loads(path.read_text())
        finished = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        write_outputs(
            Profile(**saved["profile"]),
            saved["results"],
            saved["commands"],
            saved["seconds"],
            saved["machine"],
            saved.get("when") or finished.strftime("%Y-%m-%d %H:%M UTC"),
        )
        return
    exit_on_sigterm()
    profile = QUICK if args.quick else FULL
    # Another clone may be benchmarking against the same PostgreSQL server.
    database = f"{profile.database}_{os.getpid()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = machine()
    results: dict[str, dict[str, Any]] = {}
    commands: dict[str, str] = {}
    seconds: dict[str, float] = {}
    steps = [
        (
            "generate",
            [
                "generate.py",
                "--count", str(profile.scale_messages),
                "--database", database,
            ],
        ),
        (
            "scale",
            [
                "scale.py",
                "--requests", str(profile.scale_requests),
                "--database-url", database_url(SERVER_URL, database),
            ],
        ),
        (
            "ingest",
            [
                "ingest.py",
                "--messages", str(profile.ingest_messages),
                "--workers", "1,2,4",
                "--sqlite",
            ],
        ),
        (
            "memory",
            [
                "memory.py",
                "--mailbox", str(profile.poll_messages),
                "--large-mb", str(profile.large_mb),
                "--mbox-mb", str(profile.mbox_mb),
            ],
        ),
        (
            "extract",
            [
                "extract.py",
                "--documents", str(profile.extract_documents),
                "--messages", str(profile.extract_messages),
            ],
        ),
    ]  # fmt: skip
    try:
        for name, step in steps:
            results[name], commands[name], seconds[name] = _step(name, step)
        if profile.crosscheck_messages:
            crosscheck = ["ingest_vs_imaplib.py", "--messages"]
            crosscheck.append(str(profile.crosscheck_messages))
            results["crosscheck"], commands["crosscheck"], seconds["crosscheck"] = (
                _step_text(crosscheck)
            )
    finally:
        if args.keep_db:
            print(f"kept the database {database}", flush=True)
        else:
            database_drop(SERVER_URL, database)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (RESULTS / "run.json").write_text(
        json.dumps(
            {
                "when": when,
                "profile": asdict(profile),
                "machine": info,
                "results": results,
                "commands": commands,
                "seconds": seconds,
            },
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
    write_outputs(profile, results, commands, seconds, info, when)
    print(summary(results))
    print(f"\nwrote {DOC.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")


def write_outputs(
    profile: Profile,
    results: dict[str, dict[str, Any]],
    commands: dict[str, str],
    seconds: dict[str, float],
    info: dict[str, str],
    when: str,
) -> None:
    """Write the chart and ``docs/benchmarks.md``. Overwrites both."""
    chart(results["ingest"], CHART)
    DOC.write_text(document(profile, results, commands, seconds, info, when))


if __name__ == "__main__":
    main()
