"""Reading attachments' text: how fast, and what it costs the whole ingest.

1. **Extraction throughput.** ``--documents`` distinct documents of each kind
   the archive reads (``bench/docgen.py``: PDF in English and Japanese, Word,
   Excel, PowerPoint, OpenDocument, RTF, a Shift_JIS CSV, HTML, a ZIP of a PDF
   and a Word file) are read through the extraction processes exactly as the
   index stage reads them (the parse pool, one process per core, the default
   budget). Prints documents/s and MB/s per kind and for all of them (MB =
   10^6 bytes of the files as attached).
2. **Cost on ingest.** A generated mailbox of ``--messages`` realistic
   messages (``bench/mailgen.py``: plain text and HTML, English and Japanese,
   threads) of which 12 % carry one real document (a different one each, of a
   kind drawn at random) is imported with ``manage.py importmbox`` — secure
   and index stage, the complete ingest — into a fresh PostgreSQL database
   twice: with reading attachments off (``MAILARCHIVE_ATTACHMENT_TEXT=off``)
   and on. Prints messages/s of each and the cost of reading.

Asserts nothing. Needs PostgreSQL (``BENCH_POSTGRES_URL``, default the local
server); scratch databases ``mailarchive_bench_extract_*`` are created and
dropped.

    .venv/bin/python bench/extract.py --quick     # about two minutes
    .venv/bin/python bench/extract.py --documents 100 --messages 5000
"""

from __future__ import annotations

import argparse
import mailbox
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import docgen  # noqa: E402
import mailgen  # noqa: E402
from common import (  # noqa: E402
    PYTHON,
    ROOT,
    SERVER_URL,
    database_drop,
    database_recreate,
    django_env,
    exit_on_sigterm,
    manage,
    run_measured,
    table,
    write_json,
)

from mailarchive.extract import (  # noqa: E402
    EXTRACT_TARGET,
    OK,
    ExtractRequest,
    ExtractResult,
    encode_request,
)
from mailarchive.parsing.pool import (  # noqa: E402
    OverBudget,
    ParseBudget,
    close_idle,
    parse_many,
)

DOCUMENT_SHARE = 0.12
# The defaults of MAILARCHIVE_EXTRACT_TIME_LIMIT and …_MEMORY_LIMIT.
BUDGET = ParseBudget(seconds=30.0, memory_bytes=1024 * 1024 * 1024)
MAX_CHARS = 200_000


def _read_all(docs: Sequence[docgen.Doc], workers: int) -> tuple[float, int, int]:
    """Seconds to read ``docs`` through the pool; (seconds, read, failed)."""
    requests = [
        encode_request(
            ExtractRequest(
                content_type=doc.content_type,
                filename=doc.filename,
                data=doc.data,
                max_chars=MAX_CHARS,
                soft_seconds=BUDGET.seconds * 0.8,
            )
        )
        for doc in docs
    ]
    started = time.perf_counter()
    ok = failed = 0
    for _key, result in parse_many(
        ((n, (lambda r=r: r)) for n, r in enumerate(requests)),
        budget=BUDGET,
        workers=workers,
        target=EXTRACT_TARGET,
    ):
        if isinstance(result, ExtractResult) and result.status == OK:
            ok += 1
        elif isinstance(result, OverBudget | ExtractResult):
            failed += 1
    return time.perf_counter() - started, ok, failed


def extraction(documents: int, workers: int) -> dict[str, Any]:
    """Documents/s and MB/s of each kind, read through the pool."""
    # Start the processes (and their imports) before the clock runs.
    _read_all([docgen.document(kind, 0) for kind in docgen.MAKERS], workers)
    rows: list[list[Any]] = []
    everything: list[docgen.Doc] = []
    figures: dict[str, Any] = {}
    for kind in docgen.MAKERS:
        docs = [docgen.document(kind, 1000 + n) for n in range(documents)]
        everything += docs
        seconds, ok, failed = _read_all(docs, workers)
        size = sum(len(d.data) for d in docs)
        figures[kind] = {
            "documents": len(docs),
            "bytes": size,
            "seconds": seconds,
            "read": ok,
            "failed": failed,
        }
        rows.append(
            [
                kind,
                len(docs),
                round(size / len(docs) / 1000, 1),
                round(len(docs) / seconds, 1),
                round(size / seconds / 1e6, 2),
                failed,
            ]
        )
    random.Random(5).shuffle(everything)
    seconds, ok, failed = _read_all(everything, workers)
    size = sum(len(d.data) for d in everything)
    figures["all"] = {
        "documents": len(everything),
        "bytes": size,
        "seconds": seconds,
        "read": ok,
        "failed": failed,
    }
    rows.append(
        [
            "all, mixed",
            len(everything),
            round(size / len(everything) / 1000, 1),
            round(len(everything) / seconds, 1),
            round(size / seconds / 1e6, 2),
            failed,
        ]
    )
    close_idle()
    print(f"\nExtraction, {workers} processes:")
    print(
        table(["kind", "documents", "kB each", "documents/s", "MB/s", "failed"], rows)
    )
    return figures


