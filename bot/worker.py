"""The worker: takes jobs from the delivery store and converges their incidents.

Each job names an incident; the worker claims it with a lease, runs ``Reconciler.reconcile`` (which
reads the incident afresh from GitLab, so a job stands for any number of coalesced deliveries),
renews the lease while it runs, and reports the outcome to the store: ``complete``, or ``fail`` with a
retry delay (the store dead-letters a job after its maximum attempts, keeping the last error).

The most urgent ready job goes first (``bot.core.urgency``: a command or a new critical incident before
ordinary changes, the sweep's resyncs last, waiting raising a job's priority), and the GitLab calls made for
it are admitted to the API budget at its priority (``bot.gitlab.callpolicy.working_for``), so a backlog in
flight does not hold the budget against it. A reconcile that asks to run again later is queued at the
priority of a reminder at its due time.

A job is claimed only once it has been ready for ``settle`` (default 0.5 s): a burst of deliveries for
one incident (GitLab fires several hooks per user action, and people make several edits in a row)
then costs one reconcile instead of one per delivery. The store keeps deliveries that arrive while a
job runs as a "dirty" mark, and the job comes round again, so nothing is missed.

Time is what a reconcile returns: its report says when the incident next needs a look without any
webhook (``requeue_at``: a reminder falls due, a snooze ends), and completing the job leaves it in the
queue, delayed until then. So reminders are posted on time, across restarts and replicas, without the
sweep; a delivery in between makes the job due at once.

Nothing that happens inside a reconcile can stop the loop. On shutdown the worker stops claiming,
finishes the reconcile it is in, and releases a job it claimed but had not started.

The claim, the lease, and recording the outcome are the job loop's (``bot.jobloop``), the same for every job
kind; the reconcile is the ``gitlab`` kind's handler (:meth:`Worker._reconcile`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot import heartbeat
from bot.clock import utcnow
from bot.core.model import IncidentRef
from bot.core.outbound import OutboundFacts
from bot.core.urgency import Priority, requeue_priority
from bot.gitlab.apply import LeaseGone, RepeatedCreate, WriteGuard
from bot.gitlab.budget import BudgetWait
from bot.gitlab.callpolicy import working_for
from bot.gitlab.errors import CannotAct, GitLabCallError
from bot.gitlab.remit import OutsideRemit
from bot.integrations.base import Outbound
from bot.integrations.slack.job import SlackWorker
from bot.jobloop import (
    Failed,
    JobLoop,
    LeaseGoneResult,
    Ran,
    Released,
    Result,
    done,
    failed,
    retry_after,
)
from bot.lease import LeaseKeeper
from bot.metrics import Metrics
from bot.once import Once
from bot.reconciler import ReconcileReport
from bot.redact import redact
from bot.store import Job, StoreError, WorkerStore
from bot.store.base import DeadLetters, FailureKind
from bot.sweep import SweepReport, remember

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Wait = Callable[[threading.Event, float], bool]
"""Waits up to the given seconds or until the event is set; returns whether it is set (``Event.wait``)."""


def wait_on(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)

DEFAULT_LEASE = timedelta(seconds=60)
"""Renewed every third of itself while a reconcile runs; also how long the job of a worker that died
waits before another worker takes it over."""
DEFAULT_SETTLE = timedelta(milliseconds=500)
MIN_REQUEUE = timedelta(seconds=1)
"""A reconcile that asks to run again at once (or in the past) still waits this long, so a job never spins."""
MAX_POLL = 5.0
"""The longest an idle worker sleeps before it looks for due jobs again: bounds how late a delayed job
(a reminder) is claimed when nothing else wakes the worker."""


_INCIDENT_STEPS = ("read the incident", "read the incident's project")
_DEAD_AT_ONCE = (
    "; dead at once: GitLab gives the same answer until someone changes the incident or the bot's access "
    "(an edit of the incident, or `incident-bot dead-letters retry`, tries again)"
)


def failure_kind(exc: GitLabCallError) -> FailureKind:
    """How the store treats a failed reconcile. GitLab refused (403), or the incident or its project is
    not there (404 on reading it): asking again in a minute gets the same answer, so the job is dead at
    once and waits for a delivery that shows a change, or a retry by hand. A 404 on a part of the incident
    (a note or child deleted meanwhile) may pass with the next read: retried, then dead and waiting. A
    refusal the bot's role explains (:class:`CannotAct`, said on the incident) is dead at once too."""
    if exc.transient:
        return "retry"
    if isinstance(exc, CannotAct):
        return "final"
    if exc.status == 403 or (exc.status == 404 and exc.step in _INCIDENT_STEPS):
        return "final"
    return "sticky" if exc.status == 404 else "retry"


