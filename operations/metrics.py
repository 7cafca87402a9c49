"""The archive's Prometheus metrics, computed at scrape time.

A custom collector reads every figure from the database and the broker when
/metrics is scraped, so that any web process, under gunicorn or not, answers
with the same numbers: nothing is counted in a process's memory. The alert
rules and the dashboard under ``docs/monitoring/`` use these names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import selectors
from .broker import queue_lengths

logger = logging.getLogger(__name__)

SPACE_ACCOUNT = ["space", "account"]


class ArchiveCollector(Collector):
    """Yields the archive's metrics; a constant number of queries per scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from self._polls()
        yield from self._spaces()
        yield from self._accounts()
        yield from self._imports()
        yield from self._queues()

    def _polls(self) -> Iterator[Metric]:
        polls = CounterMetricFamily(
            "mailarchive_polls",
            "Finished polls of each mail account, by outcome.",
            labels=[*SPACE_ACCOUNT, "outcome"],
        )
        for space, account, outcome, n in selectors.poll_outcome_counts():
            polls.add_metric([space, account, outcome], n)
        yield polls
        durations = HistogramMetricFamily(
            "mailarchive_poll_duration_seconds",
            "How long finished polls took, from start to finish.",
            labels=SPACE_ACCOUNT,
        )
        bounds = [str(float(b)) for b in selectors.POLL_DURATION_BUCKETS]
        for histogram in selectors.poll_duration_histograms():
            buckets = [
                *zip(bounds, histogram.buckets, strict=True),
                ("+Inf", histogram.count),
            ]
            durations.add_metric(
                [histogram.space, histogram.account],
                buckets=buckets,
                sum_value=histogram.total_seconds,
            )
        yield durations

    def _spaces(self) -> Iterator[Metric]:
        archived = CounterMetricFamily(
            "mailarchive_messages_archived",
            "Messages archived in each space (those in its trash included).",
            labels=["space"],
        )
        stored = CounterMetricFamily(
            "mailarchive_archived_bytes",
            "Bytes of raw messages archived in each space.",
            labels=["space"],
        )
        waiting = GaugeMetricFamily(
            "mailarchive_messages_waiting_index",
            "Messages secured but not yet indexed (or to be indexed again).",
            labels=["space"],
        )
        for figures in selectors.space_figures():
            archived.add_metric([figures.space], figures.messages)
            stored.add_metric([figures.space], figures.raw_bytes)
            waiting.add_metric([figures.space], figures.waiting_index)
        yield from (archived, stored, waiting)

    def _accounts(self) -> Iterator[Metric]:
        accounts = selectors.account_figures()
        duplicates = CounterMetricFamily(
            "mailarchive_duplicates",
            "Messages a mail account delivered again that were already archived.",
            labels=SPACE_ACCOUNT,
        )
        enabled = GaugeMetricFamily(
            "mailarchive_account_enabled",
            "1 when the account is polled, 0 when an admin disabled it.",
            labels=SPACE_ACCOUNT,
        )
        failures = GaugeMetricFamily(
            "mailarchive_account_consecutive_failures",
            "Polls of the account that failed in a row since its last success.",
            labels=SPACE_ACCOUNT,
        )
        last_success = GaugeMetricFamily(
            "mailarchive_account_last_success_timestamp_seconds",
            "When the account last polled successfully (absent if it never did).",
            labels=SPACE_ACCOUNT,
        )
        signin = GaugeMetricFamily(
            "mailarchive_account_signin_needed",
            "1 when the account's OAuth2 sign-in must be renewed by an admin.",
            labels=SPACE_ACCOUNT,
        )
        left = GaugeMetricFamily(
            "mailarchive_account_left_on_server",
            "Messages the last poll had to leave on the mail server.",
            labels=SPACE_ACCOUNT,
        )
        for account in accounts:
            labels = [account.space, account.account]
            duplicates.add_metric(labels, account.duplicates)
            enabled.add_metric(labels, int(account.enabled))
            failures.add_metric(labels, account.consecutive_failures)
            if account.last_success_at is not None:
                last_success.add_metric(labels, account.last_success_at.timestamp())
            signin.add_metric(labels, int(account.signin_needed))
            left.add_metric(labels, account.left_on_server)
        yield from (duplicates, enabled, failures, last_success, signin, left)
        yield GaugeMetricFamily(
            "mailarchive_oldest_unsuccessful_account_age_seconds",
            "Seconds the enabled account longest without a successful poll has "
            "waited since its last success (or its creation).",
            value=selectors.oldest_unsuccessful_age(accounts),
        )

    def _imports(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "mailarchive_import_jobs", "Imports in each state.", labels=["state"]
        )
        for state, n in selectors.import_job_counts().items():
            jobs.add_metric([state], n)
        yield jobs

    def _queues(self) -> Iterator[Metric]:
        queues = GaugeMetricFamily(
            "mailarchive_queue_length",
            "Tasks waiting in each Celery queue of the broker.",
            labels=["queue"],
        )
        try:
            lengths = queue_lengths()
        except Exception as e:
            # The other figures are still worth the scrape; /readyz says why.
            logger.warning("queue lengths not read: the broker did not answer: %s", e)
            lengths = {}
        for queue, n in lengths.items():
            queues.add_metric([queue], n)
        yield queues


registry = CollectorRegistry(auto_describe=False)
registry.register(ArchiveCollector())


def metrics_text() -> bytes:
    """The metrics in the Prometheus text format, read now. Reads only."""
    return generate_latest(registry)
