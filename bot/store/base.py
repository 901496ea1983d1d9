"""The durable delivery store and work queue: the interface every backend implements.

Why this exists
---------------
GitLab waits 10 s for a webhook answer, never re-sends a delivery by itself, and disables a hook after four
failures in a row. So the receiver must answer 2xx quickly, and only after the delivery is *durably* written
down; the slow work (reading the incident from GitLab and reconciling it) happens later, in a worker. This
store is the hand-over point between the two: a log of accepted deliveries plus a lease-based work queue.

Model (a durable Kubernetes-style work queue)
--------------------------------------------
The bot is level-triggered (PRODUCT.md §1): a delivery only says "look at incident X again". So work is keyed
by *incident key* (``"<project id>#<iid>"``), not by delivery, and many deliveries for one incident coalesce
into one job. A job row moves through these states::

    record_delivery / enqueue
              │
              ▼          claim            complete (not dirty)
          pending ───────────────► running ───────────────────► done
           ▲  ▲                     │ │ │
           │  └── fail (attempts<max)┘ │ └─ complete while dirty ──► pending (ready at once, attempts reset)
           │  └── release (attempt not counted)
           │  └── complete with requeue_at (not dirty): delayed, ready at requeue_at; new work makes it due now
           │                           │
           │        fail (attempts ≥ max), or lease expired ≥ max times
           │                           ▼
           └── retry_dead / new delivery ── dead

Invariants every backend keeps, whatever the interleaving of threads and processes:

I1. **Dedup.** A ``delivery_id`` is stored at most once; a repeat is answered ``new=False`` and changes nothing.
I2. **Durability.** When ``record_delivery`` or ``enqueue`` returns, its effect survives a crash of the
    process (and, with ``durability="full"``, of the machine).
I3. **One active job per incident.** At most one job row per incident key is in a state other than ``done``
    (pending, running or dead). Hence an incident is never reconciled by two workers at once.
I4. **No lost change.** A delivery or ``enqueue`` for an incident is always followed by a claim of a job for
    that incident that *starts after* it was recorded — unless the job ends ``dead``, where it stays
    visible. A change that arrives while the job runs sets ``dirty``; completing a dirty job puts it back to
    pending instead of done.
I5. **Exclusive lease.** Two workers never hold the same job: ``claim`` is atomic, and only the worker that
    holds the current lease can ``complete``, ``fail``, ``release`` or ``extend_lease`` (others get
    :class:`LeaseLost` and change nothing).
I6. **Nothing dropped.** A job that keeps failing ends ``dead`` with its last error; it is never deleted
    until it is revived and done, and then only by :meth:`DeliveryStore.prune`.

Order: every job has a priority (``bot.core.urgency``: a command or a new critical incident first, the
sweep's resyncs last), set when it is queued and raised, never lowered, by more work for it while it waits.
``claim`` takes the ready job with the earliest *rank*: the time it became ready plus its priority's aging
allowance (``AGING``). Within one priority that is first in, first out; across priorities the more urgent
goes first unless the other has waited longer than the difference of their allowances, so nothing starves.
Both backends find it with one short index lookup per priority (an index on ``(priority, ready time)``).

Time is always passed in (``now``, ``received_at``): the store has no hidden clock in its logic, so tests
drive time by hand and never sleep. All datetimes must be timezone-aware (naive ones raise ``ValueError``:
the receiver and the workers may run in different processes and hosts, and naive times are ambiguous).
Datetimes returned are in UTC.

Backends
--------
``bot.store.sqlite.SQLiteStore`` (WAL, ``BEGIN IMMEDIATE``) serves one host. A PostgreSQL backend for several
replicas implements the same class: dedup with a unique key on ``delivery_id`` and
``INSERT … ON CONFLICT DO NOTHING``; invariant I3 with a partial unique index on ``jobs(incident_key) WHERE
state <> 'done'``; ``claim`` with ``SELECT … FOR UPDATE SKIP LOCKED``. Both must pass
``tests/store/test_store.py`` unchanged.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from bot.core.urgency import AGING, Priority, clamp

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "CREATE_LOG",
    "DEFAULT_KIND",
    "DEFAULT_MAX_ATTEMPTS",
    "PENDING_STATES",
    "AfterFailure",
    "CreateLog",
    "CreateRecord",
    "DeadLetters",
    "Delivery",
    "DeliveryStore",
    "Durability",
    "Enqueue",
    "FailureKind",
    "Intake",
    "Job",
    "JobKind",
    "JobState",
    "LeaseLost",
    "Marks",
    "Outbox",
    "OutboxItem",
    "OutboxState",
    "PruneResult",
    "RecordResult",
    "SchemaVersionError",
    "StoreError",
    "StoreStats",
    "WorkQueue",
    "WorkerStore",
    "after_failure",
    "aging_case",
    "backoff_delay",
    "check_kind",
    "create_key",
    "kinds_from_rows",
    "require_aware",
    "revives",
]

DEFAULT_MAX_ATTEMPTS = 8
"""Claims a job may use before it goes dead. With the default back-off this spans about 21 minutes of
retries: long enough to ride out a GitLab deploy or a rate-limit window, short enough that a real bug
shows up in the dead letters the same hour."""

BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(minutes=10)

JobKind = str
"""Which loop claims a job: a column of the job, any short name (``[a-z0-9_-]``). Each kind's jobs are
claimed only by that kind's loop (``bot.jobloop``), so a slow outbound integration never holds up the GitLab
work, and a kind nobody runs waits instead of being claimed by the wrong loop. Jobs coalesce per
(kind, incident key): one active job of each kind per incident."""

DEFAULT_KIND = "gitlab"
"""The kind of the jobs webhook deliveries feed: reconciling the incident against GitLab."""

CREATE_LOG = DEFAULT_KIND
"""The outbox rows of the GitLab create log (:meth:`DeliveryStore.note_create`): children being created for the
default kind's reconcile, ``trying`` until GitLab answers, then ``sent`` with the child's iid as ``remote``."""


def create_key(incident_key: str, channel: str) -> str:
    """The outbox key of the create log's row for a child of ``channel`` of the incident."""
    return f"{incident_key}|{channel}"


