"""A receiver's local, durable spool for deliveries the shared store cannot take right now.

GitLab resends nothing by itself and disables a webhook after four failed deliveries in a row, so a
receiver whose database is away (PostgreSQL restarting, a network partition) must not answer 5xx.
Instead it records the delivery here, in a small SQLite file of its own, answers 2xx, and a drainer
moves spooled deliveries into the shared store once it answers again. Moving is idempotent: the shared
store de-duplicates by delivery id, and a delivery leaves the spool only after the store has it. What
a receiver that dies with its spool had taken is caught by the sweep (GitLab holds the truth).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.core.urgency import Priority
from bot.private import private_file
from bot.store.base import DeliveryStore, Intake, RecordResult, StoreError, StoreStats

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    delivery_id  TEXT PRIMARY KEY,
    incident_key TEXT,
    event        TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    payload      BLOB NOT NULL,
    event_uuid   TEXT,
    priority     INTEGER NOT NULL DEFAULT 3
)
"""
_COLUMNS = "delivery_id, incident_key, event, received_at, payload, event_uuid, priority"


@dataclass(frozen=True)
class Spooled:
    delivery_id: str
    incident_key: str | None
    event: str
    received_at: datetime
    payload: bytes
    event_uuid: str | None
    priority: int = Priority.NORMAL


class Spool:
    """Deliveries waiting for the shared store. Safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        private_file(self.path)  # it holds payloads: 0600 in a 0700 directory, and so are its -wal and -shm
        self._local = threading.local()
        with self._tx() as conn:
            conn.execute(_SCHEMA)
            if "priority" not in {row[1] for row in conn.execute("PRAGMA table_info(spool)")}:
                # A spool written before priorities: what it holds is moved as NORMAL work.
                conn.execute("ALTER TABLE spool ADD COLUMN priority INTEGER NOT NULL DEFAULT 3")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # the 2xx promises it survives
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def put(self, d: Spooled) -> bool:
        """Keep a delivery; False if it was already spooled (a resend while the store is away)."""
        with self._tx() as conn:
            cur = conn.execute(
                f"INSERT OR IGNORE INTO spool ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    d.delivery_id,
                    d.incident_key,
                    d.event,
                    d.received_at.isoformat(),
                    d.payload,
                    d.event_uuid,
                    int(d.priority),
                ),
            )
            return cur.rowcount == 1

    def pending(self, limit: int = 500) -> list[Spooled]:
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM spool ORDER BY received_at LIMIT ?", (limit,)).fetchall()
        return [Spooled(r[0], r[1], r[2], datetime.fromisoformat(r[3]), bytes(r[4]), r[5], r[6]) for r in rows]

    def remove(self, delivery_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM spool WHERE delivery_id = ?", (delivery_id,))

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM spool").fetchone()[0])


def drain(spool: Spool, store: Intake, *, limit: int = 500) -> int:
    """Move spooled deliveries into the shared store, oldest first; stop at the first failure."""
    moved = 0
    for d in spool.pending(limit):
        try:
            store.record_delivery(
                d.delivery_id,
                d.incident_key,
                d.event,
                d.received_at,
                d.payload,
                event_uuid=d.event_uuid,
                priority=d.priority,
            )
        except StoreError:
            break
        spool.remove(d.delivery_id)
        moved += 1
    return moved


class SpoolingStore:
    """A receiver's view of the shared store: deliveries it cannot take go to the local spool instead.

    It implements only :class:`~bot.store.base.Intake`: the worker opens the shared store itself. ``ping``
    succeeds while the spool can take deliveries, and ``degraded`` says why the receiver is spooling.
    """

    def __init__(self, open_shared: Callable[[], DeliveryStore], spool: Spool) -> None:
        # Opened on first use, and again after each failure until it answers: a receiver may start while
        # the database is away (a restart during an outage).
        self._open = open_shared
        self._shared: DeliveryStore | None = None
        self._lock = threading.Lock()
        self.spool = spool
        self.degraded: str | None = None

    @property
    def shared(self) -> DeliveryStore:
        if self._shared is None:
            with self._lock:
                if self._shared is None:
                    self._shared = self._open()
        return self._shared

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
        try:
            result = self.shared.record_delivery(
                delivery_id,
                incident_key,
                event,
                received_at,
                payload,
                event_uuid=event_uuid,
                change=change,
                priority=priority,
            )
        except (StoreError, OSError) as exc:
            self.degraded = f"the shared store is unreachable ({exc}); deliveries are spooled in {self.spool.path}"
            spooled = Spooled(delivery_id, incident_key, event, received_at, payload, event_uuid, priority)
            new = self.spool.put(spooled)
            return RecordResult(new=new, job_id=None)
        self.degraded = None
        return result

    def ping(self) -> None:
        try:
            self.shared.ping()
            self.degraded = None
        except (StoreError, OSError) as exc:
            self.degraded = f"the shared store is unreachable ({exc}); deliveries are spooled in {self.spool.path}"
            len(self.spool)  # raises if the spool cannot take deliveries either: then not ready

    def stats(self) -> StoreStats:
        """The shared store's counts for /metrics (a scrape while it is away fails, as it should)."""
        return self.shared.stats()

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
