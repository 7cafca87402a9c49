"""Reads behind /metrics: the archive's figures, each in one query.

Every figure is computed from the database (or the broker) when it is asked
for, so every web process answers a scrape with the same numbers whichever
processes did the work. The number of queries does not grow with the number
of spaces, accounts or poll runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import MailAccount, PollRun
from mailarchive.models import ImportJob, Message
from spaces.models import Space

logger = logging.getLogger(__name__)

# Upper bounds of the poll duration histogram, in seconds.
POLL_DURATION_BUCKETS: tuple[float, ...] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
)
FINISHED_OUTCOMES = (
    PollRun.Status.OK,
    PollRun.Status.FAILED,
    PollRun.Status.SKIPPED,
)
WAITING_STATES = (Message.IndexState.PENDING, Message.IndexState.STALE)


@dataclass(frozen=True)
class SpaceFigures:
    space: str
    messages: int
    raw_bytes: int
    waiting_index: int


@dataclass(frozen=True)
class AccountFigures:
    space: str
    account: str
    enabled: bool
    consecutive_failures: int
    last_success_at: datetime | None
    created_at: datetime
    signin_needed: bool
    left_on_server: int
    duplicates: int


@dataclass(frozen=True)
class DurationHistogram:
    space: str
    account: str
    # Cumulative counts, one per bound of POLL_DURATION_BUCKETS.
    buckets: tuple[int, ...]
    count: int
    total_seconds: float


def poll_outcome_counts() -> list[tuple[str, str, str, int]]:
    """(space key, account name, outcome, finished poll runs) per account."""
    rows = (
        PollRun.objects.filter(status__in=FINISHED_OUTCOMES)
        .values_list("account__space__key", "account__name", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return [(space, account, status, n) for space, account, status, n in rows]


def poll_duration_histograms() -> list[DurationHistogram]:
    """The durations of finished poll runs per account, bucketed by the database."""
    duration = ExpressionWrapper(
        F("finished_at") - F("started_at"), output_field=DurationField()
    )
    aggregates = {
        f"le_{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(POLL_DURATION_BUCKETS)
    }
    rows = (
        PollRun.objects.filter(
            status__in=FINISHED_OUTCOMES,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .alias(duration=duration)
        .values("account__space__key", "account__name")
        .annotate(n=Count("pk"), total=Sum("duration"), **aggregates)
        .order_by()
    )
    histograms = []
    for row in rows:
        total = row["total"] or timedelta(0)
        histograms.append(
            DurationHistogram(
                space=row["account__space__key"],
                account=row["account__name"],
                buckets=tuple(
                    row[f"le_{i}"] for i in range(len(POLL_DURATION_BUCKETS))
                ),
                count=row["n"],
                total_seconds=total.total_seconds(),
            )
        )
    return histograms


def space_figures() -> list[SpaceFigures]:
    """Messages, stored bytes and messages waiting to be indexed, per global space.

    Messages in the trash are still archived and counted.
    """
    rows = (
        Space.objects.filter(kind=Space.Kind.GLOBAL)
        .values_list("key")
        .annotate(
            n=Count("messages"),
            raw_bytes=Coalesce(Sum("messages__raw_size"), 0),
            waiting=Count(
                "messages", filter=Q(messages__index_state__in=WAITING_STATES)
            ),
        )
        .order_by("key")
    )
    return [
        SpaceFigures(space=key, messages=n, raw_bytes=size, waiting_index=waiting)
        for key, n, size, waiting in rows
    ]


def account_figures() -> list[AccountFigures]:
    """Each mail account's health and its duplicates over all its poll runs."""
    rows = (
        MailAccount.objects.values(
            "space__key",
            "name",
            "enabled",
            "consecutive_failures",
            "last_success_at",
            "created_at",
            "auth_state",
            "left_on_server",
        )
        .annotate(duplicates=Coalesce(Sum("poll_runs__duplicates"), 0))
        .order_by("space__key", "name")
    )
    return [
        AccountFigures(
            space=row["space__key"],
            account=row["name"],
            enabled=row["enabled"],
            consecutive_failures=row["consecutive_failures"],
            last_success_at=row["last_success_at"],
            created_at=row["created_at"],
            signin_needed=row["auth_state"] == MailAccount.AuthState.SIGNIN_NEEDED,
            left_on_server=len(row["left_on_server"] or []),
            duplicates=row["duplicates"],
        )
        for row in rows
    ]


def oldest_unsuccessful_age(
    accounts: list[AccountFigures], *, now: datetime | None = None
) -> float:
    """Seconds the enabled account longest without a successful poll has waited.

    Counted from its last success, or from its creation when it never had one;
    0 when no account is enabled. Pure function of ``accounts``.
    """
    now = now or timezone.now()
    ages = [
        (now - (account.last_success_at or account.created_at)).total_seconds()
        for account in accounts
        if account.enabled
    ]
    return max([0.0, *ages])


def import_job_counts() -> dict[str, int]:
    """How many imports are in each state (every state listed, 0 included)."""
    counts = dict.fromkeys(ImportJob.Status.values, 0)
    rows = ImportJob.objects.values_list("status").annotate(n=Count("pk")).order_by()
    for status, n in rows:
        counts[status] = n
    return counts
