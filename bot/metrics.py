"""Prometheus metrics of the receiver and the worker, on a dedicated registry.

A dedicated ``CollectorRegistry`` (not prometheus-client's global one) lets tests build several apps
in one process. Under ``incident-bot serve`` the receiver runs in several gunicorn worker processes
and the reconcile worker in another; each process counts its own, so serve turns on
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set before any metric exists):
every process writes its counters to files in that directory and ``/metrics`` sums them, so one
scrape shows intake, reconciles and GitLab API calls of the whole service. Without that variable,
values live in the process, as in tests and in ``incident-bot worker --metrics-port``.

Queue depth is not counted but read from the store on every scrape, so it is right whichever process
answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bot.store import Intake

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OUTCOMES = ("accepted", "duplicate", "ignored", "unauthorized", "rejected", "unavailable")
"""Delivery outcomes. ``rejected``: not usable (no Content-Length, too large, body not JSON);
``unavailable``: the store failed and the delivery was answered 503."""

RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
API_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def enable_multiprocess(directory: str) -> None:
    """Switch this process (and the children it starts) to multiprocess mode.

    prometheus-client picks its value class when it is first imported; if that already happened here,
    the class is chosen again, which is safe as long as no metric has been created yet.
    """
    os.environ[MULTIPROC_ENV] = directory
    values.ValueClass = values.get_value_class()


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live-gauge files (gunicorn's ``child_exit`` hook)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class QueueCollector(Collector):
    """Queue depth and the age of the oldest ready job, read from the store at scrape time."""

    def __init__(self, store: Intake, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("incident_bot_store_up", "1 if the delivery store answered the scrape's query")
        try:
            stats = self.store.stats()
        except Exception as exc:
            log.warning("metrics: cannot read queue depth: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("incident_bot_queue_jobs", "Jobs in the work queue by state", labels=["state"])
        for state in ("pending", "running", "dead", "delayed"):  # delayed: waiting for a requeue time
            jobs.add_metric([state], getattr(stats, state))
        yield jobs
        by_kind = GaugeMetricFamily(
            "incident_bot_queue_jobs_by_kind", "Jobs in the work queue by kind (gitlab, slack, ...) and state",
            labels=["kind", "state"],
        )
        for kind, counts in sorted(stats.kinds.items()):
            for state, count in sorted(counts.items()):
                by_kind.add_metric([kind, state], count)
        yield by_kind
        age = 0.0
        if stats.oldest_pending is not None:
            age = max(0.0, (self.clock() - stats.oldest_pending).total_seconds())
        yield GaugeMetricFamily(
            "incident_bot_queue_oldest_pending_seconds",
            "How long the oldest pending job has been ready (0 when none is)",
            value=age,
        )


class Metrics:
    """All counters of one process. ``render()`` gives the ``/metrics`` body."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._queue: QueueCollector | None = None
        self.deliveries = Counter(
            "incident_bot_webhook_deliveries",
            "Webhook deliveries by X-Gitlab-Event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "incident_bot_reconcile_duration_seconds",
            "Time to converge one incident, by outcome (ok, transient, permanent, crash)",
            ["outcome"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "incident_bot_reconcile_errors",
            "Failed reconciles by kind (transient, permanent, crash)",
            ["kind"],
            registry=self.registry,
        )
        self.api_calls = Counter(
            "incident_bot_gitlab_api_calls",
            "GitLab API call attempts by status (ok, an HTTP status, or an error class)",
            ["status"],
            registry=self.registry,
        )
        self.api_seconds = Histogram(
            "incident_bot_gitlab_api_call_duration_seconds",
            "Duration of GitLab API call attempts",
            buckets=API_BUCKETS,
            registry=self.registry,
        )

        self.outside_remit_total = Counter(
            "incident_bot_outside_remit",
            "Deliveries and reconciles ignored because the issue is not an incident of the bot's remit, by why "
            "(no_scope, not_in_scope, team_project, not_visible, not_a_member, bot_child)",
            ["kind"],
            registry=self.registry,
        )

        self.slack_messages = Counter(
            "incident_bot_slack_messages",
            "Slack messages by kind (engage, reminder, update, child, all-clear, summary) and outcome "
            "(sent, refused, failed)",
            ["kind", "outcome"],
            registry=self.registry,
        )

        self.reminders_posted = Counter(
            "incident_bot_reminders_posted",
            "Status-update reminders posted in GitLab, one per engagement reminded (engagement ids come from the "
            "policy, so the label is bounded)",
            ["engagement"],
            registry=self.registry,
        )
        self.sweep_last_success = Gauge(
            "incident_bot_sweep_last_success_timestamp_seconds",
            "When the last sweep finished without an error (Unix time); alert when it falls behind",
            registry=self.registry,
            multiprocess_mode="max",
        )

    def reminded(self, engagement: str) -> None:
        self.reminders_posted.labels(engagement=engagement).inc()

    def swept(self, at: float) -> None:
        self.sweep_last_success.set(at)

    def slack_message(self, kind: str, outcome: str) -> None:
        self.slack_messages.labels(kind=kind, outcome=outcome).inc()

    def outside_remit(self, kind: str) -> None:
        self.outside_remit_total.labels(kind=kind).inc()

    def delivery(self, event: str, outcome: str) -> None:
        self.deliveries.labels(event=event, outcome=outcome).inc()

    def on_api_call(self, step: str, status: str, seconds: float) -> None:
        """The ``CallPolicy(on_call=...)`` hook. ``step`` is not a label: it names users, so it is unbounded."""
        self.api_calls.labels(status=status).inc()
        self.api_seconds.observe(seconds)

    def reconciled(self, outcome: str, seconds: float) -> None:
        self.reconcile_seconds.labels(outcome=outcome).observe(seconds)
        if outcome not in ("ok", "ignored"):
            self.reconcile_errors.labels(kind=outcome).inc()

    def watch_store(self, store: Intake, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """Report the store's queue depth on every scrape."""
        if self._queue is not None:
            self.registry.unregister(self._queue)
        self._queue = QueueCollector(store, clock)
        self.registry.register(self._queue)

    def render(self) -> tuple[bytes, str]:
        if multiprocess_dir():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            if self._queue is not None:
                registry.register(self._queue)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
