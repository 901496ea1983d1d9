"""SQLite backend of the delivery store: one file, WAL mode, shared by the threads and processes of one host.

Concurrency model
-----------------
- **One connection per thread** (``threading.local``). A ``sqlite3.Connection`` keeps per-connection
  transaction state: two threads sharing one would interleave each other's ``BEGIN``/``COMMIT`` and one
  thread's rollback would undo the other's writes. ``check_same_thread=False`` only silences the guard, it
  does not make that sharing correct. Connections inherited across ``fork()`` are never used in the child
  (SQLite forbids it); the child opens its own.
- **Every write is ``BEGIN IMMEDIATE``.** It takes the single write lock up front, so "select the oldest ready
  job, then mark it running" cannot interleave with another claimer in any thread or process (a deferred
  transaction would read first and then fail with ``SQLITE_BUSY`` on upgrading, without waiting).
  Waiting for the lock is bounded by ``busy_timeout``.
- **WAL** lets readers (``/readyz``, metrics) run while a writer commits.

Durability (``durability=``)
----------------------------
In WAL mode a commit appends the transaction to the ``-wal`` file with ``write()`` before ``COMMIT``
returns; ``synchronous`` only decides whether it is also ``fsync``-ed then.

- ``"full"`` (default): fsync on every commit. A returned ``record_delivery`` survives a crash of the
  process *and* of the machine (power loss, kernel panic). Costs about a third of the write rate (see
  ``bench/bench_store.py``), which is still far above what GitLab can send or the HTTP front end can take.
- ``"normal"``: the WAL is synced only at checkpoints. Once written, the data sits in the OS page cache,
  which outlives the process: a returned write survives kill -9, OOM kills and crashes of the bot (tested).
  It can be lost if the *machine* goes down before the next checkpoint; the database itself stays consistent
  (SQLite: "WAL mode is safe from corruption with synchronous=NORMAL"). Acceptable when the host is
  reliable, because the periodic sweep re-reads every open incident and repairs what a lost delivery missed.

The database file is created ``0600``: payloads hold confidential issue text. SQLite gives the ``-wal`` and
``-shm`` files the same permissions as the database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core.urgency import AGING, Priority, clamp
from bot.gitlab.budget import window_take
from bot.private import private_file
from bot.store.base import (
    CREATE_LOG,
    DEFAULT_KIND,
    DEFAULT_MAX_ATTEMPTS,
    CreateRecord,
    Delivery,
    DeliveryStore,
    Durability,
    FailureKind,
    IncidentMark,
    Job,
    JobState,
    LeaseLost,
    OutboxItem,
    PruneResult,
    RecordResult,
    SchemaVersionError,
    StoreError,
    StoreStats,
    after_failure,
    aging_case,
    backoff_delay,
    check_kind,
    create_key,
    job_from_row,
    kinds_from_rows,
    require_aware,
    revives,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: deliveries log and job queue.
    (
        """
        CREATE TABLE deliveries (
            seq          INTEGER PRIMARY KEY,
            delivery_id  TEXT    NOT NULL UNIQUE,
            incident_key TEXT,
            event        TEXT    NOT NULL,
            received_at  INTEGER NOT NULL,
            payload      BLOB    NOT NULL,
            job_id       INTEGER
        )
        """,
        "CREATE INDEX deliveries_received_at ON deliveries (received_at)",
        "CREATE INDEX deliveries_job_id ON deliveries (job_id)",
        # AUTOINCREMENT: ids are never reused after pruning, so a stale worker's job id can never name a
        # newer job.
        """
        CREATE TABLE jobs (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_key TEXT    NOT NULL,
            state        TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
            attempts     INTEGER NOT NULL CHECK (attempts >= 0),
            deliveries   INTEGER NOT NULL CHECK (deliveries >= 0),
            not_before   INTEGER NOT NULL,
            lease_until  INTEGER,
            worker_id    TEXT,
            last_error   TEXT,
            dirty_at     INTEGER,
            reason       TEXT    NOT NULL,
            created_at   INTEGER NOT NULL,
            updated_at   INTEGER NOT NULL,
            CHECK ((state = 'running') = (lease_until IS NOT NULL)),
            CHECK (state <> 'running' OR worker_id IS NOT NULL),
            CHECK (dirty_at IS NULL OR state = 'running')
        )
        """,
        # Invariant I3, enforced by the database itself.
        "CREATE UNIQUE INDEX jobs_one_active_per_incident ON jobs (incident_key) WHERE state <> 'done'",
        # Partial indexes keep claim O(log n) however many jobs wait, and skip the done history. A plain
        # index on state would tempt the planner into scanning and sorting every pending row.
        "CREATE INDEX jobs_pending_ready ON jobs (not_before, id) WHERE state = 'pending'",
        "CREATE INDEX jobs_running_lease ON jobs (lease_until, id) WHERE state = 'running'",
        "CREATE INDEX jobs_dead ON jobs (updated_at, id) WHERE state = 'dead'",
    ),
    # 2: what the sweep knows of each incident (a cache: losing it costs one reconcile per open incident),
    # and the X-Gitlab-Event-UUID of deliveries, which the worker forwards on its API calls.
    (
        """
        CREATE TABLE incident_marks (
            incident_key TEXT    PRIMARY KEY,
            seen_at      INTEGER NOT NULL,
            next_due     INTEGER
        )
        """,
        "ALTER TABLE deliveries ADD COLUMN event_uuid TEXT",
        "ALTER TABLE jobs ADD COLUMN event_uuid TEXT",
    ),
    # 3: sticky dead letters (not revived by deliveries that show no change), the change key of the latest
    # delivery, and the children a reconcile is creating (never created twice by retries).
    (
        "ALTER TABLE jobs ADD COLUMN sticky INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN change_key TEXT",
        """
        CREATE TABLE create_attempts (
            incident_key TEXT    NOT NULL,
            channel      TEXT    NOT NULL,
            attempted_at INTEGER NOT NULL,
            child_iid    INTEGER,
            PRIMARY KEY (incident_key, channel)
        )
        """,
    ),
    # 4: delayed jobs: a reconcile's requeue time waits in the queue (``not_before``), marked as such so that
    # new work makes it due at once. Incidents the sweep knew to be due later get their delayed job now.
    (
        "ALTER TABLE jobs ADD COLUMN delayed INTEGER NOT NULL DEFAULT 0",
        """
        INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, reason, created_at, updated_at,
                          delayed)
        SELECT m.incident_key, 'pending', 0, 0, m.next_due, 'requeue', m.seen_at, m.seen_at, 1
        FROM incident_marks m
        WHERE m.next_due IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.incident_key = m.incident_key AND j.state <> 'done')
        """,
    ),
    # 5: the Slack outbox: every message the plan sends to Slack, sent once (summaries edited in place).
    (
        """
        CREATE TABLE chat_outbox (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            key          TEXT    NOT NULL UNIQUE,
            incident_key TEXT    NOT NULL,
            target       TEXT    NOT NULL,
            text         TEXT    NOT NULL,
            summary      INTEGER NOT NULL DEFAULT 0,
            channel      TEXT,
            ts           TEXT,
            sent_text    TEXT,
            state        TEXT    NOT NULL DEFAULT 'pending',
            reason       TEXT,
            unsure       INTEGER NOT NULL DEFAULT 1,
            updated_at   INTEGER NOT NULL
        )
        """,
        "CREATE INDEX chat_outbox_incident ON chat_outbox (incident_key, state)",
    ),
    # 6: how far back a Slack message's history read goes (its first send attempt, or the incident's start).
    ("ALTER TABLE chat_outbox ADD COLUMN history_from INTEGER",),
    # 7: budgets of GitLab's per-endpoint limits (new notes, new issues), one row per budget, shared by every
    # process on the host: the times of its last grants (a JSON list), and a time before which nothing is
    # granted, Unix seconds (bot.gitlab.budget).
    (
        """
        CREATE TABLE IF NOT EXISTS api_budgets (
            key        TEXT PRIMARY KEY,
            not_before REAL NOT NULL DEFAULT 0,
            grants     TEXT NOT NULL DEFAULT '[]'
        )
        """,
    ),
    # 8: priorities (``bot.core.urgency``): claims serve the most urgent ready job first, one short lookup per
    # priority in this index. Jobs queued before get NORMAL (3).
    (
        "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 3",
        "CREATE INDEX jobs_pending_by_priority ON jobs (priority, not_before, id) WHERE state = 'pending'",
    ),
    # 9: the job kind is a column (which loop claims the job); one active job per kind and incident. Jobs
    # queued under the old ``slack:<incident key>`` key become kind 'slack' with the bare incident key.
    (
        "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'gitlab'",
        "DROP INDEX jobs_one_active_per_incident",
        "UPDATE jobs SET kind = 'slack', incident_key = substr(incident_key, 7)"
        " WHERE substr(incident_key, 1, 6) = 'slack:'",
        "CREATE UNIQUE INDEX jobs_one_active_per_incident ON jobs (kind, incident_key) WHERE state <> 'done'",
        "DROP INDEX jobs_pending_by_priority",
        "CREATE INDEX jobs_pending_by_priority ON jobs (kind, priority, not_before, id) WHERE state = 'pending'",
    ),
    # 10: one outbox for every outbound integration, keyed by (integration, item key), in one vocabulary:
    # intent, trying, sent (with its remote reference), refused. The Slack outbox's rows move in as integration
    # 'slack': pending -> intent, or trying when a send of it may have happened (unsure); channel and ts ->
    # remote "channel ts" (just "channel" for a channel the bot created).
    (
        """
        CREATE TABLE outbox (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            integration  TEXT    NOT NULL,
            key          TEXT    NOT NULL,
            incident_key TEXT    NOT NULL,
            target       TEXT    NOT NULL,
            text         TEXT    NOT NULL,
            summary      INTEGER NOT NULL DEFAULT 0,
            state        TEXT    NOT NULL DEFAULT 'intent' CHECK (state IN ('intent', 'trying', 'sent', 'refused')),
            remote       TEXT,
            sent_text    TEXT,
            reason       TEXT,
            unsure       INTEGER NOT NULL DEFAULT 1,
            history_from INTEGER,
            updated_at   INTEGER NOT NULL,
            UNIQUE (integration, key)
        )
        """,
        "CREATE INDEX outbox_incident ON outbox (integration, incident_key, state)",
        """
        INSERT INTO outbox (seq, integration, key, incident_key, target, text, summary, state, remote, sent_text,
                            reason, unsure, history_from, updated_at)
        SELECT seq, 'slack', key, incident_key, target, text, summary,
               CASE WHEN state <> 'pending' THEN state WHEN unsure = 1 THEN 'trying' ELSE 'intent' END,
               CASE WHEN channel IS NULL THEN NULL WHEN coalesce(ts, '') = '' THEN channel
                    ELSE channel || ' ' || ts END,
               sent_text, reason, unsure, history_from, updated_at
        FROM chat_outbox ORDER BY seq
        """,
        "DROP TABLE chat_outbox",
        # The GitLab create log is the same state machine: a create about to happen is 'trying', one GitLab
        # answered is 'sent' with the child's iid as its remote reference.
        """
        INSERT INTO outbox (integration, key, incident_key, target, text, summary, state, remote, unsure,
                            history_from, updated_at)
        SELECT 'gitlab', incident_key || '|' || channel, incident_key, channel, '', 0,
               CASE WHEN child_iid IS NULL THEN 'trying' ELSE 'sent' END, CAST(child_iid AS TEXT), 1,
               attempted_at, attempted_at
        FROM create_attempts
        """,
        "DROP TABLE create_attempts",
    ),
)
"""Ordered schema migrations; migration ``i`` brings the database to version ``i + 1``. Append only: never
edit a released entry, since databases in the field have already run it."""

SCHEMA_VERSION = len(MIGRATIONS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_PRUNE_BATCH = 500

_JOB_COLUMNS = (
    "id, incident_key, state, attempts, deliveries, not_before, lease_until, worker_id, last_error, "
    "dirty_at, created_at, updated_at, reason, event_uuid, sticky, delayed, priority, kind"
)


def _claim_sql() -> str:
    """The ready job of the kind ``:kind`` to claim next (see :meth:`DeliveryStore.claim`): the first ready pending job
    of each priority by ``not_before`` (one index lookup each), and the running jobs whose lease expired (as
    many as there are workers at most), ranked by ready time plus the priority's aging allowance."""
    of_kind = "kind = :kind"
    pending = " UNION ALL ".join(
        f"SELECT * FROM (SELECT id, not_before + {AGING[p] // _MICRO} AS rank, priority FROM jobs"
        f" WHERE state = 'pending' AND priority = {int(p)} AND not_before <= :now AND {of_kind}"
        " ORDER BY not_before, id LIMIT 1)"
        for p in Priority
    )
    expired = (
        f"SELECT id, lease_until + {aging_case('priority', lambda d: str(d // _MICRO))} AS rank, priority FROM jobs"
        f" WHERE state = 'running' AND lease_until <= :now AND {of_kind}"
    )
    return f"SELECT id FROM ({pending} UNION ALL {expired}) ORDER BY rank, priority, id LIMIT 1"


