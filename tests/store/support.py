"""What the store tests share: the time line, the backends and small helpers. The fixtures that use them are
in ``tests/store/conftest.py``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.store import DeliveryStore, Job, RecordResult, sqlite_path

if TYPE_CHECKING:
    from tests.pg import PostgresTestDatabase

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
A, B, C = "101#1", "101#2", "202#7"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(
    store: DeliveryStore, delivery_id: str, key: str | None = A, t: float = 0, event: str = "Issue Hook"
) -> RecordResult:
    return store.record_delivery(delivery_id, key, event, at(t), f'{{"id": "{delivery_id}"}}'.encode())


def claim(store: DeliveryStore, worker: str = "w1", t: float = 0, lease: timedelta = LEASE) -> Job:
    job = store.claim(worker, at(t), lease)
    assert job is not None, "expected a ready job"
    return job


# -- backends ---------------------------------------------------------------------------------------------


def _nothing_to_settle(url: str) -> None:
    return None


@dataclass(frozen=True)
class Backend:
    name: str
    new_url: Callable[[Path], str]
    """A location for a fresh, empty database, given an empty scratch directory."""
    set_schema_version: Callable[[str, int], None]
    """Mark an existing database as written by schema version N (to test refusal of newer ones)."""
    settle: Callable[[str], object] = _nothing_to_settle
    """Wait until the database is done with the sessions of client processes that were killed, so that what
    a test reads afterwards cannot change under it (a server may still commit what a dead client sent)."""


def _sqlite_set_schema_version(url: str, version: int) -> None:
    path = sqlite_path(url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 'test')", (version,))
    conn.close()


SQLITE = Backend(
    name="sqlite",
    new_url=lambda directory: f"sqlite:///{directory / 'bot.sqlite3'}",
    set_schema_version=_sqlite_set_schema_version,
)


def postgres_backend(database: PostgresTestDatabase) -> Backend:
    import psycopg

    def set_schema_version(url: str, version: int) -> None:
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    return Backend(
        name="postgresql",
        new_url=lambda _directory: database.new_url(),
        set_schema_version=set_schema_version,
        settle=database.end_sessions,
    )


BACKENDS = ["sqlite", "postgresql"]


def sqlite_as_written_by(path: Path, version: int) -> sqlite3.Connection:
    """A SQLite database at ``path`` as version ``version`` of the store wrote it (its first ``version``
    migrations applied and recorded), open for the test to add that version's rows; the caller closes it."""
    import bot.store.sqlite as sqlite_store

    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for n in range(version):
            for statement in sqlite_store.MIGRATIONS[n]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 'then')", (n + 1,))
    return conn
