"""Read a store's rows directly, for tests and benchmarks: which jobs exist, in which state, what was recorded.

The bot itself never asks these questions (its consumers take the role protocols in ``bot.store.base``), so
the backends do not offer them; this reads their tables with their own row decoders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.store import Delivery, Job, JobState
from bot.store import sqlite as lite
from bot.store.sqlite import SQLiteStore

_DELIVERY = "SELECT delivery_id, incident_key, event, received_at, payload, job_id FROM deliveries"


def _backend(store: Any) -> Any:
    """The backend under a test's wrapper (wrappers keep it as ``inner``)."""
    while not isinstance(store, SQLiteStore) and hasattr(store, "inner"):
        store = store.inner
    return store


def _rows(
    store: Any, sql: str, params: Sequence[Any] = ()
) -> tuple[list[Sequence[Any]], Callable[[Sequence[Any]], Job], Callable[[Any], datetime]]:
    """Rows of ``sql`` (written with ``?`` placeholders), the backend's job decoder and time decoder."""
    backend = _backend(store)
    if isinstance(backend, SQLiteStore):
        with backend._read() as conn:
            return conn.execute(sql, tuple(params)).fetchall(), lite._job, lite._dt
    from bot.store import postgres as pg

    return backend._execute(sql.replace("?", "%s"), tuple(params)), pg._job, pg._utc


def _columns(store: Any) -> str:
    backend = _backend(store)
    if isinstance(backend, SQLiteStore):
        return lite._JOB_COLUMNS
    from bot.store import postgres as pg

    return pg._JOB_COLUMNS


def get_job(store: Any, job_id: int) -> Job | None:
    """The job with this id, or None (never existed, or pruned)."""
    rows, job, _ = _rows(store, f"SELECT {_columns(store)} FROM jobs WHERE id = ?", (job_id,))
    return job(rows[0]) if rows else None


def active_job(store: Any, incident_key: str, kind: str = "gitlab") -> Job | None:
    """The incident's pending, running or dead job of ``kind``, if any (there is at most one)."""
    sql = f"SELECT {_columns(store)} FROM jobs WHERE kind = ? AND incident_key = ? AND state <> 'done'"
    rows, job, _ = _rows(store, sql, (kind, incident_key))
    return job(rows[0]) if rows else None


def jobs(store: Any, state: JobState | None = None) -> list[Job]:
    """Jobs, optionally of one state, in id order."""
    if state is None:
        rows, job, _ = _rows(store, f"SELECT {_columns(store)} FROM jobs ORDER BY id")
    else:
        sql = f"SELECT {_columns(store)} FROM jobs WHERE state = ? ORDER BY id"
        rows, job, _ = _rows(store, sql, (JobState(state).value,))
    return [job(r) for r in rows]


def get_delivery(store: Any, delivery_id: str) -> Delivery | None:
    """The recorded delivery, or None (never recorded, or pruned)."""
    rows, _, when = _rows(store, f"{_DELIVERY} WHERE delivery_id = ?", (delivery_id,))
    if not rows:
        return None
    row = rows[0]
    return Delivery(row[0], row[1], row[2], when(row[3]), bytes(row[4]), row[5])


def depth(store: Any) -> dict[str, int]:
    """``{"pending": n, "running": n, "dead": n}``; delayed jobs are not pending work."""
    stats = _backend(store).stats()
    return {"pending": stats.pending, "running": stats.running, "dead": stats.dead}


def outbox_incidents(store: Any, integration: str = "slack") -> set[str]:
    """The incidents that have any item of ``integration`` in the outbox, sent or not."""
    rows, _, _ = _rows(store, "SELECT DISTINCT incident_key FROM outbox WHERE integration = ?", (integration,))
    return {str(r[0]) for r in rows}
