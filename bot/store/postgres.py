"""PostgreSQL backend of the delivery store: one database shared by every replica on every host.

Chosen with ``INCIDENT_BOT_DB=postgresql://user:password@host:5432/dbname`` (any libpq URL; add
``?options=-csearch_path%3Dbot`` to keep the tables in their own schema). Needs psycopg 3, imported only
when this module is.

How the invariants of :mod:`bot.store.base` are kept
----------------------------------------------------
- **I1 dedup**: ``deliveries.delivery_id`` is ``UNIQUE``; the delivery row is inserted with
  ``ON CONFLICT DO NOTHING`` in the same transaction that coalesced its job, and a conflict rolls the
  whole transaction back. A duplicate that is still in flight in another transaction makes the insert
  wait for it, so two copies racing each other also count once.
- **I3 one active job per incident**: a partial unique index on ``jobs (incident_key) WHERE state <>
  'done'``. Coalescing is one ``INSERT … ON CONFLICT (incident_key) WHERE state <> 'done' DO UPDATE``,
  which PostgreSQL makes atomic: two receivers for one incident never create two jobs, and one that
  races a ``complete`` either marks the running job dirty or creates the next job after it is done.
- **I5 exclusive lease**: ``claim`` locks its candidate with ``FOR UPDATE SKIP LOCKED``, so concurrent
  claimers take different jobs instead of queueing on one row; ``complete``/``fail``/``release``/
  ``extend_lease`` only touch a row whose ``state = 'running' AND worker_id = <caller>``.
- Readiness (pending: ``not_before``, running: ``lease_until``) is a stored generated column ``ready_at``
  with a partial index on ``(priority, ready_at, id)``: claim reads the first few ready jobs of each
  priority (one short index scan each, however long the backlog or the done history), ranks them as the
  interface defines (ready time plus the priority's aging allowance) and locks the best one that no
  concurrent claim holds.

Every method is one transaction. Transactions run at READ COMMITTED; one that loses a deadlock (only
possible between two multi-row ``retry_dead`` or ``prune`` calls) is retried from the start.

Connections
-----------
Each call borrows a connection from a small per-process stack of idle ones, or opens one, and gives it
back after its transaction (threads never share a connection at once; short-lived threads, such as a
job's lease heartbeat, reuse the same few). A connection the server has ended (restart, fail-over) is
noticed without a round trip and replaced, and one idle for a while is also checked with a round trip
(a firewall may have dropped it silently), so those cost a reconnect rather than a failed webhook.

Nothing ever waits for a free connection. When the database is away, a call fails at once with
:class:`StoreError` (connection refused), or after ``connect_timeout`` when the host does not answer; for
a second after a failed connect every call fails without trying, so a receiver spools deliveries at full
speed during an outage (``bot.store.spool``). Connections inherited through ``fork()`` are left alone in
the child, which opens its own: the parent's sockets must not be used or closed from two processes.

Durability (``durability=``)
---------------------------
The bot is a client: once ``COMMIT`` returns, the row is in the server and no crash of the bot can lose
it. ``"full"`` (default) sets ``synchronous_commit = on``: the commit is flushed to the server's WAL (and
to synchronous standbys, if configured) before it returns, so it also survives a crash of the database
host. ``"normal"`` sets ``synchronous_commit = off``: a crash of the database server may lose the last
fraction of a second of acknowledged writes (never corrupting anything), which the periodic sweep repairs.

Schema
------
:data:`MIGRATIONS`, numbered as the SQLite ones so a schema version means the same tables on both
backends, are applied at open in one transaction under a transaction-level advisory lock: replicas that
start together take turns, the second finds the work done. A database newer than this code is refused.
"""

from __future__ import annotations

import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg import conninfo as pg_conninfo
from psycopg.pq import TransactionStatus