_CLAIM = _claim_sql()


def _us(value: datetime, name: str = "datetime") -> int:
    """Timestamps are stored as integer microseconds since the epoch (UTC): exact, and ordered by value."""
    return (require_aware(value, name) - _EPOCH) // _MICRO


def _dt(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _dt_or_none(value: int | None) -> datetime | None:
    return None if value is None else _dt(value)


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, _dt)


def _positive(lease: timedelta, name: str) -> int:
    if lease <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {lease}")
    return lease // _MICRO


class _ThreadConn(threading.local):
    conn: sqlite3.Connection | None = None
    pid: int = 0


class SQLiteStore(DeliveryStore):
    """The delivery store in one SQLite file (see the module docstring for concurrency and durability).

    ``busy_timeout`` (seconds) bounds how long a write waits for another writer; it is well under GitLab's
    10 s webhook timeout, so a stuck lock turns into a 5xx rather than a hung request.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        busy_timeout: float = 5.0,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', got {durability!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.path = Path(path)
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise ValueError(f"SQLite store needs a file path (each thread opens its own connection), got {path!r}")
        self.durability: Durability = durability
        self.max_attempts = max_attempts
        self.busy_timeout = busy_timeout
        self._local = _ThreadConn()
        self._inherited: list[sqlite3.Connection] = []
        self._closed = False
        self._create_file()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connections ----------------------------------------------------------------------------------

    def _create_file(self) -> None:
        try:
            private_file(self.path)  # 0600 in a 0700 directory; SQLite gives -wal and -shm the same mode
        except OSError as exc:
            raise StoreError(f"cannot create SQLite store {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durability == 'full' else 'NORMAL'}")
            mode = self._wal(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"SQLite store {self.path}: cannot switch to WAL mode (journal_mode is {mode})")
        return conn

    def _wal(self, conn: sqlite3.Connection) -> str:
        """Switch to WAL. On a new file that takes an exclusive lock, and SQLite may answer "locked" to a
        second process doing the same at once without waiting in its busy handler: retry, within the same
        busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        if self._closed:
            if local.conn is not None and local.pid == pid:
                local.conn.close()
                local.conn = None
            raise StoreError(f"SQLite store {self.path} is closed")
        if local.conn is not None and local.pid != pid:
            # Inherited through fork(): using or even closing it could disturb the parent's locks.
            self._inherited.append(local.conn)
            local.conn = None
        if local.conn is None:
            local.conn = self._connect()
            local.pid = pid
        return local.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; driver errors become :class:`StoreError`."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: cannot start a write: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"SQLite store {self.path}: {exc}") from exc
            raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A deferred transaction: several SELECTs see one snapshot."""
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"SQLite store {self.path} has schema version {current}, newer than the {SCHEMA_VERSION} "
                    "this incident-bot knows; upgrade incident-bot or use another database"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ'))",
                    (version,),
                )

    def close(self) -> None:
        """Close this thread's connection and refuse further use. Other threads' connections close when
        those threads end (closing them from here would race with their in-flight statements)."""
        self._closed = True
        local = self._local
        if local.conn is not None and local.pid == os.getpid():
            local.conn.close()
        local.conn = None

    # -- intake ---------------------------------------------------------------------------------------

    def _upsert_job(
        self,
        conn: sqlite3.Connection,
        incident_key: str,
        now: int,
        reason: str,
        delivery: bool,
        revive_dead: bool,
        event_uuid: str | None = None,
        change: str | None = None,
        priority: int = Priority.NORMAL,
        kind: str = DEFAULT_KIND,
    ) -> int:
        """Coalesce new work for ``incident_key`` into its active job of ``kind``, creating one if there is none.

        The job keeps the event UUID of the latest delivery that had one; work without one (a sweep)
        leaves it as it is. A waiting or running job keeps the more urgent priority of the two."""
        counted = 1 if delivery else 0
        priority = int(clamp(priority))
        row = conn.execute(
            "SELECT id, state, sticky, change_key FROM jobs WHERE kind = ? AND incident_key = ? AND state <> 'done'",
            (kind, incident_key),
        ).fetchone()
        if row is None:
            cur = conn.execute(
                "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, reason, created_at,"
                " updated_at, event_uuid, change_key, priority, kind)"
                " VALUES (?, 'pending', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (incident_key, counted, now, reason, now, now, event_uuid, change, priority, kind),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid
        job_id, state, sticky, known_change = row
        if state == JobState.PENDING:
            # A back-off is kept; a delayed job (waiting for a requeue time) becomes due now.
            conn.execute(
                "UPDATE jobs SET deliveries = deliveries + ?, reason = ?, updated_at = max(updated_at, ?),"
                " not_before = CASE WHEN delayed THEN min(not_before, ?) ELSE not_before END, delayed = 0,"
                " event_uuid = coalesce(?, event_uuid), change_key = coalesce(?, change_key),"
                " priority = min(priority, ?) WHERE id = ?",
                (counted, reason, now, now, event_uuid, change, priority, job_id),
            )
        elif state == JobState.RUNNING:
            conn.execute(
                "UPDATE jobs SET deliveries = deliveries + ?, reason = ?, dirty_at = coalesce(dirty_at, ?),"
                " updated_at = max(updated_at, ?), event_uuid = coalesce(?, event_uuid),"
                " change_key = coalesce(?, change_key), priority = min(priority, ?) WHERE id = ?",
                (counted, reason, now, now, event_uuid, change, priority, job_id),
            )
        elif revive_dead and revives(bool(sticky), known_change, change):
            conn.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, sticky = 0, deliveries = deliveries + ?,"
                " not_before = ?, reason = ?, updated_at = max(updated_at, ?), event_uuid = coalesce(?, event_uuid),"
                " change_key = coalesce(?, change_key), priority = ? WHERE id = ?",
                (counted, now, reason, now, event_uuid, change, priority, job_id),
            )
        return int(job_id)

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
        if not delivery_id:
            raise ValueError("delivery_id must not be empty")
        now = _us(received_at, "received_at")
        with self._write() as conn:
            seen = conn.execute("SELECT job_id FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
            if seen is not None:
                return RecordResult(new=False, job_id=seen[0])
            job_id = None
            if incident_key is not None:
                job_id = self._upsert_job(
                    conn, incident_key, now, event, True, True, event_uuid=event_uuid, change=change, priority=priority
                )
            conn.execute(
                "INSERT INTO deliveries (delivery_id, incident_key, event, received_at, payload, job_id, event_uuid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery_id, incident_key, event, now, bytes(payload), job_id, event_uuid),
            )
        return RecordResult(new=True, job_id=job_id)

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
        at = _us(now, "now")
        check_kind(kind)
        with self._write() as conn:
            return self._upsert_job(
                conn, incident_key, at, reason, delivery=False, revive_dead=revive_dead, priority=priority, kind=kind
            )

    # -- worker side ----------------------------------------------------------------------------------

    def _fetch(self, conn: sqlite3.Connection, job_id: int) -> Job | None:
        row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def _held(self, conn: sqlite3.Connection, job_id: int, worker_id: str) -> Job:
        job = self._fetch(conn, job_id)
        if job is None:
            raise LeaseLost(f"job {job_id}: no such job (worker {worker_id!r})")
        if job.state != JobState.RUNNING or job.worker_id != worker_id:
            raise LeaseLost(
                f"job {job_id}: worker {worker_id!r} does not hold its lease"
                f" (job is {job.state}, last held by {job.worker_id!r})"
            )
        return job

    def _after_failure(
        self,
        conn: sqlite3.Connection,
        job: Job,
        error: str,
        now: int,
        retry_in: timedelta | None,
        kind: FailureKind = "retry",
    ) -> JobState:
        delay = backoff_delay(job.attempts) if retry_in is None else retry_in
        retry_at = now + delay // _MICRO
        decision = after_failure(job.attempts, self.max_attempts, job.dirty, kind)
        if decision.state == JobState.PENDING:
            attempts = "0" if decision.reset_attempts else "attempts"
            conn.execute(
                f"UPDATE jobs SET state = 'pending', attempts = {attempts}, not_before = ?, lease_until = NULL,"
                " dirty_at = NULL, delayed = 0, last_error = ?, updated_at = ? WHERE id = ?",
                (retry_at, error, now, job.id),
            )
            return JobState.PENDING
        conn.execute(
            "UPDATE jobs SET state = 'dead', lease_until = NULL, dirty_at = NULL, sticky = ?, last_error = ?,"
            " updated_at = ? WHERE id = ?",
            (int(decision.sticky), error, now, job.id),
        )
        return JobState.DEAD

    def claim(self, worker_id: str, now: datetime, lease: timedelta, *, kind: str = DEFAULT_KIND) -> Job | None:
        if not worker_id:
            raise ValueError("worker_id must not be empty")
        check_kind(kind)
        at = _us(now, "now")
        lease_us = _positive(lease, "lease")
        with self._write() as conn:
            while True:
                row = conn.execute(_CLAIM, {"now": at, "kind": kind}).fetchone()
                if row is None:
                    return None
                job = self._fetch(conn, row[0])
                assert job is not None
                if job.state == JobState.RUNNING and job.attempts >= self.max_attempts:
                    error = f"lease expired on attempt {job.attempts} (worker {job.worker_id!r} died or hung)"
                    if job.last_error:
                        error += f"; error before that: {job.last_error}"
                    self._after_failure(conn, job, error, at, None)
                    continue
                conn.execute(
                    "UPDATE jobs SET state = 'running', worker_id = ?, lease_until = ?, attempts = attempts + 1,"
                    " dirty_at = NULL, delayed = 0, updated_at = ? WHERE id = ?",
                    (worker_id, at + lease_us, at, job.id),
                )
                claimed = self._fetch(conn, job.id)
                assert claimed is not None
                return claimed

    def complete(
        self,
        job_id: int,
        worker_id: str,
        *,
        now: datetime | None = None,
        requeue_at: datetime | None = None,
        priority: int | None = None,
    ) -> JobState:
        at = None if now is None else _us(now, "now")
        again = None if requeue_at is None else _us(requeue_at, "requeue_at")
        later = None if priority is None else int(clamp(priority))
        with self._write() as conn:
            job = self._held(conn, job_id, worker_id)
            if job.kind == DEFAULT_KIND:  # the create log belongs to the incident's GitLab reconcile
                conn.execute(
                    "DELETE FROM outbox WHERE integration = ? AND incident_key = ?", (CREATE_LOG, job.incident_key)
                )
            if job.dirty:
                conn.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, lease_until = NULL, dirty_at = NULL,"
                    " not_before = min(dirty_at, coalesce(?, dirty_at)), updated_at = coalesce(?, updated_at)"
                    " WHERE id = ?",
                    (again, at, job_id),
                )
                return JobState.PENDING
            if again is not None:
                conn.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, not_before = ?, delayed = 1, reason = 'requeue',"
                    " lease_until = NULL, updated_at = coalesce(?, updated_at), priority = coalesce(?, priority)"
                    " WHERE id = ?",
                    (again, at, later, job_id),
                )
                return JobState.PENDING
            conn.execute(
                "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = coalesce(?, updated_at) WHERE id = ?",
                (at, job_id),
            )
            return JobState.DONE

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
        at = _us(now, "now")
        if retry_in is not None and retry_in < timedelta(0):
            raise ValueError(f"retry_in must not be negative, got {retry_in}")
        with self._write() as conn:
            job = self._held(conn, job_id, worker_id)
            return self._after_failure(conn, job, error, at, retry_in, kind)

    def release(self, job_id: int, worker_id: str, *, now: datetime | None = None) -> None:
        at = None if now is None else _us(now, "now")
        with self._write() as conn:
            self._held(conn, job_id, worker_id)
            conn.execute(
                "UPDATE jobs SET state = 'pending', attempts = max(attempts - 1, 0), lease_until = NULL,"
                " dirty_at = NULL, updated_at = coalesce(?, updated_at) WHERE id = ?",
                (at, job_id),
            )

    def extend_lease(self, job_id: int, worker_id: str, now: datetime, lease: timedelta) -> Job:
        at = _us(now, "now")
        lease_us = _positive(lease, "lease")
        with self._write() as conn:
            self._held(conn, job_id, worker_id)
            conn.execute("UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ?", (at + lease_us, at, job_id))
            job = self._fetch(conn, job_id)
            assert job is not None
            return job

    # -- dead letters ---------------------------------------------------------------------------------

    def dead_jobs(self) -> list[Job]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'dead' ORDER BY updated_at, id"
            ).fetchall()
        return [_job(r) for r in rows]

    def retry_dead(self, job_id: int | None = None, *, now: datetime | None = None) -> int:
        at = None if now is None else _us(now, "now")
        where = "state = 'dead'" + ("" if job_id is None else " AND id = :id")
        with self._write() as conn:
            conn.execute(
                "DELETE FROM outbox WHERE integration = :default AND incident_key IN"
                f" (SELECT incident_key FROM jobs WHERE {where} AND kind = :default)",
                {"id": job_id, "default": DEFAULT_KIND},
            )
            cur = conn.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, sticky = 0, not_before = coalesce(:at, not_before),"
                f" updated_at = coalesce(:at, updated_at) WHERE {where}",
                {"at": at, "id": job_id},
            )
            return cur.rowcount

    # -- reading --------------------------------------------------------------------------------------

    # -- maintenance and introspection ----------------------------------------------------------------


    def latest_delivery(self, job_id: int) -> Delivery | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT delivery_id, incident_key, event, received_at, payload, job_id FROM deliveries"
                " WHERE job_id = ? ORDER BY seq DESC LIMIT 1",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return Delivery(row[0], row[1], row[2], _dt(row[3]), bytes(row[4]), row[5])
    def prune(self, older_than: datetime) -> PruneResult:
        """See :meth:`DeliveryStore.prune`. Deletes in batches of a few hundred rows, each its own
        transaction, so a large prune never holds the write lock long enough to delay intake."""
        cutoff = _us(older_than, "older_than")
        batches = (
            (
                "DELETE FROM deliveries WHERE seq IN (SELECT d.seq FROM deliveries d WHERE d.received_at < :cut"
                " AND (d.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = d.job_id"
                " AND j.state <> 'done')) LIMIT :n)"
            ),
            (
                "DELETE FROM jobs WHERE id IN (SELECT j.id FROM jobs j WHERE j.state = 'done'"
                " AND j.updated_at < :cut AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.job_id = j.id)"
                " LIMIT :n)"
            ),
        )
        counts = [0, 0]
        for i, statement in enumerate(batches):
            while True:
                with self._write() as conn:
                    deleted = conn.execute(statement, {"cut": cutoff, "n": _PRUNE_BATCH}).rowcount
                counts[i] += deleted
                if deleted < _PRUNE_BATCH:
                    break
        return PruneResult(deliveries=counts[0], jobs=counts[1])

    def prune_dead(self, older_than: datetime) -> PruneResult:
        """See :meth:`DeliveryStore.prune_dead`; batched like :meth:`prune`."""
        cutoff = _us(older_than, "older_than")
        counts = [0, 0]
        while True:
            with self._write() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM jobs WHERE state = 'dead' AND updated_at < ? ORDER BY updated_at, id LIMIT ?",
                        (cutoff, _PRUNE_BATCH),
                    )
                ]
                marks = ",".join("?" * len(ids))
                if ids:
                    counts[0] += conn.execute(f"DELETE FROM deliveries WHERE job_id IN ({marks})", ids).rowcount
                    conn.execute(
                        f"DELETE FROM outbox WHERE integration = ? AND incident_key IN"
                        f" (SELECT incident_key FROM jobs WHERE id IN ({marks}) AND kind = ?)",
                        [CREATE_LOG, *ids, DEFAULT_KIND],
                    )
                    counts[1] += conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids).rowcount
            if len(ids) < _PRUNE_BATCH:
                return PruneResult(deliveries=counts[0], jobs=counts[1])

    def note_create(self, incident_key: str, channel: str, now: datetime) -> CreateRecord | None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT history_from, remote FROM outbox WHERE integration = ? AND key = ?",
                (CREATE_LOG, create_key(incident_key, channel)),
            ).fetchone()
            if row is not None:
                return CreateRecord(_dt(row[0]), None if row[1] is None else int(row[1]))
            at = _us(now, "now")
            conn.execute(
                "INSERT INTO outbox (integration, key, incident_key, target, text, state, unsure, history_from,"
                " updated_at) VALUES (?, ?, ?, ?, '', 'trying', 1, ?, ?)",
                (CREATE_LOG, create_key(incident_key, channel), incident_key, channel, at, at),
            )
            return None

    def created(self, incident_key: str, channel: str, child_iid: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'sent', remote = ?, sent_text = '' WHERE integration = ? AND key = ?",
                (str(int(child_iid)), CREATE_LOG, create_key(incident_key, channel)),
            )

    def forget_create(self, incident_key: str, channel: str) -> None:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM outbox WHERE integration = ? AND key = ?", (CREATE_LOG, create_key(incident_key, channel))
            )

    # -- the outbox of the outbound integrations --------------------------------------------------------

    def offer(self, integration: str, incident_key: str, items: Sequence[Any], now: datetime | None = None) -> int:
        at = _us(now or datetime.now(UTC), "now")
        with self._write() as conn:
            # The first items of an incident this store knows nothing of may have been sent before (an emptied
            # database): they are looked for on the remote side. Later ones are new for sure.
            known = conn.execute(
                "SELECT 1 FROM outbox WHERE integration = ? AND incident_key = ? LIMIT 1", (integration, incident_key)
            )
            unsure = int(known.fetchone() is None)
            for m in items:
                since = getattr(m, "since", None)
                conn.execute(
                    "INSERT INTO outbox (integration, key, incident_key, target, text, summary, state, unsure,"
                    " updated_at, history_from) VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?, ?)"
                    " ON CONFLICT (integration, key) DO UPDATE SET text = excluded.text,"
                    " state = CASE WHEN outbox.state = 'trying' THEN 'trying' ELSE 'intent' END,"
                    " updated_at = excluded.updated_at"
                    " WHERE outbox.summary = 1 AND outbox.state <> 'refused' AND outbox.text <> excluded.text",
                    (integration, m.key, incident_key, m.target, m.text, int(bool(m.summary)), unsure, at,
                     _us(since, "since") if unsure and since is not None else None),
                )
            row = conn.execute(
                "SELECT count(*) FROM outbox WHERE integration = ? AND incident_key = ?"
                " AND state IN ('intent', 'trying')",
                (integration, incident_key),
            ).fetchone()
            return int(row[0])

    def pending(self, integration: str, incident_key: str) -> list[OutboxItem]:
        return self._items(integration, incident_key, " AND state IN ('intent', 'trying')")

    def items(self, integration: str, incident_key: str) -> list[OutboxItem]:
        return self._items(integration, incident_key, "")

    def _items(self, integration: str, incident_key: str, where: str) -> list[OutboxItem]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT key, incident_key, target, text, summary, state, remote, sent_text, reason, unsure,"
                f" history_from, updated_at, integration FROM outbox WHERE integration = ? AND incident_key = ?{where}"
                " ORDER BY seq",
                (integration, incident_key),
            ).fetchall()
        return [OutboxItem(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], bool(r[9]),
                           _dt_or_none(r[10]), _dt_or_none(r[11]), r[12]) for r in rows]

    def by_remote(self, integration: str, remote: str) -> list[OutboxItem]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT key, incident_key, target, text, summary, state, remote, sent_text, reason, unsure,"
                " history_from, updated_at, integration FROM outbox WHERE integration = ? AND remote = ?"
                " ORDER BY seq",
                (integration, remote),
            ).fetchall()
        return [OutboxItem(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], bool(r[9]),
                           _dt_or_none(r[10]), _dt_or_none(r[11]), r[12]) for r in rows]

    def mark_trying(self, integration: str, keys: Sequence[str], now: datetime | None = None) -> None:
        at = _us(now or datetime.now(UTC), "now")
        with self._write() as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'trying', unsure = 1,"
                " history_from = CASE WHEN unsure = 0 THEN coalesce(history_from, ?) ELSE history_from END"
                " WHERE integration = ? AND key = ? AND state IN ('intent', 'trying')",
                [(at, integration, k) for k in keys],
            )

    def revive_refused(self, integration: str, incident_key: str, keys: Sequence[str], before: datetime) -> int:
        at = _us(before, "before")
        with self._write() as conn:
            return sum(
                conn.execute(
                    "UPDATE outbox SET state = 'intent', unsure = 1 WHERE integration = ? AND key = ?"
                    " AND incident_key = ? AND state = 'refused' AND updated_at <= ?",
                    (integration, k, incident_key, at),
                ).rowcount
                for k in keys
            )

    def mark_sent(self, integration: str, key: str, remote: str, text: str, now: datetime | None = None) -> None:
        at = _us(now or datetime.now(UTC), "now")
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET remote = ?, sent_text = ?, reason = NULL, updated_at = ?,"
                " state = CASE WHEN text = ? THEN 'sent' ELSE 'intent' END WHERE integration = ? AND key = ?",
                (remote, text, at, text, integration, key),
            )

    def mark_refused(self, integration: str, key: str, reason: str, now: datetime | None = None) -> None:
        at = _us(now or datetime.now(UTC), "now")
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET state = 'refused', reason = ?, updated_at = ? WHERE integration = ? AND key = ?",
                (reason, at, integration, key),
            )

    def refused_targets(self, integration: str | None, incident_key: str) -> dict[str, str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT target, reason FROM outbox WHERE incident_key = ? AND (? IS NULL OR integration = ?)"
                " AND (state = 'refused' OR (state IN ('intent', 'trying') AND reason IS NOT NULL))"
                " ORDER BY updated_at, seq",
                (incident_key, integration, integration),
            ).fetchall()
        return {target: reason or "" for target, reason in rows}

    def mark_incident(self, incident_key: str, seen_at: datetime, next_due: datetime | None) -> None:
        due = None if next_due is None else _us(next_due, "next_due")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO incident_marks (incident_key, seen_at, next_due) VALUES (?, ?, ?) "
                "ON CONFLICT (incident_key) DO UPDATE SET seen_at = excluded.seen_at, next_due = excluded.next_due",
                (incident_key, _us(seen_at, "seen_at"), due),
            )

    def budget_take(self, key: str, now: float, cap: int, window: float, max_wait: float) -> float:
        with self._write() as conn:
            row = conn.execute("SELECT not_before, grants FROM api_budgets WHERE key = ?", (key,)).fetchone()
            not_before, known = (0.0, []) if row is None else (float(row[0]), json.loads(row[1]))
            wait, grants = window_take(known, not_before, now, cap, window)
            if wait <= max_wait:
                conn.execute(
                    "INSERT INTO api_budgets (key, grants) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET grants = excluded.grants",
                    (key, json.dumps(grants)),
                )
            return wait

    def budget_block(self, key: str, until: float) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO api_budgets (key, not_before) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET not_before = max(not_before, excluded.not_before)",
                (key, until),
            )

    def incident_marks(self) -> dict[str, IncidentMark]:
        with self._read() as conn:
            rows = conn.execute("SELECT incident_key, seen_at, next_due FROM incident_marks").fetchall()
        return {key: IncidentMark(key, _dt(seen), _dt_or_none(due)) for key, seen, due in rows}

    @staticmethod
    def _depth(conn: sqlite3.Connection) -> dict[str, int]:
        pending, running, dead = conn.execute(
            "SELECT (SELECT count(*) FROM jobs WHERE state = 'pending' AND NOT delayed),"
            " (SELECT count(*) FROM jobs WHERE state = 'running'),"
            " (SELECT count(*) FROM jobs WHERE state = 'dead')"
        ).fetchone()
        return {"pending": pending, "running": running, "dead": dead}

    def stats(self) -> StoreStats:
        with self._read() as conn:
            depth = self._depth(conn)
            total = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
            delayed = conn.execute("SELECT count(*) FROM jobs WHERE state = 'pending' AND delayed").fetchone()[0]
            deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
            oldest = conn.execute(
                "SELECT min(not_before) FROM jobs WHERE state = 'pending' AND NOT delayed"
            ).fetchone()[0]
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            kinds = kinds_from_rows(conn.execute(
                "SELECT kind, state, count(*) FROM jobs WHERE state IN ('running', 'dead')"
                " OR (state = 'pending' AND NOT delayed) GROUP BY kind, state"
            ).fetchall())
        return StoreStats(
            pending=depth["pending"],
            running=depth["running"],
            dead=depth["dead"],
            done=total - sum(depth.values()) - delayed,
            deliveries=deliveries,
            oldest_pending=_dt_or_none(oldest),
            schema_version=version,
            delayed=delayed,
            kinds=kinds,
        )

    def ping(self) -> None:
        """Reads the schema table, so the database file itself is touched, not just the connection."""
        with self._read() as conn:
            conn.execute("SELECT max(version) FROM schema_version").fetchone()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, durability={self.durability!r}, max_attempts={self.max_attempts})"