class Reconciles(Protocol):
    """What the worker needs from :class:`bot.reconciler.Reconciler`."""

    def reconcile(
        self,
        ref: IncidentRef,
        *,
        event_uuid: str | None = None,
        guard: WriteGuard | None = None,
        outbound: OutboundFacts | None = None,
    ) -> ReconcileReport: ...


class Outcome(StrEnum):
    OK = "ok"
    TRANSIENT = "transient"  # GitLab unavailable, throttled, outcome unknown: retried after a delay
    PERMANENT = "permanent"  # GitLab refused: 403 or a missing incident dead at once; 422, bad token retried
    CRASH = "crash"  # a bug in the bot: same handling as permanent, logged with its traceback
    IGNORED = "ignored"  # the incident is outside the bot's remit: nothing written, the job is done
    LEASE_LOST = "lease_lost"  # the lease went to another worker mid-reconcile: stopped before the next write
    RELEASED = "released"  # shutdown began between claim and reconcile: handed back unstarted
    DEFERRED = "deferred"  # GitLab's limit on new notes or issues is spent: back when it allows, not failed


@dataclass(frozen=True)
class _Said:
    """What a reconcile came to, carried through the job loop to the worker's metrics and log line."""

    outcome: Outcome
    error: str | None
    seconds: float
    changes: tuple[str, ...] = ()
    requeue_at: datetime | None = None


@dataclass(frozen=True)
class JobResult:
    job_id: int
    incident_key: str
    outcome: Outcome
    error: str | None = None
    state: str | None = None  # the job's state afterwards, None if the lease was lost


_PROJECT_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)+")
_MAX_PATHS = 10_000


def incident_path_of(store: DeadLetters, job: Job) -> str | None:
    """``group/project#iid`` from the newest delivery that fed the job, for logs and the dead letters.

    The job key keeps the numeric project id (stable across renames and transfers, and what coalesces
    deliveries); people know incidents by path, which every webhook payload carries."""
    try:
        delivery = store.latest_delivery(job.id)
        payload = json.loads(delivery.payload) if delivery is not None else None
    except (StoreError, ValueError, UnicodeDecodeError):
        return None
    project = payload.get("project") if isinstance(payload, dict) else None
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    if not isinstance(path, str) or len(path) > 255 or not _PROJECT_PATH.fullmatch(path):
        return None
    return f"{path}#{job.incident_key.rpartition('#')[2]}"


def default_worker_id(index: int = 0) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


class _JobGuard:
    """What a reconcile may write (``bot.gitlab.apply.WriteGuard``): nothing once the lease is lost, and
    no child that an earlier attempt already created (or may have) and that cannot be found again."""

    def __init__(self, worker: Worker, job: Job, heartbeat: LeaseKeeper) -> None:
        self.worker = worker
        self.job = job
        self.heartbeat = heartbeat

    def before_write(self) -> None:
        if self.heartbeat.lost:
            raise LeaseGone(f"job {self.job.id}: lease lost; stopping before the next write")

    def before_create(self, channel: str) -> tuple[datetime, int | None] | None:
        self.before_write()
        earlier = self.worker.store.note_create(self.job.incident_key, channel, self.worker.clock())
        return None if earlier is None else (earlier.attempted_at, earlier.child_iid)

    def created(self, channel: str, iid: int) -> None:
        self.worker.store.created(self.job.incident_key, channel, iid)

    def create_failed(self, channel: str) -> None:
        self.worker.store.forget_create(self.job.incident_key, channel)


