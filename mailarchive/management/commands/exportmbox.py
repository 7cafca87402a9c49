"""manage.py exportmbox: every message of a space, oldest first, as mboxrd."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailarchive.exports import mbox_export_chunks, messages_for_export
from spaces.models import Space


def _write(chunks: Any, out: BinaryIO) -> int:
    count = 0
    for chunk in chunks:
        out.write(chunk)
        count += 1
    return count


class Command(BaseCommand):
    help = (
        "Write every message of a space (not the trashed ones), oldest first, as "
        "an mboxrd file: the raw bytes as received, only From-quoting added. "
        "PATH '-' writes to standard output."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--space", required=True, metavar="KEY")
        parser.add_argument("path", metavar="PATH")

    def handle(self, *args: Any, **options: Any) -> None:
        space = Space.objects.filter(key=options["space"]).first()
        if space is None:
            raise CommandError(f"No space with the key {options['space']!r}.")
        chunks = mbox_export_chunks(messages_for_export(space))
        if options["path"] == "-":
            count = _write(chunks, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            self.stderr.write(f"Exported {count} messages of {space.key}.")
            return
        path = Path(options["path"])
        # Written aside and renamed, so PATH is never a half-written file.
        partial = path.with_name(f".{path.name}.partial")
        try:
            with partial.open("wb") as out:
                count = _write(chunks, out)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise CommandError(f"Cannot write {path}: {error.strerror}.") from error
        self.stdout.write(f"Exported {count} messages of {space.key} to {path}.")
