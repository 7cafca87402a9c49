"""Reads about mail accounts: lists, health, poll history, the site report."""

from __future__ import annotations

from django.db.models import (
    Case,
    Count,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from mailarchive.models import Message
from spaces.models import Space

from .models import FetchedMessage, FetchSettings, MailAccount, PollRun


def fetch_settings_get() -> FetchSettings:
    """The site's fetch settings (the row is created on first use)."""
    row, _created = FetchSettings.objects.get_or_create(pk=1)
    return row


def mail_accounts_due() -> QuerySet[MailAccount]:
    """Ids of the accounts scheduled polling covers: enabled, in global spaces.

    Accounts waiting for someone to sign in again are left out: asking the
    provider again would only be refused again.
    """
    return (
        MailAccount.objects.filter(enabled=True, space__kind=Space.Kind.GLOBAL)
        .exclude(auth_state=MailAccount.AuthState.SIGNIN_NEEDED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _with_latest_run(accounts: QuerySet[MailAccount]) -> list[MailAccount]:
    """Evaluate ``accounts`` with ``latest_run`` set on each (two queries)."""
    latest = PollRun.objects.filter(account=OuterRef("pk")).order_by(
        "-queued_at", "-id"
    )
    rows = list(accounts.annotate(latest_run_id=Subquery(latest.values("pk")[:1])))
    runs = PollRun.objects.in_bulk(
        [a.latest_run_id for a in rows if a.latest_run_id is not None]
    )
    for account in rows:
        run = runs.get(account.latest_run_id)
        if run is not None:
            run.account = account
        account.latest_run = run
    return rows


def _pending_index(accounts: QuerySet[MailAccount]) -> QuerySet[MailAccount]:
    """``accounts`` with ``pending_index``: its messages waiting to be indexed."""
    waiting = (
        FetchedMessage.objects.filter(
            account=OuterRef("pk"),
            message__index_state=Message.IndexState.PENDING,
        )
        .order_by()
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return accounts.annotate(pending_index=Coalesce(Subquery(waiting[:1]), 0))


def mail_accounts_of_space(space: Space) -> list[MailAccount]:
    """The space's accounts by name, each with its ``latest_run`` (or None)
    and ``pending_index``."""
    return _with_latest_run(
        _pending_index(
            MailAccount.objects.filter(space=space)
            .select_related("space")
            .order_by("name")
        )
    )


def mail_account_health_get(space: Space, account_id: int) -> MailAccount | None:
    """The account ``account_id`` of ``space`` as ``mail_accounts_of_space``
    gives it (``latest_run``, ``pending_index``), or None."""
    rows = _with_latest_run(
        _pending_index(
            MailAccount.objects.filter(space=space, pk=account_id).select_related(
                "space"
            )
        )
    )
    return rows[0] if rows else None


def mail_accounts_report() -> list[MailAccount]:
    """Every account of every space, failing ones first, newest failure first.

    Then the healthy ones by space and name. Each has ``latest_run`` set.
    """
    return _with_latest_run(
        MailAccount.objects.select_related("space").order_by(
            Case(
                When(auth_state=MailAccount.AuthState.SIGNIN_NEEDED, then=Value(0)),
                When(consecutive_failures__gt=0, then=Value(0)),
                default=Value(1),
            ),
            F("last_error_at").desc(nulls_last=True),
            "space__name",
            "space__key",
            "name",
        )
    )


def mail_account_get(space: Space, account_id: int) -> MailAccount:
    """The account ``account_id`` of ``space``; Http404 otherwise."""
    return get_object_or_404(
        MailAccount.objects.select_related("space"), space=space, pk=account_id
    )


def poll_run_get(space: Space, poll_run_id: int) -> PollRun:
    """The poll run ``poll_run_id`` of an account of ``space``; Http404 otherwise."""
    return get_object_or_404(
        PollRun.objects.select_related("account", "account__space"),
        account__space=space,
        pk=poll_run_id,
    )


def poll_runs_recent(account: MailAccount, limit: int = 10) -> QuerySet[PollRun]:
    """The account's latest polls, newest first."""
    return PollRun.objects.filter(account=account).order_by("-queued_at", "-id")[:limit]
