from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import gitlab
import pytest
from gitlab.v4.objects import Project

from bot.simgitlab import ManualClock, SimulatedGitLab

FREE, PREMIUM = "sec/incidents", "sec/premium"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[SimulatedGitLab]:
    """A started simulator: bot (Maintainer), alice/bob (Developers), gus (Guest), carol (no access)."""
    with SimulatedGitLab(now=clock) as server:
        state = server.state
        for name in ("alice", "bob", "carol", "gus"):
            state.add_user(name)
        members = {"incident-bot": 40, "alice": 30, "bob": 30, "gus": 10}
        state.add_project(FREE, members=members)
        state.add_project(PREMIUM, members=members, tier="premium")
        yield server
        assert server.api.errors == [], "the simulator raised unexpectedly"


@pytest.fixture
def gl(sim: SimulatedGitLab) -> gitlab.Gitlab:
    return gitlab.Gitlab(sim.url, private_token=sim.token, retry_transient_errors=False, timeout=5)


@pytest.fixture
def project(gl: gitlab.Gitlab) -> Project:
    return gl.projects.get(FREE, lazy=True)


@pytest.fixture
def premium(gl: gitlab.Gitlab) -> Project:
    return gl.projects.get(PREMIUM, lazy=True)