class Worker:
    """One claim-reconcile-report loop. Several may share a store and a reconciler (one per thread)."""

    def __init__(
        self,
        store: WorkerStore,
        reconciler: Reconciles,
        *,
        worker_id: str | None = None,
        clock: Clock = utcnow,
        lease: timedelta = DEFAULT_LEASE,
        settle: timedelta = DEFAULT_SETTLE,
        heartbeat: timedelta | None = None,
        poll_interval: float = 0.2,
        metrics: Metrics | None = None,
        retry_base: timedelta | None = None,
        wait: Wait = wait_on,
        chat: Outbound | None = None,
        outside_said: Once | None = None,
    ) -> None:
        if lease <= timedelta(0) or settle < timedelta(0):
            raise ValueError("lease must be positive and settle not negative")
        if not 0 < poll_interval <= MAX_POLL:
            raise ValueError(f"poll_interval must be above 0 and at most {MAX_POLL} s, got {poll_interval}")
        self.store = store
        self.reconciler = reconciler
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.lease = lease
        self.settle = settle
        self.heartbeat = heartbeat or lease / 3
        self.poll_interval = poll_interval
        self.claiming = False
        """The last look at the queue reached the store (``WorkerPool.beat``)."""
        self.wait = wait  # tests pass one that moves their clock instead of sleeping
        self.metrics = metrics
        # The first retry of a failed job waits retry_base, doubling after that (None: the store's back-off).
        self.retry_base = retry_base
        self._paths: dict[str, str] = {}  # numeric project id -> path, for log lines
        # With outbound integrations configured: what their outboxes say goes into the reconcile, and what the
        # reconciled incident calls for goes to their outboxes after it (store writes only).
        self.chat = chat
        # Which projects outside the remit were logged already (shared by a pool's workers).
        self.outside_said = outside_said or Once()

    def name(self, job: Job) -> str:
        """The job's incident as people know it (``acme/security-incidents#12``), else its key."""
        project, _, iid = job.incident_key.rpartition("#")
        path = self._paths.get(project)
        if path is None and project.isdigit():
            found = incident_path_of(self.store, job)
            if found is not None:
                path = found.rpartition("#")[0]
                self._learn(project, path)
        return f"{path}#{iid}" if path else job.incident_key

    def _learn(self, project: str, path: str) -> None:
        if len(self._paths) >= _MAX_PATHS:
            self._paths.clear()
        self._paths[project] = path

    def _extra(self, job: Job) -> dict[str, Any]:
        """Fields of the job's log records, for ``--log-format json``."""
        return {"incident": self.name(job), "job": job.id, "event": job.reason, "priority": job.priority.name}

    def claim(self) -> Job | None:
        """The most urgent ready job (the store's order), once it has been ready for ``settle``
        (:meth:`bot.jobloop.JobLoop.claim`)."""
        return self.loop().claim()

    def loop(self) -> JobLoop:
        """The job loop that runs this worker's reconciles (claim, lease, record the outcome)."""
        return JobLoop(
            self.store, self._reconcile, worker_id=self.worker_id, clock=self.clock, lease=self.lease,
            settle=self.settle, heartbeat=self.heartbeat, name=self.name, logger=log,
        )

    def run_once(self, stop: threading.Event | None = None) -> JobResult | None:
        """Claim and process one job; None when no job is ready. Raises only ``StoreError`` from the claim."""
        ran = self.loop().run_once(stop)
        return None if ran is None else self._said(ran)

    def _reconcile(self, job: Job, heartbeat: LeaseKeeper) -> Result:
        """The GitLab kind's handler: reconcile the job's incident, and say how it went."""
        try:
            ref = IncidentRef.parse(job.incident_key)
        except ValueError as exc:
            return self._result(job, Outcome.PERMANENT, f"bad incident key: {exc}", None, 0.0)
        event_uuid = job.event_uuid
        start = time.perf_counter()
        retry_in: timedelta | None = None
        try:
            with working_for(job.priority):
                guard = _JobGuard(self, job, heartbeat)
                if self.chat is None:
                    report = self.reconciler.reconcile(ref, event_uuid=event_uuid, guard=guard)
                else:  # the outboxes' refusals go into the status log, once; engagements carried out tick boxes
                    outbound = self.chat.facts(self.store, job.incident_key)
                    report = self.reconciler.reconcile(ref, event_uuid=event_uuid, guard=guard, outbound=outbound)
            self._remember(job, report)
            if self.chat is not None:
                self.chat.offer(self.store, job.incident_key, report.desired, report.observed, self.clock())
            requeue_at = self._requeue_at(report)
            due_priority = requeue_priority(report.desired.severity)
            changes = report.changes
            if self.metrics is not None:
                for engagement in report.reminded:
                    self.metrics.reminded(engagement)
        except OutsideRemit as exc:
            # Once per project and reason: an outsider's project can cause any number of deliveries.
            said = self.outside_said.first((job.incident_key.rpartition("#")[0], exc.kind))
            log.log(
                logging.WARNING if said else logging.DEBUG,
                "job %d (%s): ignored, outside the bot's remit: %s%s",
                job.id,
                self.name(job),
                exc.reason,
                "; said once per project, counted in incident_bot_outside_remit_total" if said else "",
                extra=self._extra(job),
            )
            if self.metrics is not None:
                self.metrics.outside_remit(exc.kind)
            return self._result(job, Outcome.IGNORED, None, None, time.perf_counter() - start)
        except LeaseGone as exc:
            log.warning("job %d (%s): %s; left to the worker that holds it now", job.id, self.name(job), exc)
            return LeaseGoneResult(_Said(Outcome.LEASE_LOST, str(exc), time.perf_counter() - start))
        except BudgetWait as exc:  # not a failure: the job comes back when GitLab's limit allows, attempts kept
            at = self.clock() + max(timedelta(seconds=exc.retry_after or 0.0), MIN_REQUEUE)
            return self._result(job, Outcome.DEFERRED, None, None, time.perf_counter() - start, requeue_at=at,
                                changes=(str(exc),))
        except RepeatedCreate as exc:
            return self._result(job, Outcome.PERMANENT, str(exc), None, time.perf_counter() - start, kind="final")
        except GitLabCallError as exc:
            outcome = Outcome.TRANSIENT if exc.transient else Outcome.PERMANENT
            if exc.transient and exc.retry_after is not None:
                retry_in = retry_after(exc.retry_after)
            elif self.retry_base is not None:
                retry_in = self.retry_base * 2 ** min(max(job.attempts - 1, 0), 10)
            kind = failure_kind(exc)
            error = str(exc) + (_DEAD_AT_ONCE if kind == "final" else "")
            return self._result(job, outcome, error, retry_in, time.perf_counter() - start, kind=kind)
        except Exception as exc:
            log.exception("job %d (%s): reconcile crashed", job.id, self.name(job), extra=self._extra(job))
            error = f"crash: {type(exc).__name__}: {exc}"
            return self._result(job, Outcome.CRASH, error, None, time.perf_counter() - start)
        return self._result(
            job,
            Outcome.OK,
            None,
            None,
            time.perf_counter() - start,
            requeue_at=requeue_at,
            changes=changes,
            requeue_priority=due_priority,
        )

    def _requeue_at(self, report: ReconcileReport) -> datetime | None:
        if report.requeue_at is None:
            return None
        return max(report.requeue_at, self.clock() + MIN_REQUEUE)

    def _remember(self, job: Job, report: ReconcileReport) -> None:
        """Learn the incident's project path for log lines, and tell the sweep when this incident was
        converged (a cache: failing here is harmless)."""
        incident = report.observed.incident
        project = job.incident_key.rpartition("#")[0]
        if incident is not None and incident.project_path and _PROJECT_PATH.fullmatch(incident.project_path):
            self._learn(project, incident.project_path)
        try:
            remember(self.store, job.incident_key, report, self.clock())
        except StoreError as exc:
            log.warning("job %d (%s): cannot remember it for the sweep: %s", job.id, self.name(job), exc)

    def _result(
        self,
        job: Job,
        outcome: Outcome,
        error: str | None,
        retry_in: timedelta | None,
        seconds: float,
        kind: FailureKind = "retry",
        requeue_at: datetime | None = None,
        changes: Sequence[str] = (),
        requeue_priority: Priority | None = None,
    ) -> Result:
        """What the job loop records for a reconcile's ``outcome``."""
        if error is not None:
            key, name = job.incident_key, self.name(job)
            if name != key and error.startswith(key + ": "):  # GitLab errors begin with the incident
                error = name + error[len(key) :]
            error = redact(error)  # it is stored, listed by dead-letters and logged
        said = _Said(outcome, error, seconds, tuple(changes), requeue_at)
        if outcome in (Outcome.OK, Outcome.IGNORED, Outcome.DEFERRED):
            return done(requeue_at, priority=requeue_priority, detail=said)
        assert error is not None
        return failed(error, retry_in, kind=kind, detail=said)

    def _said(self, ran: Ran) -> JobResult:
        """Count and log how a job the loop ran ended."""
        job, state = ran.job, ran.state
        if isinstance(ran.result, Released):
            return JobResult(job.id, job.incident_key, Outcome.RELEASED)
        said = ran.result.detail
        if not isinstance(said, _Said):  # the handler itself raised (the loop made it a failure)
            error = ran.result.error if isinstance(ran.result, Failed) else None
            said = _Said(Outcome.CRASH, error, 0.0)
        outcome, error, changes, requeue_at = said.outcome, said.error, said.changes, said.requeue_at
        if self.metrics is not None:
            self.metrics.reconciled(outcome.value, said.seconds)
        if state is None:  # the lease was lost, or the store did not answer: logged by the loop
            return JobResult(job.id, job.incident_key, outcome, error, None)
        if outcome is Outcome.IGNORED:
            pass
        elif outcome is Outcome.DEFERRED:
            log.info("job %d (%s): %s", job.id, self.name(job), changes[0], extra=self._extra(job))
        elif outcome is Outcome.OK:
            later = f", next at {requeue_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if requeue_at is not None else ""
            text = "; ".join(changes) if changes else "no change"
            name = self.name(job)
            log.info(
                "job %d (%s): %s (reconciled in %.2f s -> %s%s)",
                job.id,
                name,
                text,
                said.seconds,
                state,
                later,
                extra={**self._extra(job), "changes": list(changes)},
            )
        else:
            log.warning(
                "job %d (%s): %s failure -> %s: %s",
                job.id,
                self.name(job),
                outcome,
                state,
                error,
                extra=self._extra(job),
            )
        return JobResult(job.id, job.incident_key, outcome, error, str(state))

    def run(self, stop: threading.Event) -> None:
        """Process jobs until ``stop`` is set; then finish the current reconcile and return."""
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                result = self.run_once(stop)
                self.claiming = True
            except Exception as exc:  # the store is locked or gone: wait and try again
                log.error("worker %s: cannot claim a job: %s", self.worker_id, exc)
                self.claiming = False
                result = None
            if result is None:  # idle: look again soon, a delayed job may fall due any moment
                self.wait(stop, self.poll_interval)
        log.info("worker %s stopped", self.worker_id)


