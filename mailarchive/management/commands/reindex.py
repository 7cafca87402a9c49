"""``manage.py reindex [--space KEY] [--attachments]``: run the index stage again
over raw mail (or only over messages whose attachments were never read)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailarchive.services import messages_index_pending
from mailarchive.services.attachment_text import messages_reread_start
from mailarchive.services.index import messages_reindex_start, messages_waiting_count
from spaces.models import Space

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Parse the stored raw messages again (after a parser improvement): "
        "headers, bodies, attachments, the text of attachments and search text "
        "are rebuilt, threads are kept. Messages stay readable meanwhile. Run it "
        "again to continue a reindex that was cut short."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--space", metavar="KEY", help="only this space")
        parser.add_argument(
            "--attachments",
            action="store_true",
            help=(
                "only the messages with attachments whose text was never read "
                "(archived before attachments were read): reads them and makes "
                "their text searchable"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        space_id = None
        if options["space"]:
            space = Space.objects.filter(key=options["space"]).first()
            if space is None:
                raise CommandError(f"no space with the key {options['space']!r}")
            space_id = space.pk
        waiting = messages_waiting_count(space_id=space_id)
        if options["attachments"]:
            # Messages already waiting are indexed too, attachments and all.
            messages_reread_start(space_id=space_id)
            waiting = messages_waiting_count(space_id=space_id)
            self.stdout.write(f"{waiting} messages to index again")
        elif waiting:
            self.stdout.write(f"continuing: {waiting} messages still to be indexed")
        else:
            messages_reindex_start(space_id=space_id)
            waiting = messages_waiting_count(space_id=space_id)
            self.stdout.write(f"{waiting} messages to index again")
        self._total = max(waiting, 1)
        self._tty = self.stdout.isatty()
        self._last_step = -1
        summary = messages_index_pending(space_id=space_id, progress=self._progress)
        if self._tty:
            self.stdout.write("")
        self.stdout.write(
            f"indexed {summary.indexed} messages; {summary.unparseable} could not "
            f"be parsed ({summary.too_complex} too complex), kept raw; read "
            f"{summary.attachments_read} attachments, {summary.attachments_failed} "
            "could not be read"
        )

    def _progress(self, done: int) -> None:
        fraction = min(1.0, done / self._total)
        if self._tty:
            filled = round(BAR_WIDTH * fraction)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stdout.write(
                f"\r[{bar}] {fraction:4.0%} {done}/{self._total}", ending=""
            )
            self.stdout.flush()
            return
        step = int(fraction * 10)
        if step != self._last_step:
            self._last_step = step
            self.stdout.write(f"{done}/{self._total} messages indexed")
