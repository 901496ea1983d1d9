"""Durable delivery store and work queue (see :mod:`bot.store.base` for the semantics).

``open_store(os.environ["INCIDENT_BOT_DB"])`` picks the backend from the location: a file path or a
``sqlite:///`` URL opens SQLite; ``postgresql://`` is reserved for the multi-replica backend.
"""

from __future__ import annotations

import os

from bot.store.base import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    DEFAULT_MAX_ATTEMPTS,
    Delivery,
    DeliveryStore,
    Durability,
    IncidentMark,
    Job,
    JobState,
    LeaseLost,
    PruneResult,
    RecordResult,
    SchemaVersionError,
    StoreError,
    StoreStats,
    backoff_delay,
)
from bot.store.sqlite import SQLiteStore

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_MAX_ATTEMPTS",
    "Delivery",
    "DeliveryStore",
    "Durability",
    "IncidentMark",
    "Job",
    "JobState",
    "LeaseLost",
    "PruneResult",
    "RecordResult",
    "SQLiteStore",
    "SchemaVersionError",
    "StoreError",
    "StoreStats",
    "backoff_delay",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url_or_path: str | os.PathLike[str]) -> str | None:
    """The file path a location names if it is a SQLite one, else None.

    ``sqlite:///relative/file.db`` and ``sqlite:////absolute/file.db`` follow the SQLAlchemy convention
    (three slashes, then the path), so URLs written for other tools mean the same file here.
    """
    text = os.fspath(url_or_path)
    if "://" not in text:
        return text
    scheme, _, rest = text.partition("://")
    if scheme.lower() != "sqlite":
        return None
    if not rest.startswith("/") or rest == "/":
        raise ValueError(f"SQLite URL must be sqlite:///<path>, got {text!r}")
    return rest[1:]


def open_store(
    url_or_path: str | os.PathLike[str],
    *,
    durability: Durability = "full",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> DeliveryStore:
    """Open (creating and migrating if needed) the store at a file path, ``sqlite:///path`` or a
    ``postgresql://`` URL. Raises ``NotImplementedError`` for PostgreSQL until that backend lands, and
    ``ValueError`` for anything else it does not recognise."""
    text = os.fspath(url_or_path)
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        raise NotImplementedError(
            "PostgreSQL store is not implemented yet; set INCIDENT_BOT_DB to a SQLite file path for now"
        )
    path = sqlite_path(text)
    if path is None:
        raise ValueError(f"unsupported store location {text!r}: use a file path, sqlite:///path or postgresql://")
    return SQLiteStore(path, durability=durability, max_attempts=max_attempts)