from bot.core.urgency import AGING, Priority, clamp
from bot.gitlab.budget import window_take
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
    backoff_delay,
    check_kind,
    create_key,
    job_from_row,
    kinds_from_rows,
    require_aware,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "describe_url", "normalise_url"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: deliveries log and job queue.
    (
        """
        CREATE TABLE deliveries (
            seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            delivery_id  text        NOT NULL UNIQUE,
            incident_key text,
            event        text        NOT NULL,
            received_at  timestamptz NOT NULL,
            payload      bytea       NOT NULL,
            job_id       bigint
        )
        """,
        "CREATE INDEX deliveries_received_at ON deliveries (received_at)",
        "CREATE INDEX deliveries_job_id ON deliveries (job_id)",
        # An identity column never hands out an id twice, even after pruning, so a stale worker's job id can
        # never name a newer job.
        """
        CREATE TABLE jobs (
            id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            incident_key text        NOT NULL,
            state        text        NOT NULL CHECK (state IN ('pending', 'running', 'done', 'dead')),
            attempts     integer     NOT NULL CHECK (attempts >= 0),
            deliveries   integer     NOT NULL CHECK (deliveries >= 0),
            not_before   timestamptz NOT NULL,
            lease_until  timestamptz,
            worker_id    text,
            last_error   text,
            dirty_at     timestamptz,
            reason       text        NOT NULL,
            created_at   timestamptz NOT NULL,
            updated_at   timestamptz NOT NULL,
            ready_at     timestamptz GENERATED ALWAYS AS (
                CASE state WHEN 'pending' THEN not_before WHEN 'running' THEN lease_until END
            ) STORED,
            CHECK ((state = 'running') = (lease_until IS NOT NULL)),
            CHECK (state <> 'running' OR worker_id IS NOT NULL),
            CHECK (dirty_at IS NULL OR state = 'running')
        )
        """,
        # Invariant I3, enforced by the database itself; also the arbiter of the coalescing upsert.
        "CREATE UNIQUE INDEX jobs_one_active_per_incident ON jobs (incident_key) WHERE state <> 'done'",
        # claim: one ordered index scan over ready work only, skipping the done history.
        "CREATE INDEX jobs_ready ON jobs (ready_at, id) WHERE state IN ('pending', 'running')",
        # depth/stats count and date each state from its own small index; prune finds old done jobs.
        "CREATE INDEX jobs_pending ON jobs (not_before) WHERE state = 'pending'",
        "CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running'",
        "CREATE INDEX jobs_dead ON jobs (updated_at, id) WHERE state = 'dead'",
        "CREATE INDEX jobs_done ON jobs (updated_at) WHERE state = 'done'",
    ),
    # 2: what the sweep knows of each incident (a cache: losing it costs one reconcile per open incident),
    # and the X-Gitlab-Event-UUID of deliveries, which the worker forwards on its API calls.
    (
        """
        CREATE TABLE incident_marks (
            incident_key text        PRIMARY KEY,
            seen_at      timestamptz NOT NULL,
            next_due     timestamptz
        )
        """,
        "ALTER TABLE deliveries ADD COLUMN event_uuid text",
        "ALTER TABLE jobs ADD COLUMN event_uuid text",
    ),
    # 3: sticky dead letters (not revived by deliveries that show no change), the change key of the latest
    # delivery, and the children a reconcile is creating (never created twice by retries).
    (
        "ALTER TABLE jobs ADD COLUMN sticky boolean NOT NULL DEFAULT false",
        "ALTER TABLE jobs ADD COLUMN change_key text",
        """
        CREATE TABLE create_attempts (
            incident_key text        NOT NULL,
            channel      text        NOT NULL,
            attempted_at timestamptz NOT NULL,
            child_iid    bigint,
            PRIMARY KEY (incident_key, channel)
        )
        """,
    ),
    # 4: delayed jobs: a reconcile's requeue time waits in the queue (``not_before``), marked as such so that
    # new work makes it due at once. Incidents the sweep knew to be due later get their delayed job now.
    (
        "ALTER TABLE jobs ADD COLUMN delayed boolean NOT NULL DEFAULT false",
        """
        INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, reason, created_at, updated_at,
                          delayed)
        SELECT m.incident_key, 'pending', 0, 0, m.next_due, 'requeue', m.seen_at, m.seen_at, true
        FROM incident_marks m
        WHERE m.next_due IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.incident_key = m.incident_key AND j.state <> 'done')
        """,
    ),
    # 5: the Slack outbox: every message the plan sends to Slack, sent once (summaries edited in place).
    (
        """
        CREATE TABLE chat_outbox (
            seq          bigserial   PRIMARY KEY,
            key          text        NOT NULL UNIQUE,
            incident_key text        NOT NULL,
            target       text        NOT NULL,
            text         text        NOT NULL,
            summary      boolean     NOT NULL DEFAULT false,
            channel      text,
            ts           text,
            sent_text    text,
            state        text        NOT NULL DEFAULT 'pending',
            reason       text,
            unsure       boolean     NOT NULL DEFAULT true,
            updated_at   timestamptz NOT NULL
        )
        """,
        "CREATE INDEX chat_outbox_incident ON chat_outbox (incident_key, state)",
    ),
    # 6: how far back a Slack message's history read goes (its first send attempt, or the incident's start).
    ("ALTER TABLE chat_outbox ADD COLUMN history_from timestamptz",),
    # 7: budgets of GitLab's per-endpoint limits (new notes, new issues), one row per budget, shared by every
    # replica: the times of its last grants, and a time before which nothing is granted, Unix seconds
    # (bot.gitlab.budget).
    (
        """
        CREATE TABLE IF NOT EXISTS api_budgets (
            key        text               PRIMARY KEY,
            not_before double precision   NOT NULL DEFAULT 0,
            grants     double precision[] NOT NULL DEFAULT '{}'
        )
        """,
    ),
    # 8: priorities (``bot.core.urgency``): claims serve the most urgent ready job first, one short scan per
    # priority in this index. Jobs queued before get NORMAL (3).
    (
        "ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 3",
        "CREATE INDEX jobs_ready_by_priority ON jobs (priority, ready_at, id) WHERE state IN ('pending', 'running')",
    ),
    # 9: the job kind is a column (which loop claims the job); one active job per kind and incident. Jobs
    # queued under the old ``slack:<incident key>`` key become kind 'slack' with the bare incident key.
    (
        "ALTER TABLE jobs ADD COLUMN kind text NOT NULL DEFAULT 'gitlab'",
        "DROP INDEX jobs_one_active_per_incident",
        "UPDATE jobs SET kind = 'slack', incident_key = substr(incident_key, 7)"
        " WHERE substr(incident_key, 1, 6) = 'slack:'",
        "CREATE UNIQUE INDEX jobs_one_active_per_incident ON jobs (kind, incident_key) WHERE state <> 'done'",
        "DROP INDEX jobs_ready_by_priority",
        "CREATE INDEX jobs_ready_by_priority ON jobs (kind, priority, ready_at, id)"
        " WHERE state IN ('pending', 'running')",
    ),
    # 10: one outbox for every outbound integration, keyed by (integration, item key), in one vocabulary:
    # intent, trying, sent (with its remote reference), refused. The Slack outbox's rows move in as integration
    # 'slack': pending -> intent, or trying when a send of it may have happened (unsure); channel and ts ->
    # remote "channel ts" (just "channel" for a channel the bot created).
    (
        """
        CREATE TABLE outbox (
            seq          bigserial   PRIMARY KEY,
            integration  text        NOT NULL,
            key          text        NOT NULL,
            incident_key text        NOT NULL,
            target       text        NOT NULL,
            text         text        NOT NULL,
            summary      boolean     NOT NULL DEFAULT false,
            state        text        NOT NULL DEFAULT 'intent'
                                     CHECK (state IN ('intent', 'trying', 'sent', 'refused')),
            remote       text,
            sent_text    text,
            reason       text,
            unsure       boolean     NOT NULL DEFAULT true,
            history_from timestamptz,
            updated_at   timestamptz NOT NULL,
            UNIQUE (integration, key)
        )
        """,
        "CREATE INDEX outbox_incident ON outbox (integration, incident_key, state)",
        """
        INSERT INTO outbox (seq, integration, key, incident_key, target, text, summary, state, remote, sent_text,
                            reason, unsure, history_from, updated_at)
        SELECT seq, 'slack', key, incident_key, target, text, summary,
               CASE WHEN state <> 'pending' THEN state WHEN unsure THEN 'trying' ELSE 'intent' END,
               CASE WHEN channel IS NULL THEN NULL WHEN coalesce(ts, '') = '' THEN channel
                    ELSE channel || ' ' || ts END,
               sent_text, reason, unsure, history_from, updated_at
        FROM chat_outbox ORDER BY seq
        """,
        "SELECT setval(pg_get_serial_sequence('outbox', 'seq'), coalesce((SELECT max(seq) FROM outbox), 0) + 1, false)",
        "DROP TABLE chat_outbox",
        # The GitLab create log is the same state machine: a create about to happen is 'trying', one GitLab
        # answered is 'sent' with the child's iid as its remote reference.
        """
        INSERT INTO outbox (integration, key, incident_key, target, text, summary, state, remote, unsure,
                            history_from, updated_at)
        SELECT 'gitlab', incident_key || '|' || channel, incident_key, channel, '', false,
               CASE WHEN child_iid IS NULL THEN 'trying' ELSE 'sent' END, child_iid::text, true,
               attempted_at, attempted_at
        FROM create_attempts
        """,
        "DROP TABLE create_attempts",
    ),
)
"""Ordered schema migrations; migration ``i`` brings the database to version ``i + 1``. Append only: never
edit a released entry, since databases in the field have already run it. Keep the numbering in step with
``bot.store.sqlite.MIGRATIONS``."""