_KIND = re.compile(r"[a-z0-9_-]{1,40}")


def check_kind(kind: str) -> str:
    """``kind`` if it is a valid job kind, else ``ValueError`` saying what is wrong."""
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ValueError(f"a job kind is 1 to 40 of a-z 0-9 _ -, got {kind!r}")
    return kind


OutboxState = Literal["intent", "trying", "sent", "refused"]
"""Where an outbox item is: ``intent`` (to be sent, or a changed summary to be updated in place), ``trying`` (a
send of it started and its answer was not recorded: it may be out there), ``sent`` (with its ``remote``
reference), ``refused`` (with the reason, not tried again unless revived)."""

PENDING_STATES: tuple[OutboxState, ...] = ("intent", "trying")


@dataclass(frozen=True)
class OutboxItem:
    """One item of an outbound integration's outbox (a message, a page): what to send, and once sent the
    remote reference the integration needs to find or update it (``remote``, the integration's own text).

    ``sent_text`` is the text the remote side shows; a summary whose ``text`` has changed since is pending again
    and is updated in place (through ``remote``)."""

    key: str
    incident_key: str
    target: str
    text: str
    summary: bool
    state: OutboxState
    remote: str | None = None
    sent_text: str | None = None
    reason: str | None = None
    unsure: bool = True
    """It may be out there already: a send of it was started, or it was first offered when the store knew
    nothing of the incident (a new incident, or an emptied database). The sender then looks for its key on
    the remote side before sending."""
    history_from: datetime | None = None
    """It cannot be out there from before this time: its first send attempt, or (first offered unsure) the
    time the plan gave (the incident's start). A search of the remote side for it stops there."""
    updated_at: datetime | None = None
    """When its state last changed: for an item ``sent`` that is not a summary, when it was sent (or found
    already sent); for a ``refused`` one, when it was refused."""
    integration: str = ""

    @property
    def sent(self) -> bool:
        return self.sent_text is not None

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES


FailureKind = Literal["retry", "sticky", "final"]
"""How :meth:`DeliveryStore.fail` treats a failure. ``retry``: retried with back-off, dead after
``max_attempts``. ``sticky``: the same, but once dead it is not revived by deliveries that show no change
(GitLab answered 404 on a part of the incident: repeating the same question gets the same answer). ``final``:
dead at once, and sticky (retrying cannot help, e.g. 403 or a missing incident, or would do harm, e.g. create
a child again)."""

