"""One job loop for every kind of job: claim, keep the lease, run the kind's handler, record how it ended.

The work queue (``bot.store``) holds jobs of several kinds (:data:`bot.store.base.JobKind`): reconciling an
incident against GitLab, sending its messages to an outbound integration. Each kind has a handler that does
the work of one job and says how it ended (:data:`Result`); this loop does the rest, the same way for every
kind::

    claim(kind) ─► shutting down? ─► release (the attempt is not counted)
                └► LeaseKeeper ─► handler(job, held) ─► done(requeue_at)  ─► complete
                                                      ├► failed(error, retry_in, kind) ─► fail (back-off, dead)
                                                      ├► released ─► release
                                                      └► lease_lost ─► nothing (another worker holds the job)

A handler that raises is a failed job (``crash: ...``), retried with the store's back-off; a
``KeyboardInterrupt`` or ``SystemExit`` hands the job back and goes on up. The store decides what a failure
means (:func:`bot.store.base.after_failure`: ``retry``, ``sticky``, ``final``) and the back-off
(:func:`bot.store.base.backoff_delay`) unless the handler gives its own delay (a server's ``Retry-After``,
never below :data:`MIN_RETRY`: :func:`retry_after`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.lease import LeaseKeeper
from bot.redact import redact
from bot.store.base import DEFAULT_KIND, FailureKind, Job, JobState, LeaseLost, StoreError, WorkQueue

log = logging.getLogger(__name__)

MIN_RETRY = timedelta(seconds=1)
"""A server's ``Retry-After: 0`` still waits this long, so a job never spins."""


@dataclass(frozen=True)
class Done:
    """The job's work is done; with ``requeue_at`` it runs again then (at ``priority`` when given)."""

    requeue_at: datetime | None = None
    priority: int | None = None
    detail: Any = None
    """Anything the handler wants back with the outcome (for its own logs and metrics); not stored."""


@dataclass(frozen=True)
class Failed:
    """The attempt failed: retried after ``retry_in`` (None: the store's back-off), or dead as ``kind`` says."""

    error: str
    retry_in: timedelta | None = None
    kind: FailureKind = "retry"
    detail: Any = None


@dataclass(frozen=True)
class Released:
    """The job is handed back unstarted (shutdown): ready again at once, the attempt not counted."""

    detail: Any = None


@dataclass(frozen=True)
class LeaseGoneResult:
    """The lease went to another worker mid-job: nothing is recorded, the job is that worker's now."""

    detail: Any = None


Result = Done | Failed | Released | LeaseGoneResult

Handler = Callable[[Job, LeaseKeeper], Result]
"""Does one job's work. ``held.lost`` says whether the lease was lost meanwhile (stop before the next write)."""


def done(requeue_at: datetime | None = None, *, priority: int | None = None, detail: Any = None) -> Done:
    return Done(requeue_at, priority, detail)


def failed(error: str, retry_in: timedelta | None = None, *, kind: FailureKind = "retry", detail: Any = None) -> Failed:
    return Failed(error, retry_in, kind, detail)


released = Released()
lease_lost = LeaseGoneResult()


def retry_after(seconds: float | None) -> timedelta | None:
    """A delay a server asked for (``Retry-After``), at least :data:`MIN_RETRY`; None when it asked none."""
    return None if seconds is None else max(timedelta(seconds=seconds), MIN_RETRY)


@dataclass(frozen=True)
class Ran:
    """One job the loop ran: what the handler said, and the job's state afterwards (None when nothing was
    recorded: the lease was lost, or the store could not be reached and the lease will expire)."""

    job: Job
    result: Result
    state: JobState | None


def _job_key(job: Job) -> str:
    return job.incident_key


