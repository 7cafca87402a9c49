"""``manage.py importmbox --space KEY PATH``: import an mbox or .eml file now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mailarchive.imports import import_job_create, import_summary, mbox_import_run
from mailarchive.models import ImportJob
from spaces.models import Space

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Import an mbox file (plain or gzip) or a single .eml message into a "
        "space, synchronously, through the same service as the web import. "
        "Prints 'imported N, duplicates N, failed to parse N, errors N'; exits "
        "with status 1 when a message could not be stored or the file could not "
        "be read. Safe to repeat: messages already in the space are duplicates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--space", help="key of the global space to import into")
        parser.add_argument("path", nargs="?", help="the mbox, mbox.gz or .eml file")
        parser.add_argument(
            "--resume",
            type=int,
            metavar="ID",
            help="run the interrupted or failed import ID again; it continues "
            "where it stopped",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        job = self._job(options)
        self._tty = self.stdout.isatty()
        self._last_step = -1
        self.stdout.write(f"importing {job.file_name} into {job.space.key} ({job.pk})")
        job = mbox_import_run(job.pk, progress=self._progress)
        if self._tty:
            self.stdout.write("")
        for error in job.errors:
            self.stderr.write(
                f"message {error['number']} at offset {error['offset']}: "
                f"{error['reason']}"
            )
        self.stdout.write(import_summary(job))
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(f"import failed: {job.error}", returncode=1)
        if job.failed:
            raise CommandError(
                f"{job.failed} message(s) could not be stored", returncode=1
            )

    def _job(self, options: dict[str, Any]) -> ImportJob:
        if options["resume"] is not None:
            job = (
                ImportJob.objects.select_related("space")
                .filter(pk=options["resume"])
                .first()
            )
            if job is None:
                raise CommandError(f"no import with id {options['resume']}")
            return job
        if not options["space"] or not options["path"]:
            raise CommandError("give --space KEY and PATH (or --resume ID)")
        space = Space.objects.filter(key=options["space"]).first()
        if space is None:
            raise CommandError(f"no space with key {options['space']}")
        path = Path(options["path"]).expanduser().absolute()
        if not path.exists():
            raise CommandError(f"{path}: file not found")
        try:
            return import_job_create(
                space=space,
                path=path,
                file_name=path.name,
                origin=ImportJob.Origin.COMMAND,
                requested_by=None,
            )
        except ValidationError as e:
            raise CommandError(" ".join(e.messages)) from e

    def _progress(self, job: ImportJob) -> None:
        if job.total is None:
            return
        if job.status == ImportJob.Status.SCANNING:
            self.stdout.write(f"{job.total} messages in the file")
            return
        total = job.total or 1
        fraction = min(1.0, job.processed / total)
        counts = (
            f"{job.processed}/{job.total} messages, imported {job.imported}, "
            f"duplicates {job.duplicates}, errors {job.failed}"
        )
        if self._tty:
            filled = round(BAR_WIDTH * fraction)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stdout.write(f"\r[{bar}] {fraction:4.0%} {counts}", ending="")
            self.stdout.flush()
            return
        # Plain lines when piped: one per tenth, not one per batch.
        step = int(fraction * 10)
        if step != self._last_step:
            self._last_step = step
            self.stdout.write(counts)