@dataclass
class WorkerPool:
    """Several :class:`Worker` threads in one process, plus the store's periodic pruning."""

    store: WorkerStore
    reconciler: Reconciles
    threads: int = 2
    clock: Clock = utcnow
    metrics: Metrics | None = None
    lease: timedelta = DEFAULT_LEASE
    settle: timedelta = DEFAULT_SETTLE
    retention: timedelta = timedelta(days=3)
    """Deliveries are kept (for de-duplication and debugging) at least GitLab's 2-day resend window."""
    dead_letter_retention: timedelta = timedelta(days=14)
    """Dead letters (and their payloads) older than this are deleted (``INCIDENT_BOT_DEAD_LETTER_DAYS``)."""
    prune_every: timedelta = timedelta(hours=1)
    id_prefix: str = ""
    retry_base: timedelta | None = None
    drainer: Callable[[], int] | None = None
    """Moves deliveries a receiver spooled while the shared store was away into it (``bot.store.spool``)."""
    sweeper: Callable[[], SweepReport] | None = None
    """Finds incidents whose webhooks were missed (the bot was down, GitLab gave up) and queues them."""
    sweep_every: timedelta = timedelta(minutes=5)
    heartbeat: Path | None = None
    """Where to record each tick on which a worker is alive and claiming (``bot.heartbeat``, read by /readyz)."""
    chat: Outbound | None = None
    """With an outbound integration enabled: plans each reconciled incident's items into its outbox."""
    slack: SlackWorker | None = None
    """With ``SLACK_BOT_TOKEN``: the one thread that sends them (jobs of kind ``slack`` only)."""
    senders: Mapping[str, Any] = field(default_factory=dict)
    """Every other enabled integration's sender, by integration name (its job kind): one thread each runs
    its ``run(stop)``."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        prefix = self.id_prefix or f"{socket.gethostname()}:{os.getpid()}"
        said = Once()
        self.workers = [
            Worker(
                self.store,
                self.reconciler,
                worker_id=f"{prefix}:{i}",
                clock=self.clock,
                lease=self.lease,
                settle=self.settle,
                metrics=self.metrics,
                retry_base=self.retry_base,
                chat=self.chat,
                outside_said=said,
            )
            for i in range(self.threads)
        ]
        self._threads: list[threading.Thread] = []
        self._slack_thread: threading.Thread | None = None
        self._sender_threads: list[threading.Thread] = []

    def start(self, stop: threading.Event) -> None:
        for w in self.workers:
            t = threading.Thread(target=w.run, args=(stop,), name=f"worker-{w.worker_id}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.slack is not None:
            t = threading.Thread(target=self.slack.run, args=(stop,), name="slack-worker", daemon=True)
            t.start()
            self._slack_thread = t
        for name, sender in self.senders.items():
            if sender is self.slack:
                continue
            t = threading.Thread(target=sender.run, args=(stop,), name=f"{name}-sender", daemon=True)
            t.start()
            self._sender_threads.append(t)

    def prune(self) -> None:
        try:
            result = self.store.prune(self.clock() - self.retention)
        except Exception as exc:
            log.warning("pruning the delivery store failed: %s", exc)
            return
        if result.deliveries or result.jobs:
            log.info("pruned %d deliveries and %d finished jobs", result.deliveries, result.jobs)
        try:
            dead = self.store.prune_dead(self.clock() - self.dead_letter_retention)
        except Exception as exc:
            log.warning("pruning dead letters failed: %s", exc)
            return
        if dead.jobs:
            log.info("pruned %d dead letters (and %d of their deliveries)", dead.jobs, dead.deliveries)

    def run(self, stop: threading.Event, *, grace: float = 25.0, tick: float = 1.0) -> bool:
        """Run the workers until ``stop`` is set, then give them ``grace`` seconds to finish.

        Returns False if a reconcile was still running at the end of the grace period; its job's lease
        then runs out and another worker takes it (the job is not released while it may still write).
        """
        self.start(stop)
        next_prune = next_sweep = time.monotonic()  # sweep once at start: catch what came in while down
        while True:
            now = time.monotonic()
            if now >= next_sweep and self.sweeper is not None:
                self.sweep()
                next_sweep = time.monotonic() + self.sweep_every.total_seconds()
            if now >= next_prune:
                self.prune()
                next_prune = time.monotonic() + self.prune_every.total_seconds()
            if self.drainer is not None:
                self.drain()
            self.beat()
            if stop.wait(tick):
                break
        return self.join(grace)

    def alive_and_claiming(self) -> bool:
        """A worker thread runs and its last look at the queue reached the store."""
        return any(t.is_alive() and w.claiming for t, w in zip(self._threads, self.workers, strict=False))

    def beat(self) -> None:
        if self.heartbeat is None or not self.alive_and_claiming():
            return
        try:
            heartbeat.beat(self.heartbeat, self.clock())
        except OSError as exc:  # /readyz will say not ready; say why here
            log.error("cannot write the worker heartbeat %s: %s", self.heartbeat, exc)

    def drain(self) -> None:
        assert self.drainer is not None
        try:
            moved = self.drainer()
        except Exception as exc:  # the spool file is unreadable: say so, keep working
            log.error("draining the delivery spool failed: %s", exc)
            return
        if moved:
            log.info("moved %d spooled deliveries into the store", moved)

    def sweep(self) -> None:
        assert self.sweeper is not None
        try:
            with working_for(Priority.BACKGROUND):  # its listings wait behind the jobs' calls
                report = self.sweeper()
        except Exception as exc:  # GitLab or the store unreachable: the next sweep tries again
            log.warning("sweep failed: %s", exc)
            return
        log.info("sweep: %s", report.summary())
        if self.metrics is not None:
            self.metrics.swept(time.time())

    def join(self, grace: float) -> bool:
        deadline = time.monotonic() + grace
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._slack_thread is not None:  # it sends nothing after stop; a message cut short is found again
            self._slack_thread.join(max(0.0, deadline - time.monotonic()))
        for t in self._sender_threads:
            t.join(max(0.0, deadline - time.monotonic()))
        busy = [t.name for t in self._threads if t.is_alive()]
        if busy:
            log.warning("still reconciling after %.0f s of grace: %s", grace, ", ".join(busy))
        return not busy