Durability = Literal["normal", "full"]
"""``"full"``: a returned write survives power loss and OS crashes (fsync on every commit).
``"normal"``: a returned write survives a crash of the *process* (kill -9, OOM, segfault) but the last
moments of writes may be lost on power loss or an OS crash. Backends map this to their own knobs."""


class StoreError(Exception):
    """Any failure of the store itself (database unreachable, locked for too long, corrupt).

    Callers catch this one type: the receiver answers 503 so GitLab records a failure, /readyz reports
    not ready. Backend driver exceptions never leak past the interface.
    """


class LeaseLost(StoreError):
    """The caller no longer holds the job's lease (it expired and another worker claimed the job, or the
    job was completed, released or revived). Nothing was changed; the caller must drop the job."""


class SchemaVersionError(StoreError):
    """The database was written by a newer version of the bot than this one; refusing to touch it."""


class JobState(enum.StrEnum):
    """Where a job is in its life; see the module docstring for the transitions."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one job row (a unit of reconcile work for one incident)."""

    id: int
    incident_key: str
    state: JobState
    attempts: int
    """Claims since the job was created or last succeeded/revived; ``release`` gives one back."""
    deliveries: int
    """Deliveries coalesced into this job (``enqueue`` calls are not counted)."""
    not_before: datetime
    """A pending job is not claimed before this time (back-off after a failure)."""
    lease_until: datetime | None
    """For a running job, when its lease expires and another worker may take it over."""
    worker_id: str | None
    """The worker holding the lease (running), or the one that held it last (for the record)."""
    last_error: str | None
    """The most recent failure message (kept after success and revival, for the record)."""
    dirty: bool
    """A change arrived while the job was running; ``complete`` will put it back to pending."""
    created_at: datetime
    updated_at: datetime
    reason: str
    """Why the job was last (re)queued: the webhook event name, or ``enqueue``'s reason."""
    event_uuid: str | None = None
    """``X-Gitlab-Event-UUID`` of the latest delivery that had one; forwarded on the reconcile's API
    calls so that GitLab's recursion guard does not fire the same hook back at the bot."""
    sticky: bool = False
    """Dead after a permanent failure: only a delivery showing a change (or ``retry_dead``) revives it."""
    delayed: bool = False
    """Pending until ``not_before`` because the last reconcile asked to run again then (a reminder falls
    due, a snooze ends), not because of a back-off: new work for the incident makes it due at once."""
    priority: Priority = Priority.NORMAL
    """How urgent the job is (``bot.core.urgency``): claims serve the most urgent ready job first, each
    ranked by when it became ready plus its priority's :data:`~bot.core.urgency.AGING`."""
    kind: str = DEFAULT_KIND
    """Which loop claims it (:data:`JobKind`); ``incident_key`` is the bare incident key for every kind."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Outcome of :meth:`DeliveryStore.record_delivery`."""

    new: bool
    """False when the delivery id was already recorded (nothing was changed)."""
    job_id: int | None
    """The job this delivery fed (for a duplicate: the one the first copy fed), or None when the delivery
    has no incident key."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recorded webhook delivery, kept for debugging and re-deriving work until pruned."""

    delivery_id: str
    incident_key: str | None
    event: str
    received_at: datetime
    payload: bytes
    job_id: int | None


@dataclass(frozen=True, slots=True)
class IncidentMark:
    """What the sweep remembers of one incident: when the bot last converged it and when it next
    needs attention (a reminder window, the end of a snooze). A cache of GitLab's state: safe to lose."""

    incident_key: str
    seen_at: datetime
    next_due: datetime | None


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """A child creation an earlier attempt started: when, and the child's iid if GitLab answered."""

    attempted_at: datetime
    child_iid: int | None


@dataclass(frozen=True, slots=True)
class PruneResult:
    deliveries: int
    jobs: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts for /metrics; cheap enough to compute on every scrape."""

    pending: int
    running: int
    dead: int
    done: int
    deliveries: int
    oldest_pending: datetime | None
    """``not_before`` of the oldest pending job: the metrics layer turns it into queue latency."""
    schema_version: int
    delayed: int = 0
    """Delayed jobs (:attr:`Job.delayed`): incidents waiting for a time, not work waiting for a worker. They
    are not counted in ``pending`` nor in ``oldest_pending``."""
    kinds: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Per job kind, the jobs ``pending`` (not delayed), ``running`` and ``dead``: kinds with none are left out."""


