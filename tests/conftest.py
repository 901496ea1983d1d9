from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.commands.world import World, world
from bot.config import Config, load_config
from bot.core.model import IncidentRef
from bot.reconciler import ReconcileReport
from bot.simgitlab import ManualClock, SimulatedGitLab
from tests import hypothesis_profiles
from tests.pg import (
    INSTALL_HINT,
    PSYCOPG_HINT,
    PostgresNotInstalled,
    PostgresServer,
    PostgresTestDatabase,
    postgres_unavailable,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED_PAYLOADS = ROOT / "tests" / "payloads" / "gitlab"  # real GitLab payloads, kept in the repository
EXAMPLES = ROOT / "examples" / "payloads"


def pytest_configure(config: pytest.Config) -> None:
    """``HYPOTHESIS_PROFILE=fast`` for a quick local run (tests/hypothesis_profiles.py); CI sets none."""
    try:
        hypothesis_profiles.load_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


SCOPE = "acme/security-incidents"
"""The incident scope the tests run with: the simulated world's project (``bot.commands.world.PROJECT``) and
the example payloads' project."""


@pytest.fixture(scope="session")
def default_config() -> Config:
    """The bundled policy as an operator deploys it: with the incident scope set (``INCIDENT_BOT_SCOPE``)."""
    return load_config(ROOT / "config" / "bot.yaml").model_copy(update={"scope": [SCOPE]})


T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def at(clock: ManualClock, hhmm: str) -> None:
    """Move the clock to ``hh:mm`` on the day of ``T0``."""
    h, m = (int(x) for x in hhmm.split(":"))
    clock.set(T0.replace(hour=h, minute=m))


def look(w: World, clock: ManualClock, iid: int) -> ReconcileReport:
    """One reconcile of incident ``iid`` by a fresh reconciler at the clock's time, as a worker would."""
    r = w.reconciler(clock=clock)
    try:
        return r.reconcile(IncidentRef(w.project, iid))
    finally:
        r.close()


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    """The bundled policy with an API budget for a simulator, not for GitLab.com (for worker processes)."""
    import yaml

    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["api"].update(rate_per_minute=1_000_000, burst=1000, timeout_s=1.0, call_budget_s=3)
    data["api"].update(notes_per_minute=0, issues_per_minute=0)  # the simulator limits neither unless told
    data["templates_dir"] = str(ROOT / "issue_templates")
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def clock() -> ManualClock:
    """The simulated GitLab's and the bot's clock: tests move it, nobody sleeps."""
    return ManualClock(T0)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab(now=clock) as server:
        yield server
        assert server.api.errors == [], "the simulator raised unexpectedly"


@pytest.fixture
def w(sim: SimulatedGitLab, default_config: Config) -> World:
    """The simulator seeded with every person the bundled config names, in one project."""
    return world(sim, default_config)


# ---- PostgreSQL ------------------------------------------------------------------------------------
# PostgreSQL for the store and replica tests: one server per test session, one fresh schema per database.
#
# Where the server comes from, in order:
#
# 1. ``INCIDENT_BOT_TEST_PG_URL=postgresql://user@host/db`` — an existing database (the role needs CREATE on
#    it; PostgreSQL 14 or newer). Each test gets its own schema in it, dropped at the end of the session.
# 2. Otherwise a throw-away server (``tests/pg.py``): ``initdb`` into a temp dir, started on 127.0.0.1 at the
#    first PostgreSQL test, stopped and deleted at the end of the session.
#
# Without PostgreSQL (no server binaries, or no psycopg) the PostgreSQL variants are skipped with a message
# saying what to install — unless ``CI`` is set: CI never skips, so there they fail.
#
# A "fresh database" is a new schema put first on the connection's ``search_path`` through the URL: creating
# one costs a millisecond where ``CREATE DATABASE`` costs a tenth of a second, which matters for the property
# test that opens a store per example.


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresTestDatabase]:
    if importlib.util.find_spec("psycopg") is None:
        postgres_unavailable(PSYCOPG_HINT)
    import psycopg

    external = os.environ.get("INCIDENT_BOT_TEST_PG_URL")
    server: PostgresServer | None = None
    if external:
        base_url = external
    else:
        with contextlib.suppress(PostgresNotInstalled):  # reported below, outside the handler: one clean line
            server = PostgresServer.start()
        if server is None:
            postgres_unavailable(INSTALL_HINT)
        assert server is not None
        base_url = server.create_database("incident_bot_test")
    try:
        with psycopg.connect(base_url, autocommit=True) as admin:
            database = PostgresTestDatabase(base_url=base_url, admin=admin)
            yield database
            if server is None:
                for schema in database.created:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        if server is not None:
            server.stop()