class JobLoop:
    """Claims jobs of one kind and runs them through its handler. One per thread; several may share a store."""

    def __init__(
        self,
        store: WorkQueue,
        handler: Handler,
        *,
        kind: str = DEFAULT_KIND,
        worker_id: str,
        clock: Callable[[], datetime],
        lease: timedelta,
        settle: timedelta = timedelta(0),
        heartbeat: timedelta | None = None,
        name: Callable[[Job], str] = _job_key,
        logger: logging.Logger = log,
    ) -> None:
        if lease <= timedelta(0) or settle < timedelta(0):
            raise ValueError("lease must be positive and settle not negative")
        self.store = store
        self.handler = handler
        self.kind = kind
        self.worker_id = worker_id
        self.clock = clock
        self.lease = lease
        self.settle = settle
        self.heartbeat = heartbeat or lease / 3
        self.name = name
        self.log = logger

    def claim(self) -> Job | None:
        """The most urgent ready job of the kind (the store's order), once it has been ready for ``settle``.

        Asking the store "as of ``now - settle``" selects exactly those jobs; the lease is lengthened by the
        same amount, so it still ends ``lease`` after the real now."""
        return self.store.claim(self.worker_id, self.clock() - self.settle, self.lease + self.settle, kind=self.kind)

    def run_once(self, stop: threading.Event | None = None) -> Ran | None:
        """Claim and run one job; None when none was ready. Raises only ``StoreError`` from the claim."""
        job = self.claim()
        if job is None:
            return None
        if stop is not None and stop.is_set():
            return self.record(job, released)
        keeper = LeaseKeeper(
            self.store, job, worker_id=self.worker_id, clock=self.clock, lease=self.lease, every=self.heartbeat,
            name=self.name(job),
        )
        try:
            with keeper as held:
                result = self.handler(job, held)
        except Exception as exc:  # a bug in the handler: the job is retried, then dead with this error
            self.log.exception("job %d (%s): crashed", job.id, self.name(job))
            result = failed(f"crash: {type(exc).__name__}: {exc}")
        except BaseException:  # KeyboardInterrupt, SystemExit: hand the job back, then go
            self.record(job, released)
            raise
        return self.record(job, result)

    def record(self, job: Job, result: Result) -> Ran:
        """Tell the store how the job ended (the caller holds its lease)."""
        if isinstance(result, Released):
            try:
                self.store.release(job.id, self.worker_id, now=self.clock())
            except StoreError as exc:  # its lease will expire and another worker will take it
                self.log.warning("job %d: cannot release it: %s", job.id, exc)
            self.log.info("job %d (%s): released unstarted for shutdown", job.id, self.name(job))
            return Ran(job, result, JobState.PENDING)
        try:
            if isinstance(result, Done):
                state: JobState | None = self.store.complete(
                    job.id, self.worker_id, now=self.clock(), requeue_at=result.requeue_at, priority=result.priority
                )
            elif isinstance(result, Failed):
                state = self.store.fail(
                    job.id, self.worker_id, redact(result.error), self.clock(), retry_in=result.retry_in,
                    kind=result.kind,
                )
            else:
                state = None
        except LeaseLost as exc:
            # Another worker took the job over after our lease ran out; it starts afresh.
            self.log.warning("job %d (%s): %s; its result is dropped", job.id, self.name(job), exc)
            state = None
        except StoreError as exc:
            self.log.error(
                "job %d (%s): cannot record its outcome (%s); the lease will expire", job.id, self.name(job), exc
            )
            state = None
        return Ran(job, result, state)


class Sender:
    """An outbound integration's sending side: its kind's job loop, run by one thread until ``stop``. A subclass
    gives ``loop()`` (a :class:`JobLoop` with its handler), ``worker_id``, ``poll_interval`` and ``what`` (how
    its log lines name it)."""

    worker_id: str
    poll_interval: float
    what: str = "sender"

    def loop(self) -> JobLoop:
        raise NotImplementedError

    def run_once(self, stop: threading.Event | None = None) -> str | None:
        """Claim and run one job of the kind; its state afterwards, or None when none was ready (or its outcome
        could not be recorded). With ``stop`` set, a job claimed is handed back untouched."""
        ran = self.loop().run_once(stop)
        return None if ran is None or ran.state is None else str(ran.state)

    def run(self, stop: threading.Event) -> None:
        """Run jobs of the kind until ``stop`` is set; a store that is away is tried again soon."""
        while not stop.is_set():
            try:
                state = self.run_once(stop)
            except Exception as exc:  # the store is away: try again soon
                log.error("%s %s: %s", self.what, self.worker_id, exc)
                state = None
            if state is None:
                stop.wait(self.poll_interval)