SCHEMA_VERSION = len(MIGRATIONS)

SCHEMA_VERSION_TABLE = (
    "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)

_MIGRATION_LOCK = int.from_bytes(b"incibot\x00", "big")
"""Key of the advisory lock that serialises migrations of one database (advisory locks are per database)."""

_PRUNE_BATCH = 500
_RETRIES = 3
"""Attempts of a transaction that lost a deadlock or a serialisation conflict (both leave nothing behind)."""
_IDLE_CHECK = 30.0
"""Seconds a connection may sit idle before it is checked (a server restart or fail-over, or a firewall
dropping idle flows, kills connections silently; the check costs one round trip)."""
_CONNECT_BACKOFF = 1.0
"""Seconds after a failed connect during which calls fail at once instead of trying (and possibly waiting
``connect_timeout``) again."""

_JOB_COLUMNS = (
    "id, incident_key, state, attempts, deliveries, not_before, lease_until, worker_id, last_error, "
    "dirty_at, created_at, updated_at, reason, event_uuid, sticky, delayed, priority, kind"
)

# Coalesce new work into the incident's active job, or create one. The arbiter is the partial unique index
# (I3); every SET reads the existing row ``j``. ``%(touch)s`` is false only for a dead job that is to be left
# dead (``enqueue(revive_dead=False)``): then every column keeps its value.
_UPSERT_JOB = """
    INSERT INTO jobs AS j (incident_key, state, attempts, deliveries, not_before, reason, created_at, updated_at,
                           event_uuid, change_key, priority, kind)
    SELECT %(key)s, 'pending', 0, %(counted)s, %(now)s, %(reason)s, %(now)s, %(now)s, %(uuid)s, %(change)s,
           %(priority)s, %(kind)s
    {guard}
    ON CONFLICT (kind, incident_key) WHERE state <> 'done' DO UPDATE SET
        state = CASE WHEN j.state = 'dead' AND {revive} THEN 'pending' ELSE j.state END,
        attempts = CASE WHEN j.state = 'dead' AND {revive} THEN 0 ELSE j.attempts END,
        sticky = CASE WHEN j.state = 'dead' AND {revive} THEN false ELSE j.sticky END,
        not_before = CASE WHEN j.state = 'dead' AND {revive} THEN excluded.not_before
                          WHEN j.state = 'pending' AND j.delayed THEN least(j.not_before, excluded.not_before)
                          ELSE j.not_before END,
        delayed = CASE WHEN j.state = 'pending' THEN false ELSE j.delayed END,
        deliveries = j.deliveries + CASE WHEN j.state <> 'dead' OR {revive} THEN excluded.deliveries ELSE 0 END,
        dirty_at = CASE WHEN j.state = 'running' THEN coalesce(j.dirty_at, excluded.not_before) ELSE j.dirty_at END,
        reason = CASE WHEN j.state <> 'dead' OR {revive} THEN excluded.reason ELSE j.reason END,
        updated_at = CASE WHEN j.state <> 'dead' OR {revive} THEN greatest(j.updated_at, excluded.updated_at)
                          ELSE j.updated_at END,
        event_uuid = CASE WHEN j.state <> 'dead' OR {revive} THEN coalesce(excluded.event_uuid, j.event_uuid)
                          ELSE j.event_uuid END,
        change_key = CASE WHEN j.state <> 'dead' OR {revive} THEN coalesce(excluded.change_key, j.change_key)
                          ELSE j.change_key END,
        priority = CASE WHEN j.state = 'dead' AND {revive} THEN excluded.priority
                        WHEN j.state = 'dead' THEN j.priority
                        ELSE least(j.priority, excluded.priority) END
    RETURNING id
"""

# Whether a dead job is revived: ``bot.store.base.revives`` in SQL (a sticky one only by a delivery that shows a
# change).
_REVIVE = (
    "(%(revive)s AND (NOT j.sticky OR (excluded.change_key IS NOT NULL"
    " AND excluded.change_key IS DISTINCT FROM j.change_key)))"
)

_ENQUEUE = _UPSERT_JOB.format(guard="", revive=_REVIVE)

# One statement records a delivery for an incident: the job upsert (skipped when the delivery id is already
# committed, so a plain re-send touches no job row) feeds the delivery row. A conflict on delivery_id returns no
# row and the caller rolls back, undoing the upsert done for a copy that was still in flight.
_RECORD_WITH_JOB = (
    "WITH job AS ("
    + _UPSERT_JOB.format(
        guard="WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE delivery_id = %(did)s)", revive=_REVIVE
    )
    + ") INSERT INTO deliveries (delivery_id, incident_key, event, received_at, payload, job_id, event_uuid)"
    " SELECT %(did)s, %(key)s, %(event)s, %(now)s, %(payload)s, (SELECT id FROM job), %(uuid)s"
    " ON CONFLICT (delivery_id) DO NOTHING RETURNING job_id"
)
_RECORD_WITHOUT_JOB = (
    "INSERT INTO deliveries (delivery_id, incident_key, event, received_at, payload, job_id, event_uuid)"
    " VALUES (%(did)s, NULL, %(event)s, %(now)s, %(payload)s, NULL, %(uuid)s)"
    " ON CONFLICT (delivery_id) DO NOTHING RETURNING job_id"
)

_CLAIM_WINDOW = 32
"""Ready jobs of each priority considered by one claim: more than claims that run at the same moment (replicas
times threads), which skip each other's rows."""

# Take the most urgent ready job (see ``DeliveryStore.claim``) and, unless it is a running job whose lease
# expired on its last allowed attempt (the caller buries that one, see claim), make it ours. ``candidates``:
# the first ready jobs of each priority, one index scan each, ranked by ready time plus the priority's aging
# allowance; ``c`` locks the best one no other claim holds, and is materialised once: one row locked.
_CLAIM = f"""
    WITH candidates AS (
        SELECT x.id, x.ready_at + p.allowance AS rank, p.priority
        FROM (VALUES {", ".join(f"({int(p)}, interval '{AGING[p].total_seconds():g} seconds')" for p in Priority)})
             AS p (priority, allowance)
        CROSS JOIN LATERAL (
            SELECT id, ready_at FROM jobs
            WHERE state IN ('pending', 'running') AND priority = p.priority AND ready_at <= %(now)s AND kind = %(kind)s
            ORDER BY ready_at, id LIMIT {_CLAIM_WINDOW}
        ) x
    ), c AS (
        SELECT jobs.id, jobs.state, jobs.attempts FROM candidates JOIN jobs ON jobs.id = candidates.id
        WHERE jobs.state IN ('pending', 'running') AND jobs.ready_at <= %(now)s
        ORDER BY candidates.rank, candidates.priority, jobs.id LIMIT 1
        FOR UPDATE OF jobs SKIP LOCKED
    ), claimed AS (
        UPDATE jobs SET state = 'running', worker_id = %(worker)s, lease_until = %(until)s,
                        attempts = jobs.attempts + 1, dirty_at = NULL, delayed = false, updated_at = %(now)s
        FROM c WHERE jobs.id = c.id AND NOT (c.state = 'running' AND c.attempts >= %(max)s)
        RETURNING {", ".join(f"jobs.{column}" for column in _JOB_COLUMNS.split(", "))}
    )
    SELECT c.id, claimed.* FROM c LEFT JOIN claimed ON claimed.id = c.id
"""

# Lock a budget of GitLab's per-endpoint limits for this transaction (creating its row on first use) and read it.
_BUDGET_LOCK = (
    "INSERT INTO api_budgets AS b (key) VALUES (%s) ON CONFLICT (key) DO UPDATE SET key = b.key"
    " RETURNING not_before, grants"
)


_T = TypeVar("_T")


class _Duplicate(Exception):
    """Raised inside ``record_delivery``'s transaction to roll it back: the delivery id was already recorded."""


_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()
"""Open stores, for the fork hook below."""


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def normalise_url(url: str) -> str:
    """A libpq URL from what a user may write: ``postgres://`` and SQLAlchemy's ``postgresql+psycopg://`` are
    accepted too."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    scheme = scheme.lower()
    if scheme == "postgres" or scheme.startswith("postgresql+"):
        scheme = "postgresql"
    if scheme != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"{scheme}://{rest}"


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/dbname`` for messages and logs: never the password, nor other parameters."""
    try:
        params = pg_conninfo.conninfo_to_dict(normalise_url(url))
    except (ValueError, psycopg.Error):
        return "postgresql://<unparsable URL>"
    user = f"{params['user']}@" if params.get("user") else ""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname') or ''}"


def _has_unread_input(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server sent something to an idle connection: on a session that LISTENs to nothing that is
    only ever the notice that it ended it (restart, fail-over, ``pg_terminate_backend``) and the end of the
    stream. One poll, no round trip: such a connection is dropped before it fails a call."""
    try:
        fd = conn.fileno()
        if hasattr(select, "poll"):  # no FD_SETSIZE limit, unlike select()
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        return True


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, _utc)


def _positive(value: timedelta, name: str) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {value}")
    return value


class PostgresStore(DeliveryStore):
    """The delivery store in a PostgreSQL database (see the module docstring for the design).

    ``busy_timeout`` (seconds) bounds how long a call waits for a row lock held by another transaction and,
    unless the URL sets ``connect_timeout``, for a new connection: well under GitLab's 10 s webhook timeout,
    so a stuck database turns into a 5xx (or a spooled delivery) rather than a hung request.
    ``max_idle_connections`` bounds the connections a process keeps open between calls.
    """

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = "full",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        busy_timeout: float = 5.0,
        max_idle_connections: int = 8,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', got {durability!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if max_idle_connections < 0:
            raise ValueError(f"max_idle_connections must not be negative, got {max_idle_connections}")
        self.url = normalise_url(url)
        self.where = describe_url(self.url)
        self.durability: Durability = durability
        self.max_attempts = max_attempts
        self.busy_timeout = busy_timeout
        self.max_idle_connections = max_idle_connections
        try:
            params = pg_conninfo.conninfo_to_dict(self.url)
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self.where}: bad URL: {_one_line(exc)}") from None
        self._connect_kwargs: dict[str, Any] = {}
        if not params.get("connect_timeout"):
            self._connect_kwargs["connect_timeout"] = max(1, round(busy_timeout))
        if not params.get("application_name"):
            self._connect_kwargs["application_name"] = "incident-bot"
        self._lock = threading.Lock()
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        """Idle connections of this process with when each was last used; the most recent is reused first."""
        self._inherited: list[list[tuple[psycopg.Connection[Any], float]]] = []
        self._connect_failed: tuple[float, str] | None = None
        self._closed = False
        self.schema_version_before, self.schema_version = self._migrate()
        _STORES.add(self)

    # -- connections ----------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection (a method's transaction is explicit) with this store's session settings."""
        now = time.monotonic()
        failed = self._connect_failed
        if failed is not None and now - failed[0] < _CONNECT_BACKOFF:
            raise StoreError(f"PostgreSQL store {self.where}: unreachable ({failed[1]}); retrying within a second")
        lock_ms = max(1, round(self.busy_timeout * 1000))
        commit = "on" if self.durability == "full" else "off"
        try:
            conn = psycopg.connect(self.url, autocommit=True, **self._connect_kwargs)
            try:
                # A process that hangs inside a transaction would hold its row locks for ever; a minute is far
                # more than any transaction here takes.
                conn.execute(
                    f"SET synchronous_commit = {commit}; SET lock_timeout = {lock_ms};"
                    " SET idle_in_transaction_session_timeout = 60000"
                )
            except BaseException:
                conn.close()
                raise
        except psycopg.Error as exc:
            self._connect_failed = (time.monotonic(), _one_line(exc))
            raise StoreError(f"PostgreSQL store {self.where}: cannot connect: {_one_line(exc)}") from exc
        self._connect_failed = None
        return conn

    def _acquire(self) -> psycopg.Connection[Any]:
        while True:
            with self._lock:
                if self._closed:
                    raise StoreError(f"PostgreSQL store {self.where} is closed")
                idle = self._idle.pop() if self._idle else None
            if idle is None:
                return self._connect()
            conn, last_used = idle
            if conn.closed or _has_unread_input(conn):
                conn.close()
                continue
            if time.monotonic() - last_used > _IDLE_CHECK:
                try:
                    conn.execute("")
                except psycopg.Error:
                    conn.close()
                    continue
            return conn

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        reusable = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        if reusable:
            with self._lock:
                if not self._closed and len(self._idle) < self.max_idle_connections:
                    self._idle.append((conn, time.monotonic()))
                    return
        with suppress(psycopg.Error):
            conn.close()

    def _after_fork_in_child(self) -> None:
        """The idle connections belong to the parent: keep them referenced and untouched (closing, or even
        garbage-collecting, them here would end the parent's sessions), and start afresh."""
        self._lock = threading.Lock()
        self._inherited.append(self._idle)
        self._idle = []

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of this process for one call; driver errors become :class:`StoreError`."""
        conn = self._acquire()
        try:
            yield conn
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store {self.where}: {_one_line(exc)}") from exc
        finally:
            self._release(conn)

    def _run(self, body: Callable[[psycopg.Cursor[Any]], _T], *, transaction: bool = True) -> _T:
        """Run ``body`` on a connection of this process, inside one explicit transaction unless ``transaction``
        is false (then each statement commits on its own: for bodies of a single statement, which saves the
        round trips of BEGIN and COMMIT). Retried when it lost a deadlock or a serialisation conflict, which
        leave nothing behind, so ``body`` must not have effects outside the database."""
        for attempt in range(1, _RETRIES + 1):
            try:
                with self._connection() as conn, conn.cursor() as cur:
                    if not transaction:
                        return body(cur)
                    with conn.transaction():
                        return body(cur)
            except StoreError as exc:
                transient = isinstance(
                    exc.__cause__, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure
                )
                if not transient or attempt == _RETRIES:
                    raise
        raise AssertionError("unreachable")

    def _execute(self, query: str, params: dict[str, Any] | Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement as its own transaction and return its rows (one statement reads one snapshot)."""

        def body(cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

        return self._run(body, transaction=False)

    def _count(self, query: str, params: dict[str, Any] | Sequence[Any] | None = None) -> int:
        """Run one writing statement as its own transaction and return how many rows it changed."""
        return self._run(lambda cur: cur.execute(query, params).rowcount, transaction=False)

    def _migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema; returns (version found, version now). One transaction, under the
        migration advisory lock; uses its own connection so a connection failure reports its real cause."""
        try:
            with psycopg.connect(self.url, **self._connect_kwargs) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                # Only create what is missing: a runtime role without DDL rights can open an up-to-date database.
                if cur.execute("SELECT to_regclass('schema_version')").fetchone() == (None,):
                    cur.execute(SCHEMA_VERSION_TABLE)
                row = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
                current = int(row[0]) if row else 0
                if current > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"PostgreSQL store {self.where} has schema version {current}, newer than the "
                        f"{SCHEMA_VERSION} this incident-bot knows; upgrade incident-bot or use another database"
                    )
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version - 1]:
                        cur.execute(statement)
                    cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL store {self.where}: {_one_line(exc)}") from None
        return current, max(current, SCHEMA_VERSION)

    def close(self) -> None:
        """Close the idle connections and refuse further use; a connection another thread is using is closed
        when that call ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            with suppress(psycopg.Error):
                conn.close()

    # -- intake ---------------------------------------------------------------------------------------

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
        params = {
            "did": delivery_id,
            "key": incident_key,
            "event": event,
            "now": require_aware(received_at, "received_at"),
            "payload": bytes(payload),
            "uuid": event_uuid,
            "change": change,
            "counted": 1,
            "reason": event,
            "revive": True,
            "priority": int(clamp(priority)),
            "kind": DEFAULT_KIND,
        }

        def body(cur: psycopg.Cursor[Any]) -> RecordResult:
            cur.execute(_RECORD_WITHOUT_JOB if incident_key is None else _RECORD_WITH_JOB, params)
            row = cur.fetchone()
            if row is None:
                raise _Duplicate
            return RecordResult(new=True, job_id=row[0])

        try:
            return self._run(body)
        except _Duplicate:
            rows = self._execute("SELECT job_id FROM deliveries WHERE delivery_id = %s", (delivery_id,))
            return RecordResult(new=False, job_id=rows[0][0] if rows else None)

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
        params = {
            "kind": check_kind(kind),
            "key": incident_key,
            "now": require_aware(now, "now"),
            "reason": reason,
            "uuid": None,
            "change": None,
            "counted": 0,
            "revive": revive_dead,
            "priority": int(clamp(priority)),
        }
        [(job_id,)] = self._execute(_ENQUEUE, params)
        return int(job_id)

    # -- worker side ----------------------------------------------------------------------------------

    @staticmethod
    def _fetch(cur: psycopg.Cursor[Any], job_id: int, *, lock: bool = False) -> Job | None:
        suffix = " FOR UPDATE" if lock else ""
        row = cur.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s{suffix}", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def _get_job(self, job_id: int) -> Job | None:
        rows = self._execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        return _job(rows[0]) if rows else None

    @staticmethod
    def _lease_lost(job_id: int, worker_id: str, job: Job | None) -> LeaseLost:
        if job is None:
            return LeaseLost(f"job {job_id}: no such job (worker {worker_id!r})")
        return LeaseLost(
            f"job {job_id}: worker {worker_id!r} does not hold its lease"
            f" (job is {job.state}, last held by {job.worker_id!r})"
        )

    def _held(self, cur: psycopg.Cursor[Any], job_id: int, worker_id: str) -> Job:
        """The job, row-locked for this transaction, if ``worker_id`` holds its lease; else :class:`LeaseLost`."""
        job = self._fetch(cur, job_id, lock=True)
        if job is None or job.state != JobState.RUNNING or job.worker_id != worker_id:
            raise self._lease_lost(job_id, worker_id, job)
        return job

    def _after_failure(
        self,
        cur: psycopg.Cursor[Any],
        job: Job,
        error: str,
        now: datetime,
        retry_in: timedelta | None,
        kind: FailureKind = "retry",
    ) -> JobState:
        retry_at = now + (backoff_delay(job.attempts) if retry_in is None else retry_in)
        error = error.replace("\x00", "\ufffd")  # text columns cannot hold NUL; error texts may quote any bytes
        decision = after_failure(job.attempts, self.max_attempts, job.dirty, kind)
        if decision.state == JobState.PENDING:
            attempts = 0 if decision.reset_attempts else job.attempts
            cur.execute(
                "UPDATE jobs SET state = 'pending', attempts = %s, not_before = %s, lease_until = NULL,"
                " dirty_at = NULL, delayed = false, last_error = %s, updated_at = %s WHERE id = %s",
                (attempts, retry_at, error, now, job.id),
            )
            return JobState.PENDING
        cur.execute(
            "UPDATE jobs SET state = 'dead', lease_until = NULL, dirty_at = NULL, sticky = %s, last_error = %s,"
            " updated_at = %s WHERE id = %s",
            (decision.sticky, error, now, job.id),
        )
        return JobState.DEAD

    def claim(self, worker_id: str, now: datetime, lease: timedelta, *, kind: str = DEFAULT_KIND) -> Job | None:
        if not worker_id:
            raise ValueError("worker_id must not be empty")
        at = require_aware(now, "now")
        params = {
            "kind": check_kind(kind), "now": at, "worker": worker_id, "until": at + _positive(lease, "lease"),
            "max": self.max_attempts,
        }

        def body(cur: psycopg.Cursor[Any]) -> Job | None:
            while True:
                row = cur.execute(_CLAIM, params).fetchone()
                if row is None:
                    return None
                if row[1] is not None:
                    return _job(row[1:])
                # The lease expired on the last allowed attempt: the job probably kills its worker. Count it
                # as a failure (the row is already locked by this transaction) and look for the next one.
                job = self._fetch(cur, row[0])
                assert job is not None
                error = f"lease expired on attempt {job.attempts} (worker {job.worker_id!r} died or hung)"
                if job.last_error:
                    error += f"; error before that: {job.last_error}"
                self._after_failure(cur, job, error, at, None)

        return self._run(body)

    def complete(
        self,
        job_id: int,
        worker_id: str,
        *,
        now: datetime | None = None,
        requeue_at: datetime | None = None,
        priority: int | None = None,
    ) -> JobState:
        at = None if now is None else require_aware(now, "now")
        again = None if requeue_at is None else require_aware(requeue_at, "requeue_at")
        later = None if priority is None else int(clamp(priority))
        # The reconcile converged: the children it was creating exist, so their create records are cleared.
        # Dirty: pending since the first change (or the requeue time if earlier). Else done, or delayed until
        # the requeue time.
        rows = self._execute(
            "WITH finished AS (UPDATE jobs SET"
            " state = CASE WHEN dirty_at IS NULL AND %(again)s::timestamptz IS NULL THEN 'done' ELSE 'pending' END,"
            " attempts = CASE WHEN dirty_at IS NULL AND %(again)s::timestamptz IS NULL THEN attempts ELSE 0 END,"
            " not_before = coalesce(least(dirty_at, %(again)s::timestamptz), not_before),"
            " delayed = dirty_at IS NULL AND %(again)s::timestamptz IS NOT NULL,"
            " reason = CASE WHEN dirty_at IS NULL AND %(again)s::timestamptz IS NOT NULL THEN 'requeue'"
            " ELSE reason END,"
            " priority = CASE WHEN dirty_at IS NULL AND %(again)s::timestamptz IS NOT NULL"
            " THEN coalesce(%(later)s::smallint, priority) ELSE priority END,"
            " lease_until = NULL, dirty_at = NULL, updated_at = coalesce(%(at)s::timestamptz, updated_at)"
            " WHERE id = %(id)s AND state = 'running' AND worker_id = %(worker)s RETURNING state, incident_key, kind),"
            " cleared AS (DELETE FROM outbox WHERE integration = %(log)s AND incident_key IN"
            " (SELECT incident_key FROM finished WHERE kind = %(default)s))"
            " SELECT state FROM finished",
            {"log": CREATE_LOG, "default": DEFAULT_KIND, "at": at, "again": again, "later": later, "id": job_id,
             "worker": worker_id},
        )
        if not rows:
            raise self._lease_lost(job_id, worker_id, self._get_job(job_id))
        return JobState(rows[0][0])

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
        at = require_aware(now, "now")
        if retry_in is not None and retry_in < timedelta(0):
            raise ValueError(f"retry_in must not be negative, got {retry_in}")

        def body(cur: psycopg.Cursor[Any]) -> JobState:
            return self._after_failure(cur, self._held(cur, job_id, worker_id), error, at, retry_in, kind)

        return self._run(body)

    def release(self, job_id: int, worker_id: str, *, now: datetime | None = None) -> None:
        at = None if now is None else require_aware(now, "now")
        rows = self._execute(
            "UPDATE jobs SET state = 'pending', attempts = greatest(attempts - 1, 0), lease_until = NULL,"
            " dirty_at = NULL, updated_at = coalesce(%(at)s::timestamptz, updated_at)"
            " WHERE id = %(id)s AND state = 'running' AND worker_id = %(worker)s RETURNING id",
            {"at": at, "id": job_id, "worker": worker_id},
        )
        if not rows:
            raise self._lease_lost(job_id, worker_id, self._get_job(job_id))

    def extend_lease(self, job_id: int, worker_id: str, now: datetime, lease: timedelta) -> Job:
        at = require_aware(now, "now")
        rows = self._execute(
            f"UPDATE jobs SET lease_until = %(until)s, updated_at = %(at)s"
            f" WHERE id = %(id)s AND state = 'running' AND worker_id = %(worker)s RETURNING {_JOB_COLUMNS}",
            {"until": at + _positive(lease, "lease"), "at": at, "id": job_id, "worker": worker_id},
        )
        if not rows:
            raise self._lease_lost(job_id, worker_id, self._get_job(job_id))
        return _job(rows[0])

    # -- dead letters ---------------------------------------------------------------------------------

    def dead_jobs(self) -> list[Job]:
        rows = self._execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'dead' ORDER BY updated_at, id")
        return [_job(r) for r in rows]

    def retry_dead(self, job_id: int | None = None, *, now: datetime | None = None) -> int:
        at = None if now is None else require_aware(now, "now")
        where = "state = 'dead'" + ("" if job_id is None else " AND id = %(id)s")
        rows = self._execute(
            "WITH revived AS (UPDATE jobs SET state = 'pending', attempts = 0, sticky = false,"
            " not_before = coalesce(%(at)s::timestamptz, not_before),"
            f" updated_at = coalesce(%(at)s::timestamptz, updated_at) WHERE {where} RETURNING incident_key, kind),"
            " cleared AS (DELETE FROM outbox WHERE integration = %(log)s AND incident_key IN"
            " (SELECT incident_key FROM revived WHERE kind = %(default)s))"
            " SELECT count(*) FROM revived",
            {"log": CREATE_LOG, "default": DEFAULT_KIND, "at": at, "id": job_id},
        )
        return int(rows[0][0])

    # -- reading --------------------------------------------------------------------------------------

    # -- maintenance and introspection ----------------------------------------------------------------


    def latest_delivery(self, job_id: int) -> Delivery | None:
        rows = self._execute(
            "SELECT delivery_id, incident_key, event, received_at, payload, job_id FROM deliveries"
            " WHERE job_id = %s ORDER BY seq DESC LIMIT 1",
            (job_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return Delivery(row[0], row[1], row[2], _utc(row[3]), bytes(row[4]), row[5])
    def prune(self, older_than: datetime) -> PruneResult:
        """See :meth:`DeliveryStore.prune`. Deletes in batches of a few hundred rows, each its own
        transaction, so a large prune never holds many row locks or a long transaction."""
        params = {"cut": require_aware(older_than, "older_than"), "n": _PRUNE_BATCH}
        batches = (
            (
                "DELETE FROM deliveries WHERE seq IN (SELECT d.seq FROM deliveries d WHERE d.received_at < %(cut)s"
                " AND (d.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = d.job_id"
                " AND j.state <> 'done')) LIMIT %(n)s)"
            ),
            (
                "DELETE FROM jobs WHERE id IN (SELECT j.id FROM jobs j WHERE j.state = 'done'"
                " AND j.updated_at < %(cut)s AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.job_id = j.id)"
                " LIMIT %(n)s)"
            ),
        )
        counts = [0, 0]
        for i, statement in enumerate(batches):
            while True:
                deleted = self._count(statement, params)
                counts[i] += deleted
                if deleted < _PRUNE_BATCH:
                    break
        return PruneResult(deliveries=counts[0], jobs=counts[1])

    def prune_dead(self, older_than: datetime) -> PruneResult:
        """See :meth:`DeliveryStore.prune_dead`; batched like :meth:`prune`."""
        params = {"cut": require_aware(older_than, "older_than"), "n": _PRUNE_BATCH, "default": DEFAULT_KIND,
                  "log": CREATE_LOG}
        statement = (
            "WITH gone AS (DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state = 'dead'"
            " AND updated_at < %(cut)s ORDER BY updated_at, id LIMIT %(n)s) RETURNING id, incident_key, kind),"
            " payloads AS (DELETE FROM deliveries WHERE job_id IN (SELECT id FROM gone) RETURNING 1),"
            " creates AS (DELETE FROM outbox WHERE integration = %(log)s AND incident_key IN"
            " (SELECT incident_key FROM gone WHERE kind = %(default)s))"
            " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM payloads)"
        )
        counts = [0, 0]
        while True:
            [(jobs, deliveries)] = self._execute(statement, params)
            counts[0] += deliveries
            counts[1] += jobs
            if jobs < _PRUNE_BATCH:
                return PruneResult(deliveries=counts[0], jobs=counts[1])

    def note_create(self, incident_key: str, channel: str, now: datetime) -> CreateRecord | None:
        # Insert, or read the existing record; one statement, so concurrent callers agree on who inserted.
        rows = self._execute(
            "WITH ins AS (INSERT INTO outbox (integration, key, incident_key, target, text, state, unsure,"
            " history_from, updated_at) VALUES (%(log)s, %(key)s, %(k)s, %(c)s, '', 'trying', true, %(t)s, %(t)s)"
            " ON CONFLICT (integration, key) DO NOTHING RETURNING 1)"
            " SELECT history_from, remote FROM outbox WHERE integration = %(log)s AND key = %(key)s"
            " AND NOT EXISTS (SELECT 1 FROM ins)",
            {"log": CREATE_LOG, "key": create_key(incident_key, channel), "k": incident_key, "c": channel,
             "t": require_aware(now, "now")},
        )
        if not rows:
            return None
        return CreateRecord(_utc(rows[0][0]), None if rows[0][1] is None else int(rows[0][1]))

    def created(self, incident_key: str, channel: str, child_iid: int) -> None:
        self._count(
            "UPDATE outbox SET state = 'sent', remote = %s, sent_text = '' WHERE integration = %s AND key = %s",
            (str(int(child_iid)), CREATE_LOG, create_key(incident_key, channel)),
        )

    def forget_create(self, incident_key: str, channel: str) -> None:
        self._count(
            "DELETE FROM outbox WHERE integration = %s AND key = %s", (CREATE_LOG, create_key(incident_key, channel))
        )

    # -- the outbox of the outbound integrations --------------------------------------------------------

    def offer(self, integration: str, incident_key: str, items: Sequence[Any], now: datetime | None = None) -> int:
        at = require_aware(now or datetime.now(UTC), "now")

        def body(cur: psycopg.Cursor[Any]) -> int:
            # The first items of an incident this store knows nothing of may have been sent before (an emptied
            # database): they are looked for on the remote side. Later ones are new for sure.
            unsure = cur.execute(
                "SELECT 1 FROM outbox WHERE integration = %s AND incident_key = %s LIMIT 1", (integration, incident_key)
            ).fetchone() is None
            for m in items:
                since = getattr(m, "since", None)
                cur.execute(
                    "INSERT INTO outbox (integration, key, incident_key, target, text, summary, state, unsure,"
                    " updated_at, history_from) VALUES (%s, %s, %s, %s, %s, %s, 'intent', %s, %s, %s)"
                    " ON CONFLICT (integration, key) DO UPDATE SET text = excluded.text,"
                    " state = CASE WHEN outbox.state = 'trying' THEN 'trying' ELSE 'intent' END,"
                    " updated_at = excluded.updated_at"
                    " WHERE outbox.summary AND outbox.state <> 'refused' AND outbox.text <> excluded.text",
                    (integration, m.key, incident_key, m.target, m.text, bool(m.summary), unsure, at,
                     require_aware(since, "since") if unsure and since is not None else None),
                )
            row = cur.execute(
                "SELECT count(*) FROM outbox WHERE integration = %s AND incident_key = %s"
                " AND state IN ('intent', 'trying')",
                (integration, incident_key),
            ).fetchone()
            return int(row[0]) if row else 0

        return self._run(body)

    def refused_targets(self, integration: str | None, incident_key: str) -> dict[str, str]:
        rows = self._execute(
            "SELECT target, reason FROM outbox WHERE incident_key = %(k)s"
            " AND (%(i)s::text IS NULL OR integration = %(i)s::text)"
            " AND (state = 'refused' OR (state IN ('intent', 'trying') AND reason IS NOT NULL))"
            " ORDER BY updated_at, seq",
            {"k": incident_key, "i": integration},
        )
        return {target: reason or "" for target, reason in rows}

    def pending(self, integration: str, incident_key: str) -> list[OutboxItem]:
        return self._items(integration, incident_key, " AND state IN ('intent', 'trying')")

    def items(self, integration: str, incident_key: str) -> list[OutboxItem]:
        return self._items(integration, incident_key, "")

    def _items(self, integration: str, incident_key: str, where: str) -> list[OutboxItem]:
        rows = self._execute(
            "SELECT key, incident_key, target, text, summary, state, remote, sent_text, reason, unsure,"
            f" history_from, updated_at, integration FROM outbox WHERE integration = %s AND incident_key = %s{where}"
            " ORDER BY seq",
            (integration, incident_key),
        )
        return [OutboxItem(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], bool(r[9]),
                           _utc_or_none(r[10]), _utc_or_none(r[11]), r[12]) for r in rows]

    def by_remote(self, integration: str, remote: str) -> list[OutboxItem]:
        rows = self._execute(
            "SELECT key, incident_key, target, text, summary, state, remote, sent_text, reason, unsure,"
            " history_from, updated_at, integration FROM outbox WHERE integration = %s AND remote = %s"
            " ORDER BY seq",
            (integration, remote),
        )
        return [OutboxItem(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], bool(r[9]),
                           _utc_or_none(r[10]), _utc_or_none(r[11]), r[12]) for r in rows]

    def mark_trying(self, integration: str, keys: Sequence[str], now: datetime | None = None) -> None:
        at = require_aware(now or datetime.now(UTC), "now")

        def body(cur: psycopg.Cursor[Any]) -> None:
            cur.executemany(
                "UPDATE outbox SET state = 'trying', unsure = true,"
                " history_from = CASE WHEN NOT unsure THEN coalesce(history_from, %s) ELSE history_from END"
                " WHERE integration = %s AND key = %s AND state IN ('intent', 'trying')",
                [(at, integration, k) for k in keys],
            )

        self._run(body)

    def revive_refused(self, integration: str, incident_key: str, keys: Sequence[str], before: datetime) -> int:
        at = require_aware(before, "before")

        def body(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(
                "UPDATE outbox SET state = 'intent', unsure = true WHERE integration = %s AND incident_key = %s"
                " AND key = ANY(%s) AND state = 'refused' AND updated_at <= %s",
                (integration, incident_key, list(keys), at),
            )
            return cur.rowcount

        return self._run(body)

    def mark_sent(self, integration: str, key: str, remote: str, text: str, now: datetime | None = None) -> None:
        self._count(
            "UPDATE outbox SET remote = %s, sent_text = %s, reason = NULL, updated_at = %s,"
            " state = CASE WHEN text = %s THEN 'sent' ELSE 'intent' END WHERE integration = %s AND key = %s",
            (remote, text, require_aware(now or datetime.now(UTC), "now"), text, integration, key),
        )

    def mark_refused(self, integration: str, key: str, reason: str, now: datetime | None = None) -> None:
        self._count(
            "UPDATE outbox SET state = 'refused', reason = %s, updated_at = %s WHERE integration = %s AND key = %s",
            (reason, require_aware(now or datetime.now(UTC), "now"), integration, key),
        )

    def mark_incident(self, incident_key: str, seen_at: datetime, next_due: datetime | None) -> None:
        self._execute(
            "INSERT INTO incident_marks (incident_key, seen_at, next_due) VALUES (%s, %s, %s) "
            "ON CONFLICT (incident_key) DO UPDATE SET seen_at = excluded.seen_at, next_due = excluded.next_due",
            (
                incident_key,
                require_aware(seen_at, "seen_at"),
                None if next_due is None else require_aware(next_due, "next_due"),
            ),
        )

    def budget_take(self, key: str, now: float, cap: int, window: float, max_wait: float) -> float:
        def body(cur: psycopg.Cursor[Any]) -> float:
            # The upsert locks the budget's row (creating it if new) until commit: replicas take turns.
            row = cur.execute(_BUDGET_LOCK, (key,)).fetchone()
            assert row is not None
            wait, grants = window_take([float(g) for g in row[1]], float(row[0]), now, cap, window)
            if wait <= max_wait:
                cur.execute("UPDATE api_budgets SET grants = %s WHERE key = %s", (grants, key))
            return wait

        return self._run(body)

    def budget_block(self, key: str, until: float) -> None:
        self._execute(
            "INSERT INTO api_budgets AS b (key, not_before) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET not_before = greatest(b.not_before, excluded.not_before)",
            (key, until),
        )

    def incident_marks(self) -> dict[str, IncidentMark]:
        rows = self._execute("SELECT incident_key, seen_at, next_due FROM incident_marks")
        return {key: IncidentMark(key, _utc(seen), _utc_or_none(due)) for key, seen, due in rows}

    def stats(self) -> StoreStats:
        """One statement, so every figure comes from the same snapshot."""
        [row] = self._execute(
            "SELECT (SELECT count(*) FROM jobs WHERE state = 'pending' AND NOT delayed),"
            " (SELECT count(*) FROM jobs WHERE state = 'running'),"
            " (SELECT count(*) FROM jobs WHERE state = 'dead'),"
            " (SELECT count(*) FROM jobs WHERE state = 'done'),"
            " (SELECT count(*) FROM deliveries),"
            " (SELECT min(not_before) FROM jobs WHERE state = 'pending' AND NOT delayed),"
            " (SELECT max(version) FROM schema_version),"
            " (SELECT count(*) FROM jobs WHERE state = 'pending' AND delayed),"
            " (SELECT coalesce(json_agg(json_build_array(kind, state, n)), '[]') FROM"
            " (SELECT kind, state, count(*) AS n FROM jobs"
            " WHERE state IN ('running', 'dead') OR (state = 'pending' AND NOT delayed)"
            " GROUP BY kind, state) k)"
        )
        pending, running, dead, done, deliveries, oldest, version, delayed, kinds = row
        return StoreStats(
            pending=pending,
            running=running,
            dead=dead,
            done=done,
            deliveries=deliveries,
            oldest_pending=_utc_or_none(oldest),
            schema_version=version,
            delayed=delayed,
            kinds=kinds_from_rows(kinds),
        )

    def ping(self) -> None:
        """Reads the schema table, so the database itself answers, not just a connection."""
        self._execute("SELECT max(version) FROM schema_version")

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, durability={self.durability!r}, max_attempts={self.max_attempts})"
