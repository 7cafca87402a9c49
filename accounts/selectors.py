"""Reads about mail accounts: lists, health, poll history, the site report."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Case,
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from mailarchive.models import Message
from spaces.models import Level, Space

from .models import AlertPreference, FetchedMessage, FetchSettings, MailAccount, PollRun


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


def _with_health(rows: list[MailAccount]) -> list[MailAccount]:
    """Set ``health`` (accounts.health.health_of) on each of ``rows``."""
    from .health import health_of, polling_expected

    now = timezone.now()
    expected = polling_expected()
    for account in rows:
        account.health = health_of(account, now=now, expected=expected)
    return rows


def _completeness(accounts: QuerySet[MailAccount]) -> QuerySet[MailAccount]:
    """``accounts`` with ``archived_total`` (the messages the fetch ledger
    holds for it: archived from its server, new or already in the space) and
    ``archived_unparseable`` (those of them kept raw, as they could not be
    parsed)."""
    ledger = FetchedMessage.objects.filter(account=OuterRef("pk")).order_by()
    unparseable = ledger.filter(
        message__index_state=Message.IndexState.INDEXED, message__parseable=False
    )
    return accounts.annotate(
        archived_total=Coalesce(
            Subquery(ledger.values("account").annotate(n=Count("pk")).values("n")[:1]),
            0,
        ),
        archived_unparseable=Coalesce(
            Subquery(
                unparseable.values("account").annotate(n=Count("pk")).values("n")[:1]
            ),
            0,
        ),
    )


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
    """The space's accounts by name, each with its ``latest_run`` (or None),
    ``pending_index``, ``health``, ``archived_total`` and
    ``archived_unparseable``."""
    return _with_health(
        _with_latest_run(
            _completeness(
                _pending_index(
                    MailAccount.objects.filter(space=space)
                    .select_related("space")
                    .order_by("name")
                )
            )
        )
    )


def mail_account_health_get(space: Space, account_id: int) -> MailAccount | None:
    """The account ``account_id`` of ``space`` as ``mail_accounts_of_space``
    gives it (``latest_run``, ``pending_index``, ``health``, ...), or None."""
    rows = _with_health(
        _with_latest_run(
            _completeness(
                _pending_index(
                    MailAccount.objects.filter(
                        space=space, pk=account_id
                    ).select_related("space")
                )
            )
        )
    )
    return rows[0] if rows else None


def mail_accounts_report() -> list[MailAccount]:
    """Every account of every space, failing ones first, newest failure first.

    Failing means a sign-in needed, failed polls, or (for an enabled account)
    no completed poll for ``MAILARCHIVE_ALERT_STALE_HOURS``. Then the others
    by space and name. Each has ``latest_run``, ``health``, ``archived_total``
    and ``archived_unparseable`` set.
    """
    from .health import polling_expected

    cutoff = timezone.now() - timedelta(hours=settings.MAILARCHIVE_ALERT_STALE_HOURS)
    stale = Q(enabled=True, space__kind=Space.Kind.GLOBAL) & (
        Q(last_success_at__lt=cutoff)
        | Q(last_success_at__isnull=True, created_at__lt=cutoff)
    )
    failing = [
        When(auth_state=MailAccount.AuthState.SIGNIN_NEEDED, then=Value(0)),
        When(consecutive_failures__gt=0, then=Value(0)),
    ]
    if polling_expected():
        failing.append(When(stale, then=Value(0)))
    rows = _with_latest_run(
        _completeness(MailAccount.objects.select_related("space")).order_by(
            Case(*failing, default=Value(1)),
            F("last_error_at").desc(nulls_last=True),
            "space__name",
            "space__key",
            "name",
        )
    )
    return _with_health(rows)


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


def alert_recipients(account: MailAccount) -> list[AbstractBaseUser]:
    """The space's admins and the site admins who want alert e-mails.

    Active users with an address; those who switched alerts off on their
    preferences page are left out. One entry per address.
    """
    user_model = get_user_model()
    admins = Q(
        space_permissions__space_id=account.space_id,
        space_permissions__level__gte=Level.ADMIN,
    ) | Q(
        groups__space_permissions__space_id=account.space_id,
        groups__space_permissions__level__gte=Level.ADMIN,
    )
    if account.space.owner_id is not None:
        admins |= Q(pk=account.space.owner_id)
    opted_out = AlertPreference.objects.filter(email_alerts=False).values("user_id")
    users = (
        user_model.objects.filter(admins | Q(is_superuser=True), is_active=True)
        .exclude(email="")
        .exclude(pk__in=opted_out)
        .distinct()
        .order_by("pk")
    )
    seen: set[str] = set()
    found = []
    for user in users:
        address = user.email.strip().lower()
        if address not in seen:
            seen.add(address)
            found.append(user)
    return found


def alert_preference_get(user: AbstractBaseUser) -> bool:
    """Whether ``user`` gets alert e-mails (yes, unless switched off)."""
    row = AlertPreference.objects.filter(user=user).first()
    return row is None or row.email_alerts
