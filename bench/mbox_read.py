"""Read throughput of the streaming mbox reader against ``mailbox.mbox``.

Generates an mboxrd file of about ``--megabytes`` MiB (plain-text and base64
messages of mixed sizes, some with ``From `` lines in their bodies), reads it
with both readers and prints messages, MiB/s and the peak memory of each. Prints
only; nothing is asserted.

    .venv/bin/python bench/mbox_read.py --megabytes 200
"""

from __future__ import annotations

import argparse
import base64
import mailbox
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailarchive.mbox import iter_mbox, write_mboxrd  # noqa: E402


def _message(rng: random.Random, number: int) -> bytes:
    size = rng.choice([2_000, 8_000, 40_000, 300_000])
    head = (
        f"From: sender{number}@example.com\nTo: team@example.com\n"
        f"Subject: message {number}\nMessage-ID: <{number}@example.com>\n"
    ).encode()
    if rng.random() < 0.5:
        text = (b"Some words of the body.\nFrom the archive, a line.\n" * size)[:size]
        return head + b"Content-Type: text/plain\n\n" + text + b"\n"
    payload = base64.encodebytes(rng.randbytes(size * 3 // 4))
    return head + b"Content-Transfer-Encoding: base64\n\n" + payload


def generate(path: Path, megabytes: int) -> int:
    """Write the benchmark file; returns how many messages it holds."""
    rng = random.Random(20240601)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    count = 0
    with path.open("wb") as out:
        while out.tell() < megabytes << 20:
            date = start + timedelta(minutes=count)
            write_mboxrd(out, _message(rng, count), envelope_sender="a@b", date=date)
            count += 1
    return count


def _with_stdlib(path: Path) -> int:
    box = mailbox.mbox(path, create=False)
    try:
        return sum(1 for key in box.iterkeys() if box.get_bytes(key) is not None)
    finally:
        box.close()


def _with_stream(path: Path) -> int:
    with path.open("rb") as fp:
        return sum(1 for _ in iter_mbox(fp))


def measure(name: str, read: Callable[[Path], int], path: Path) -> None:
    """Print one reader's message count, throughput and peak traced memory."""
    megabytes = path.stat().st_size / (1 << 20)
    started = time.perf_counter()
    count = read(path)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    read(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"{name:>14}: {count} messages, {megabytes / seconds:7.1f} MiB/s, "
        f"peak {peak / (1 << 20):6.1f} MiB"
    )


def main() -> None:
    """Generate the file in a temporary folder and measure both readers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mbox"
        count = generate(path, args.megabytes)
        print(f"generated {count} messages, {path.stat().st_size >> 20} MiB")
        measure("iter_mbox", _with_stream, path)
        measure("mailbox.mbox", _with_stdlib, path)


if __name__ == "__main__":
    main()
