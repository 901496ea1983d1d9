"""What a database location (``INCIDENT_BOT_DB``) names: a PostgreSQL URL, or a SQLite file path or URL.

Plain text rules, shared by the settings (which must know no adapter) and the store that opens the location.
"""

from __future__ import annotations

import os

__all__ = ["is_postgres_url", "sqlite_path"]


def is_postgres_url(url_or_path: str | os.PathLike[str]) -> bool:
    """True for ``postgresql://``, ``postgres://`` and ``postgresql+<driver>://`` locations."""
    text = os.fspath(url_or_path)
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    return scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+")


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
