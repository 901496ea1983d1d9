"""Fixtures for the receiver and worker tests: a store, a hand-driven clock, an app, real payloads."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from websupport import INCIDENT_PAYLOAD, SECRET, SHARED_PAYLOADS, FakeClock

from bot.config import Config
from bot.metrics import Metrics
from bot.store import DeliveryStore, SQLiteStore
from bot.web.app import WebSettings, create_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeliveryStore]:
    s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal", max_attempts=3)
    yield s
    s.close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def make_app(store: DeliveryStore, default_config: Config, clock: FakeClock, metrics: Metrics) -> Callable[..., Flask]:
    def build(store_: DeliveryStore | None = None, **settings: Any) -> Flask:
        settings.setdefault("secret", SECRET)
        return create_app(
            WebSettings(**settings), store=store_ or store, config=default_config, metrics=metrics, clock=clock
        )

    return build


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


@pytest.fixture(scope="session")
def incident_payload() -> dict[str, Any]:
    return json.loads(INCIDENT_PAYLOAD.read_text())


@pytest.fixture(scope="session")
def shared_payloads() -> dict[str, bytes]:
    """The real GitLab payloads kept in tests/payloads/gitlab."""
    return {p.name: p.read_bytes() for p in sorted(SHARED_PAYLOADS.glob("*.json"))}
