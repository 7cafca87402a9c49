"""manage.py fetchmail: poll mail accounts now, through the poll service."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import MailAccount, PollRun
from accounts.selectors import mail_accounts_due
from accounts.sentences import fetch_disabled_sentence
from accounts.services import mail_account_poll
from spaces.models import Space


class Command(BaseCommand):
    help = (
        "Poll mail accounts now and print one summary line per account; returns "
        "when what was fetched is secured and indexed. Without options: every "
        "enabled account of every global space. Exit status 1 if any account "
        "failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account",
            type=int,
            action="append",
            default=[],
            metavar="ID",
            help="poll this account (repeatable; also when it is disabled)",
        )
        parser.add_argument(
            "--space", metavar="KEY", help="poll the enabled accounts of this space"
        )
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help=(
                "return once what was fetched is secured and deleted on the server; "
                "leave indexing to the Celery workers"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.MAILARCHIVE_FETCH_DISABLED:
            raise CommandError(fetch_disabled_sentence())
        account_ids = list(dict.fromkeys(options["account"]))
        missing = set(account_ids) - set(
            MailAccount.objects.filter(pk__in=account_ids).values_list("pk", flat=True)
        )
        if missing:
            raise CommandError(
                "No mail account with the id "
                + ", ".join(str(i) for i in sorted(missing))
                + "."
            )
        if options["space"]:
            space = Space.objects.filter(key=options["space"]).first()
            if space is None:
                raise CommandError(f"No space with the key {options['space']!r}.")
            account_ids += [
                pk
                for pk in mail_accounts_due().filter(space=space)
                if pk not in account_ids
            ]
        elif not account_ids:
            account_ids = list(mail_accounts_due())
        failed = 0
        for account_id in account_ids:
            summary = mail_account_poll(
                account_id=account_id,
                trigger=PollRun.Trigger.COMMAND,
                wait_for_index=not options["no_wait"],
            )
            line = f"[{account_id}] {summary.line()}"
            if summary.failed:
                failed += 1
                self.stderr.write(line)
            else:
                self.stdout.write(line)
        if failed:
            raise CommandError(
                f"{failed} of {len(account_ids)} mail accounts failed.", returncode=1
            )
