"""The store tests' fixtures: ``backend`` (each of SQLite and PostgreSQL), ``url`` (a fresh, empty database
of that backend) and ``store`` (that database opened). Every test that asks for one of them runs on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import DeliveryStore, open_store
from tests.store.support import BACKENDS, SQLITE, Backend, postgres_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return SQLITE
    return postgres_backend(request.getfixturevalue("postgres_database"))


@pytest.fixture
def url(backend: Backend, tmp_path: Path) -> str:
    return backend.new_url(tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[DeliveryStore]:
    with open_store(url) as s:
        yield s
