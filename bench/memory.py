"""Peak memory: polling a large mailbox, archiving one huge message, importing mbox.

1. ``manage.py fetchmail`` polling a Dovecot INBOX of ``--mailbox`` messages
   (default 100,000; mostly small text, some HTML, a few attachments up to
   200 KB) over IMAPS into a fresh PostgreSQL database: peak RSS of that
   process (target: under 300 MB) and its throughput.
2. ``fetchmail`` archiving one message of ``--large-mb`` MB (default 50, just
   under ``MAILARCHIVE_MAX_MESSAGE_BYTES``): a short text and a PDF attachment.
3. Importing a generated mbox of ``--mbox-mb`` MiB (default 1024) through
   ``importmbox``'s service, against ``mailbox.mbox`` merely reading it —
   delegated to ``bench/import_mbox.py``, whose figures are parsed from its
   output.

Peak RSS is ``ru_maxrss`` of the measured process and of every descendant it
waited for (its parse and text-reading processes), taken by ``wait4`` in a
small process between this one and the command (see ``run_measured``). Prints
a table; asserts nothing.

    .venv/bin/python bench/memory.py --mailbox 100000
    .venv/bin/python bench/memory.py --mailbox 2000 --mbox-mb 20
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import mailgen  # noqa: E402
from common import (  # noqa: E402
    PYTHON,
    ROOT,
    SERVER_URL,
    exit_on_sigterm,
    run_measured,
    table,
    write_json,
)
from ingest import dovecot_server, run_archive, seed_mailbox  # noqa: E402

TARGET_MIB = 300
_IMPORT_LINE = re.compile(
    r"^\s*(?P<who>mailbox\.mbox read|archive import):\s+(?P<messages>\d+) messages in"
    r"\s+(?P<seconds>[\d.]+) s =\s+(?P<rate>[\d.]+) msg/s,\s+(?P<mibs>[\d.]+) MiB/s,"
    r" peak RSS (?P<rss>\d+) MiB",
    re.MULTILINE,
)
_SECURED_LINE = re.compile(
    r"^\s*archive secured:\s+(?P<messages>\d+) messages in\s+(?P<seconds>[\d.]+) s ="
    r"\s+(?P<rate>[\d.]+) msg/s",
    re.MULTILINE,
)
_FILE_LINE = re.compile(r"^file: (?P<mib>\d+) MiB, (?P<messages>\d+) messages", re.M)


def poll_large_mailbox(count: int, seed: int) -> dict[str, Any]:
    """Peak RSS and throughput of polling ``count`` messages in one go."""
    with dovecot_server() as server:
        print(f"  seeding {count:,} messages", file=sys.stderr, flush=True)
        box = seed_mailbox(server, count, seed=seed, mix=mailgen.SMALL)
        print("  polling them with fetchmail", file=sys.stderr, flush=True)
        run = run_archive(server, "imaps", box, label="poll")[-1]
    return run.as_dict()


def archive_large_message(megabytes: int) -> dict[str, Any]:
    """Peak RSS of archiving one message of ``megabytes`` MB."""
    raw = mailgen.one_large_message(megabytes * 1_000_000)
    with dovecot_server() as server:
        box = seed_mailbox(server, 1, seed=0, raws=[raw])
        run = run_archive(server, "imaps", box, label="large")[-1]
    return run.as_dict()


def import_mbox(megabytes: int) -> dict[str, Any]:
    """``bench/import_mbox.py`` on PostgreSQL, its figures parsed from its output."""
    cmd = [
        PYTHON,
        str(ROOT / "bench" / "import_mbox.py"),
        "--megabytes",
        str(megabytes),
        "--postgres",
        SERVER_URL,
    ]
    measured = run_measured(cmd)
    figures = {m["who"]: m.groupdict() for m in _IMPORT_LINE.finditer(measured.stdout)}
    if set(figures) != {"mailbox.mbox read", "archive import"}:
        raise RuntimeError(
            "bench/import_mbox.py printed no figures this script understands:\n"
            + measured.stdout
        )
    file_line = _FILE_LINE.search(measured.stdout)
    secured = _SECURED_LINE.search(measured.stdout)
    return {
        "secured": (
            {k: float(v) for k, v in secured.groupdict().items()} if secured else None
        ),
        "file_mib": int(file_line["mib"]) if file_line else megabytes,
        "command": " ".join(cmd[1:]),
        "output": measured.stdout.strip(),
        "stdlib": {
            k: float(v) for k, v in figures["mailbox.mbox read"].items() if k != "who"
        },
        "import": {
            k: float(v) for k, v in figures["archive import"].items() if k != "who"
        },
    }


def measure(mailbox: int, large_mb: int, mbox_mb: int, seed: int) -> dict[str, Any]:
    """All three measurements; a size of 0 skips that one."""
    result: dict[str, Any] = {}
    if mailbox:
        result["poll"] = poll_large_mailbox(mailbox, seed)
    if large_mb:
        result["large"] = archive_large_message(large_mb)
    if mbox_mb:
        result["import"] = import_mbox(mbox_mb)
    return result


def report(result: dict[str, Any]) -> str:
    rows = []
    if "poll" in result:
        poll = result["poll"]
        rows.append(
            [
                f"fetchmail, IMAPS mailbox of {poll['expected']:,} messages",
                round(poll["peak_rss_mib"]),
                f"< {TARGET_MIB}",
                "yes" if poll["peak_rss_mib"] < TARGET_MIB else "NO",
                f"{poll['messages_per_second']} msg/s, {poll['mb_per_second']} MB/s"
                + (f", {poll['note']}" if poll["note"] else ""),
            ]
        )
    if "large" in result:
        large = result["large"]
        rows.append(
            [
                f"fetchmail, one {large['bytes'] / 1e6:.1f} MB message",
                round(large["peak_rss_mib"]),
                "",
                "",
                f"{large['seconds']:.1f} s"
                + (f", {large['note']}" if large["note"] else ""),
            ]
        )
    if "import" in result:
        imported, stdlib = result["import"]["import"], result["import"]["stdlib"]
        rows.append(
            [
                f"import of a {result['import']['file_mib']} MiB mbox",
                round(imported["rss"]),
                f"< {TARGET_MIB}",
                "yes" if imported["rss"] < TARGET_MIB else "NO",
                f"{imported['rate']:.0f} msg/s vs mailbox.mbox reading "
                f"{stdlib['rate']:.0f} msg/s ({stdlib['rss']:.0f} MiB)",
            ]
        )
    return table(["what", "peak RSS MiB", "target", "met", "throughput"], rows)


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailbox", type=int, default=100_000)
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--mbox-mb", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = measure(args.mailbox, args.large_mb, args.mbox_mb, args.seed)
    print(report(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
