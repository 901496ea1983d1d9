"""Durable delivery store and work queue (see :mod:`bot.store.base` for the semantics).

``open_store(os.environ["INCIDENT_BOT_DB"])`` picks the backend from the location: a file path or a
``sqlite:///`` URL opens SQLite (one host); a ``postgresql://`` URL opens PostgreSQL (several replicas).
The PostgreSQL backend, and psycopg with it, is imported only when a ``postgresql://`` location is opened,
so a SQLite deployment never needs the driver.

Opening a store creates or upgrades its schema and refuses a database written by a newer incident-bot;
:func:`upgrade` does only that, for ``incident-bot db upgrade``.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any

from bot.dblocation import is_postgres_url, sqlite_path
from bot.store.base import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    DEFAULT_MAX_ATTEMPTS,
    CreateLog,
    DeadLetters,
    Delivery,
    DeliveryStore,
    Durability,
    Enqueue,
    IncidentMark,
    Intake,
    Job,
    JobState,
    LeaseLost,
    Marks,
    PruneResult,
    RecordResult,
    SchemaVersionError,
    StoreError,
    StoreStats,
    WorkerStore,
    WorkQueue,
    backoff_delay,
)
from bot.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from bot.store.postgres import PostgresStore

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_MAX_ATTEMPTS",
    "CreateLog",
    "DeadLetters",
    "Delivery",
    "DeliveryStore",
    "Durability",
    "Enqueue",
    "IncidentMark",
    "Intake",
    "Job",
    "JobState",
    "LeaseLost",
    "Marks",
    "PostgresStore",
    "PruneResult",
    "RecordResult",
    "SQLiteStore",
    "SchemaVersionError",
    "StoreError",
    "StoreStats",
    "WorkQueue",
    "WorkerStore",
    "backoff_delay",
    "is_postgres_url",
    "open_store",
    "sqlite_path",
    "upgrade",
]

PSYCOPG_HINT = "the PostgreSQL store needs psycopg 3: pip install 'psycopg[binary]>=3.2'"


def __getattr__(name: str) -> Any:
    """``bot.store.PostgresStore`` without importing psycopg for everyone who imports :mod:`bot.store`."""
    if name == "PostgresStore":
        return _postgres_module().PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _postgres_module() -> Any:
    try:
        import bot.store.postgres as postgres
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "psycopg":
            raise StoreError(f"{PSYCOPG_HINT} ({exc.name} is missing)") from None
        raise
    return postgres


def open_store(
    url_or_path: str | os.PathLike[str],
    *,
    durability: Durability = "full",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> DeliveryStore:
    """Open (creating and migrating if needed) the store at a file path, ``sqlite:///path`` or a
    ``postgresql://`` URL. Raises :class:`SchemaVersionError` for a database written by a newer incident-bot,
    :class:`StoreError` when the database cannot be reached (or psycopg is missing), and ``ValueError`` for a
    location it does not recognise."""
    text = os.fspath(url_or_path)
    if is_postgres_url(text):
        store: DeliveryStore = _postgres_module().PostgresStore(text, durability=durability, max_attempts=max_attempts)
        return store
    path = sqlite_path(text)
    if path is None:
        raise ValueError(f"unsupported store location {text!r}: use a file path, sqlite:///path or postgresql://")
    return SQLiteStore(path, durability=durability, max_attempts=max_attempts)


def _sqlite_schema_version(path: str) -> int:
    """The schema version of a SQLite store file without changing it: 0 when absent or empty."""
    if not os.path.exists(path):
        return 0
    try:
        conn = sqlite3.connect(path, timeout=5.0)
        try:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
            if exists.fetchone() is None:
                return 0
            return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read SQLite store {path}: {exc}") from exc


def upgrade(url_or_path: str | os.PathLike[str]) -> tuple[int, int]:
    """Create or upgrade the store's schema at this location and return ``(version before, version after)``
    (``(0, n)`` for a new database, ``(n, n)`` when it was up to date).

    For ``incident-bot db upgrade``, to migrate before rolling out new replicas rather than at their start.
    Queued work and dead letters are kept: migrations only add. Raises :class:`SchemaVersionError` (one line)
    for a database newer than this code, and :class:`StoreError` when it cannot be reached."""
    text = os.fspath(url_or_path)
    if is_postgres_url(text):
        with _postgres_module().PostgresStore(text) as pg:
            return pg.schema_version_before, pg.schema_version
    path = sqlite_path(text)
    if path is None:
        raise ValueError(f"unsupported store location {text!r}: use a file path, sqlite:///path or postgresql://")
    before = _sqlite_schema_version(path)
    with SQLiteStore(path) as lite:
        after = lite.stats().schema_version
    return before, after