def aging_case(column: str, scale: Callable[[timedelta], str]) -> str:
    """SQL for the aging allowance (:data:`~bot.core.urgency.AGING`) of the priority in ``column``; ``scale``
    writes a duration in the backend's time unit. Both backends rank ready jobs with it."""
    whens = " ".join(f"WHEN {int(p)} THEN {scale(AGING[p])}" for p in Priority)
    return f"(CASE {column} {whens} ELSE {scale(AGING[Priority.BACKGROUND])} END)"


def job_from_row(row: Sequence[Any], when: Callable[[Any], datetime]) -> Job:
    """A ``Job`` from a row of the jobs columns in their canonical order (both backends select them so);
    ``when`` turns the backend's stored time into an aware UTC datetime."""
    return Job(
        id=row[0],
        incident_key=row[1],
        state=JobState(row[2]),
        attempts=row[3],
        deliveries=row[4],
        not_before=when(row[5]),
        lease_until=None if row[6] is None else when(row[6]),
        worker_id=row[7],
        last_error=row[8],
        dirty=row[9] is not None,
        created_at=when(row[10]),
        updated_at=when(row[11]),
        reason=row[12],
        event_uuid=row[13],
        sticky=bool(row[14]),
        delayed=bool(row[15]),
        priority=clamp(row[16]),
        kind=row[17],
    )


def kinds_from_rows(rows: Sequence[Sequence[Any]]) -> dict[str, dict[str, int]]:
    """``kind, state, count`` rows (both backends select them so) as :attr:`StoreStats.kinds`."""
    kinds: dict[str, dict[str, int]] = {}
    for kind, state, count in rows:
        kinds.setdefault(kind, {"pending": 0, "running": 0, "dead": 0})[state] = count
    return kinds


@dataclass(frozen=True, slots=True)
class AfterFailure:
    state: JobState
    reset_attempts: bool
    sticky: bool


def after_failure(attempts: int, max_attempts: int, dirty: bool, kind: FailureKind = "retry") -> AfterFailure:
    """Where a job goes after a failed attempt (both backends decide with this function).

    Attempts left → pending. Out of attempts → dead, unless a change arrived during the last attempt
    (``dirty``) of a plain failure: that delivery would have revived the dead letter, so the job goes
    pending with its attempts reset. ``final`` → dead at once. Sticky failures stay dead when dirty:
    whether the change matters is decided when deliveries arrive (:func:`revives`)."""
    if kind == "final":
        return AfterFailure(JobState.DEAD, False, True)
    if attempts < max_attempts:
        return AfterFailure(JobState.PENDING, False, False)
    if dirty and kind == "retry":
        return AfterFailure(JobState.PENDING, True, False)
    return AfterFailure(JobState.DEAD, False, kind == "sticky")