def _with_document(raw: bytes, doc: docgen.Doc) -> bytes:
    """``raw`` with ``doc`` attached: its own body (plain, or an HTML
    alternative) becomes the first part of a multipart/mixed."""
    head, body = raw.split(b"\n\n", 1)
    lines = head.split(b"\n")
    own = [
        line
        for line in lines
        if line.lower().startswith((b"content-type:", b"content-transfer-encoding:"))
    ]
    rest = [line for line in lines if line not in own]
    import base64
    from urllib.parse import quote

    boundary = b"=_bench-document"
    payload = base64.encodebytes(doc.data)
    return b"\n".join(
        [
            *rest,
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"',
            b"",
            b"--" + boundary,
            *own,
            b"",
            body.rstrip(b"\n"),
            b"--" + boundary,
            b"Content-Type: " + doc.content_type.encode(),
            b"Content-Transfer-Encoding: base64",
            b"Content-Disposition: attachment; filename*=utf-8''"
            + quote(doc.filename).encode(),
            b"",
            payload.rstrip(b"\n"),
            b"--" + boundary + b"--",
            b"",
        ]
    )


def mailbox_file(path: Path, messages: int) -> tuple[int, int]:
    """Write the mailbox; returns (messages with a document, bytes)."""
    generator = mailgen.MailboxGenerator(
        seed=14, mix=mailgen.MailboxMix(attachment_share=0.0)
    )
    rng = random.Random(14)
    kinds = list(docgen.MAKERS)
    box = mailbox.mbox(path)
    with_documents = 0
    try:
        for number in range(messages):
            raw = generator.message()
            if rng.random() < DOCUMENT_SHARE:
                doc = docgen.document(rng.choice(kinds), seed=number)
                raw = _with_document(raw, doc)
                with_documents += 1
            box.add(raw)
    finally:
        box.close()
    return with_documents, path.stat().st_size


def ingest(path: Path, messages: int, reading: bool) -> dict[str, Any]:
    """Import the mailbox into a fresh database; its figures."""
    name = f"mailarchive_bench_extract_{'on' if reading else 'off'}"
    data_dir = Path(tempfile.mkdtemp(prefix="mailarchive-bench-extract-"))
    try:
        env = django_env(
            database_recreate(SERVER_URL, name),
            data_dir,
            MAILARCHIVE_ATTACHMENT_TEXT="on" if reading else "off",
        )
        manage(["migrate", "--no-input"], env)
        manage(["createspace", "BENCH", "--name", "Bench"], env)
        measured = run_measured(
            [
                PYTHON,
                str(ROOT / "manage.py"),
                "importmbox",
                "--space",
                "BENCH",
                str(path),
            ],
            env,
        )
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as conn:
            texts = dict(
                conn.execute(
                    "SELECT status, count(*) FROM mailarchive_attachmenttext "
                    "GROUP BY status"
                ).fetchall()
            )
            archived = conn.execute(
                "SELECT count(*) FROM mailarchive_message"
            ).fetchone()[0]
    finally:
        database_drop(SERVER_URL, name)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "reading": reading,
        "seconds": measured.seconds,
        "messages": archived,
        "messages_per_second": messages / measured.seconds,
        "peak_rss_mib": measured.peak_rss_mib,
        "texts": texts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=50, help="per kind")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args(argv)
    exit_on_sigterm()
    if options.quick:
        options.documents, options.messages = 10, 600
    workers = os.cpu_count() or 1
    figures: dict[str, Any] = {"extraction": extraction(options.documents, workers)}

    work = Path(tempfile.mkdtemp(prefix="mailarchive-bench-mbox-"))
    try:
        path = work / "documents.mbox"
        with_documents, size = mailbox_file(path, options.messages)
        print(
            f"\nIngest: {options.messages} messages ({size / 1e6:.1f} MB), "
            f"{with_documents} of them ({with_documents / options.messages:.0%}) "
            "with a document, imported with importmbox into PostgreSQL:"
        )
        off = ingest(path, options.messages, reading=False)
        on = ingest(path, options.messages, reading=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cost = 1 - on["messages_per_second"] / off["messages_per_second"]
    print(
        table(
            ["reading attachments", "seconds", "messages/s", "peak RSS MiB", "texts"],
            [
                [
                    "on" if run["reading"] else "off",
                    round(run["seconds"], 1),
                    round(run["messages_per_second"], 1),
                    round(run["peak_rss_mib"]),
                    ", ".join(f"{k} {v}" for k, v in sorted(run["texts"].items()))
                    or "-",
                ]
                for run in (off, on)
            ],
        )
    )
    print(f"cost of reading attachments: {cost:.0%} of ingest throughput")
    figures["ingest"] = {
        "messages": options.messages,
        "with_documents": with_documents,
        "mbox_bytes": size,
        "off": off,
        "on": on,
        "cost": cost,
    }
    write_json(options.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
