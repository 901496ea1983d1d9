from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.sandbox import World, world
from bot.simgitlab import ManualClock, SimulatedGitLab

ROOT = Path(__file__).resolve().parent.parent
SHARED_PAYLOADS = ROOT.parent / "shared" / "gitlab-payloads"
EXAMPLES = ROOT / "examples" / "payloads"


@pytest.fixture(scope="session")
def default_config() -> Config:
    return load_config(ROOT / "config" / "bot.yaml")


T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


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