def revives(sticky: bool, known_change: str | None, change: str | None) -> bool:
    """Whether a delivery revives a dead job: always for a plain dead letter; for a sticky one only when
    the delivery shows a change (its change key differs from the last one the job saw)."""
    return not sticky or (change is not None and change != known_change)


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` in UTC, or raise ``ValueError`` if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def backoff_delay(attempts: int) -> timedelta:
    """Delay before retrying a job that failed on its ``attempts``-th claim: 10 s, 20 s, 40 s, … capped at
    10 min. Exponential so a GitLab outage or rate limit is not hammered, capped so recovery is noticed
    within minutes."""
    if attempts < 1:
        return BACKOFF_BASE
    exponent = min(attempts - 1, 16)
    return min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)


# -- what each consumer needs: one small protocol per role -----------------------------------------------
# Both backends (:class:`DeliveryStore`) implement all of them; a consumer names only the ones it uses, so a
# stand-in (the receiver's spool, a test fake) implements only those. Semantics: see :class:`DeliveryStore`.


class Intake(Protocol):
    """The receiver's view: record a delivery durably, answer readiness, give counts for /metrics."""

    def record_delivery(
        self,
        delivery_id: str,
        incident_key: str | None,
        event: str,
        received_at: datetime,
        payload: bytes,
        event_uuid: str | None = None,
        change: str | None = None,
        priority: int = Priority.NORMAL,
    ) -> RecordResult: ...

    def ping(self) -> None: ...

    def stats(self) -> StoreStats: ...


class Enqueue(Protocol):
    """Queue work that no delivery caused (the sweep, ``refresh``)."""

    def enqueue(
        self,
        incident_key: str,
        now: datetime,
        reason: str,
        *,
        revive_dead: bool = True,
        priority: int = Priority.NORMAL,
        kind: str = DEFAULT_KIND,
    ) -> int: ...


class WorkQueue(Enqueue, Protocol):
    """The worker's queue: claim a job, hold its lease, report how it ended (``requeue_at``: a delayed job)."""

    def claim(self, worker_id: str, now: datetime, lease: timedelta, *, kind: str = DEFAULT_KIND) -> Job | None: ...

    def complete(
        self,
        job_id: int,
        worker_id: str,
        *,
        now: datetime | None = None,
        requeue_at: datetime | None = None,
        priority: int | None = None,
    ) -> JobState: ...

    def fail(
        self,
        job_id: int,
        worker_id: str,
        error: str,
        now: datetime,
        *,
        retry_in: timedelta | None = None,
        kind: FailureKind = "retry",
    ) -> JobState: ...

    def release(self, job_id: int, worker_id: str, *, now: datetime | None = None) -> None: ...

    def extend_lease(self, job_id: int, worker_id: str, now: datetime, lease: timedelta) -> Job: ...

    def prune(self, older_than: datetime) -> PruneResult: ...


class DeadLetters(Protocol):
    """Jobs that ran out of attempts: list, revive, prune; and the delivery that fed one (for display)."""

    def dead_jobs(self) -> list[Job]: ...

    def retry_dead(self, job_id: int | None = None, *, now: datetime | None = None) -> int: ...

    def prune_dead(self, older_than: datetime) -> PruneResult: ...

    def latest_delivery(self, job_id: int) -> Delivery | None: ...


class Marks(Protocol):
    """When each incident was last converged and next needs a look (read by the sweep)."""

    def mark_incident(self, incident_key: str, seen_at: datetime, next_due: datetime | None) -> None: ...

    def incident_marks(self) -> dict[str, IncidentMark]: ...


class CreateLog(Protocol):
    """Child creations started but not yet seen again in GitLab (so a retry does not create twice)."""

    def note_create(self, incident_key: str, channel: str, now: datetime) -> CreateRecord | None: ...

    def created(self, incident_key: str, channel: str, child_iid: int) -> None: ...

    def forget_create(self, incident_key: str, channel: str) -> None: ...


class Outbox(Protocol):
    """What an incident calls for from each outbound integration, each item sent once (see
    :class:`DeliveryStore`). ``integration`` names the integration; the store knows none of them."""

    def offer(self, integration: str, incident_key: str, items: Sequence[Any], now: datetime | None = None) -> int: ...

    def pending(self, integration: str, incident_key: str) -> list[OutboxItem]: ...

    def items(self, integration: str, incident_key: str) -> list[OutboxItem]: ...

    def by_remote(self, integration: str, remote: str) -> list[OutboxItem]: ...

    def mark_trying(self, integration: str, keys: Sequence[str], now: datetime | None = None) -> None: ...

    def mark_sent(
        self, integration: str, key: str, remote: str, text: str, now: datetime | None = None
    ) -> None: ...

    def mark_refused(self, integration: str, key: str, reason: str, now: datetime | None = None) -> None: ...

    def refused_targets(self, integration: str | None, incident_key: str) -> dict[str, str]: ...

    def revive_refused(self, integration: str, incident_key: str, keys: Sequence[str], before: datetime) -> int: ...


class WorkerStore(WorkQueue, DeadLetters, Marks, CreateLog, Outbox, Protocol):
    """Everything a worker process uses: the shared store itself, never the receiver's spool."""


class DeliveryStore(abc.ABC):
    """Durable delivery log plus coalescing, lease-based work queue: what a backend implements (every role
    protocol above, plus the readers tests and operators use). Thread-safe: one instance may be shared by
    all threads of a process; several processes (and, for server backends, hosts) may open the same
    database at once. Every mutating method is one atomic transaction."""

    max_attempts: int

    # -- intake ---------------------------------------------------------------------------------------

    @abc.abstractmethod
    def record_delivery(
        self,
        delivery_id: str,
        incident_key: str | None,
        event: str,
        received_at: datetime,
        payload: bytes,
        event_uuid: str | None = None,
        change: str | None = None,
        priority: int = Priority.NORMAL,
    ) -> RecordResult:
        """Record an accepted webhook delivery and enqueue work for its incident, durably, in one transaction.

        ``event_uuid`` (the delivery's ``X-Gitlab-Event-UUID``) becomes the job's, replacing an older one;
        work queued without one keeps what the job has.

        - ``delivery_id`` already recorded → nothing changes; ``RecordResult(new=False, job_id=<first's>)``.
        - ``incident_key`` None → the delivery is only logged; ``job_id`` None.
        - otherwise, coalesced by incident key (``received_at`` serves as "now"):
          no active job → a new pending job ready at ``received_at`` with ``deliveries=1``;
          pending → ``deliveries += 1`` (``not_before`` is kept: a retry back-off is not cut short, the
          retry reads the latest state anyway), but a delayed job (:attr:`Job.delayed`) becomes due at
          ``received_at`` if that is earlier;
          running → ``deliveries += 1`` and ``dirty`` set (I4);
          dead → revived: pending, ready at ``received_at``, ``attempts = 0``, ``deliveries += 1``; but a
          sticky dead job only when ``change`` (what the delivery says about the incident's state, e.g. its
          ``updated_at``) differs from the last one it saw (:func:`revives`); otherwise it stays dead.

        ``priority`` (``bot.core.urgency.intake_priority``): a new job gets it, a revived one too; a pending or
        running job keeps the more urgent of its own and this one (a running job's comes round again with it
        when it completes dirty).

        Returns only after the write is durable (I2): the receiver answers 2xx after this call.
        """

    @abc.abstractmethod
    def enqueue(
        self,
        incident_key: str,
        now: datetime,
        reason: str,
        *,
        revive_dead: bool = True,
        priority: int = Priority.NORMAL,
        kind: str = DEFAULT_KIND,
    ) -> int:
        """Queue work not caused by a delivery (periodic sweep, ``refresh`` command); returns the job id.

        Same coalescing (and ``priority``) as :meth:`record_delivery` except that ``deliveries`` is not
        incremented; the sweep queues with ``Priority.BACKGROUND``. ``kind`` says which loop claims the job
        (:data:`JobKind`): work coalesces per kind and incident key. With
        ``revive_dead=False`` a dead job is left dead (a sweep may prefer to leave dead letters to a human)
        and its id returned.
        """

    # -- worker side ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def claim(self, worker_id: str, now: datetime, lease: timedelta, *, kind: str = DEFAULT_KIND) -> Job | None:
        """Atomically take the most urgent ready job of ``kind``, or return None.

        Ready means pending with ``not_before <= now``, or running with ``lease_until <= now`` (its worker
        died or hung). Readiness time is ``not_before`` or ``lease_until`` respectively. Jobs are ranked by
        readiness time plus their priority's aging allowance (:data:`bot.core.urgency.AGING`): the most
        urgent first, by readiness time within one priority, and a job that has waited long enough goes
        before newer, more urgent ones (nothing starves). Ties go to the more urgent, then the lower id.
        The job becomes running with ``worker_id``, ``lease_until = now + lease``, ``attempts += 1``
        and ``dirty`` cleared (this claim reads the incident afresh).

        A running job whose lease expired after ``max_attempts`` claims is treated as a failure instead
        (it probably kills its worker): it goes dead with a "lease expired" error, or pending with the
        back-off when it is dirty, as in :meth:`fail`. ``worker_id`` must be unique among concurrent
        claimers (e.g. ``host:pid:thread``): it is what proves lease ownership.
        """

    @abc.abstractmethod
    def complete(
        self,
        job_id: int,
        worker_id: str,
        *,
        now: datetime | None = None,
        requeue_at: datetime | None = None,
        priority: int | None = None,
    ) -> JobState:
        """Mark a job the caller holds as finished; returns the new state.

        Not dirty → ``done``, or with ``requeue_at`` (the reconcile asked to run again then) ``pending`` and
        delayed, ready at ``requeue_at``, ``attempts = 0``, with ``priority`` when given
        (``bot.core.urgency.requeue_priority``: a reminder at its due time), else its own. Dirty → ``pending``
        with ``attempts = 0`` and its priority (raised by the changes, see :meth:`record_delivery`), ready
        since the first change that arrived during the run (so it is next in line, I4), or at ``requeue_at``
        if that is earlier: a requeue never postpones work that is due. Raises :class:`LeaseLost` if ``worker_id`` does
        not hold the job (I5). A lease that expired but was not yet re-claimed still counts as held: the
        work was done and nobody else started it. ``now`` only stamps ``updated_at``; without it the last
        stamp is kept.
        """

    @abc.abstractmethod
    def fail(
        self,
        job_id: int,
        worker_id: str,
        error: str,
        now: datetime,
        *,
        retry_in: timedelta | None = None,
        kind: FailureKind = "retry",
    ) -> JobState:
        """Record a failed attempt of a job the caller holds; returns the new state (see :func:`after_failure`
        for ``kind``).

        ``attempts < max_attempts`` → pending with ``not_before = now + (retry_in or backoff_delay(attempts))``
        and ``last_error = error``. Otherwise → dead with ``last_error``, never dropped (I6) — unless the job is
        dirty: a change arrived during the last attempt, and as a new delivery revives a dead job it revives
        this one, so it goes pending with ``attempts = 0`` and the same back-off. Raises :class:`LeaseLost`
        if the caller does not hold it.
        """

    @abc.abstractmethod
    def release(self, job_id: int, worker_id: str, *, now: datetime | None = None) -> None:
        """Give a held job back without counting the attempt (graceful shutdown): pending, ready at once
        (its old ``not_before``, so it is first in line), ``attempts -= 1``. Raises :class:`LeaseLost` if the
        caller does not hold it."""

    @abc.abstractmethod
    def extend_lease(self, job_id: int, worker_id: str, now: datetime, lease: timedelta) -> Job:
        """Set ``lease_until = now + lease`` on a held job (long reconciles heartbeat with this). Raises
        :class:`LeaseLost` if the caller does not hold it — then it must stop working on the job."""

    # -- dead letters ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def dead_jobs(self) -> list[Job]:
        """All dead jobs, oldest death first."""

    @abc.abstractmethod
    def retry_dead(self, job_id: int | None = None, *, now: datetime | None = None) -> int:
        """Revive one dead job (or all when ``job_id`` is None): pending, ``attempts = 0``, ready at ``now``
        (or at once when ``now`` is None). Returns how many were revived (0 if ``job_id`` is not dead)."""

    # -- reading --------------------------------------------------------------------------------------

    def latest_delivery(self, job_id: int) -> Delivery | None:
        """The newest recorded delivery that fed the job, or None (a sweep's job, or pruned). Read for
        display only: its payload names the incident's project by path, which the job key (a stable
        numeric id) does not."""
        return None

    # -- maintenance and introspection ----------------------------------------------------------------

    @abc.abstractmethod
    def prune(self, older_than: datetime) -> PruneResult:
        """Delete deliveries received before ``older_than`` whose job is done (or that had none), and done
        jobs last updated before it that no delivery refers to any more. Unfinished work and dead letters
        are kept with their payloads. The dedup window is the retention: a delivery re-sent after its record
        was pruned counts as new, which is harmless as reconciling is idempotent. Keep at least GitLab's
        2-day "Recent events" window, from which a delivery can be re-sent by hand."""

    @abc.abstractmethod
    def prune_dead(self, older_than: datetime) -> PruneResult:
        """Delete dead letters last updated before ``older_than``, with their deliveries (payloads) and
        create records, in small batches. The retention of dead letters is the operator's to choose."""

    @abc.abstractmethod
    def note_create(self, incident_key: str, channel: str, now: datetime) -> CreateRecord | None:
        """Durably record that a child for ``channel`` of the incident is about to be created, and return None;
        or, when an earlier attempt recorded one that was not cleared since, return that record and change
        nothing: that attempt created the child (or may have), and it was not found again. Cleared by
        :meth:`complete` (the reconcile converged) and :meth:`retry_dead`."""

    @abc.abstractmethod
    def created(self, incident_key: str, channel: str, child_iid: int) -> None:
        """GitLab answered the create: the child is ``child_iid``."""

    @abc.abstractmethod
    def forget_create(self, incident_key: str, channel: str) -> None:
        """Drop the record of :meth:`note_create`: GitLab answered that the create did not happen."""

    # -- the outbox of the outbound integrations --------------------------------------------------------

    @abc.abstractmethod
    def offer(self, integration: str, incident_key: str, items: Sequence[Any], now: datetime | None = None) -> int:
        """Record the items (each with ``key``, ``target``, ``text``, ``summary`` and optionally ``since``) the
        incident calls for now from ``integration``: a new key is an ``intent``; a summary whose text changed is
        pending again with the new text; anything else is left as it is (an item is sent once, ever). The
        first items of an incident the store knows nothing of are ``unsure`` (they may have been sent before an
        emptied database), searched for back to their ``since``. Returns how many of the incident's items of
        ``integration`` need sending."""

    @abc.abstractmethod
    def pending(self, integration: str, incident_key: str) -> list[OutboxItem]:
        """The incident's items of ``integration`` still to send (``intent`` or ``trying``), in the order
        they were first offered."""

    @abc.abstractmethod
    def items(self, integration: str, incident_key: str) -> list[OutboxItem]:
        """Every item of the incident's outbox of ``integration``, whatever its state, in the order first
        offered (with ``updated_at``): what was sent when, what waits, what was refused."""

    @abc.abstractmethod
    def by_remote(self, integration: str, remote: str) -> list[OutboxItem]:
        """The items of ``integration`` the remote side knows as ``remote`` (what an inbound webhook names), of
        any incident, in the order first offered."""

    @abc.abstractmethod
    def mark_trying(self, integration: str, keys: Sequence[str], now: datetime | None = None) -> None:
        """A send of these pending items starts: they are ``trying`` and, until recorded sent, may be out there
        (``unsure``); an item that was sure keeps ``now`` as ``history_from``, its first attempt."""

    @abc.abstractmethod
    def mark_sent(self, integration: str, key: str, remote: str, text: str, now: datetime | None = None) -> None:
        """The remote side shows ``text`` as ``remote`` (the integration's reference to it). Stays pending
        (``intent``) if a newer text was offered meanwhile (a summary edited again)."""

    @abc.abstractmethod
    def mark_refused(self, integration: str, key: str, reason: str, now: datetime | None = None) -> None:
        """The remote side refused the item for good (``reason``, one line): it is not tried again."""

    @abc.abstractmethod
    def revive_refused(self, integration: str, incident_key: str, keys: Sequence[str], before: datetime) -> int:
        """Make the incident's items ``keys`` refused before ``before`` pending again (unsure, their reason
        kept): the target may take them now (a channel created or joined since). Returns how many."""

    @abc.abstractmethod
    def refused_targets(self, integration: str | None, incident_key: str) -> dict[str, str]:
        """The incident's targets (of ``integration``, or of every integration when None) that refused an
        item, with the latest reason (for its status log); a refused item tried again counts until it is
        sent."""

    @abc.abstractmethod
    def mark_incident(self, incident_key: str, seen_at: datetime, next_due: datetime | None) -> None:
        """Remember that ``incident_key`` was converged at ``seen_at`` and next needs a look at ``next_due``."""

    @abc.abstractmethod
    def incident_marks(self) -> dict[str, IncidentMark]:
        """Every remembered incident, by key."""

    # -- budgets of GitLab's per-endpoint limits (bot.gitlab.budget): shared by every process of the bot ------

    @abc.abstractmethod
    def budget_take(self, key: str, now: float, cap: int, window: float, max_wait: float) -> float:
        """The wait (seconds from ``now``, Unix time) before the next slot of budget ``key`` (at most ``cap`` grants
        in any ``window`` seconds: ``bot.gitlab.budget.window_take``), reserved atomically only when it is at most
        ``max_wait``."""

    @abc.abstractmethod
    def budget_block(self, key: str, until: float) -> None:
        """Grant nothing from budget ``key`` before ``until`` (Unix time)."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Counts for metrics, read from one consistent snapshot."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers a query (for /readyz)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connections; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
