"""Simulated providers, policies and adapters for the status page tests; a clock that tests move."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.integrations.statuspage.atlassian import Pacer, Statuspage
from bot.integrations.statuspage.config import StatusIoSettings, StatusPagePolicy, StatuspageSettings, parse_policy
from bot.integrations.statuspage.plan import Action, Draft, Recorded, incident_key, plan_publish
from bot.integrations.statuspage.statusio import StatusIo
from bot.simstatus import SimulatedStatusIo, SimulatedStatuspage

SECRET = "state-key-for-tests-0123456789"
GITLAB = "https://gitlab.example.com"
PROJECT = "security/incidents"
TITLE = "CONFIDENTIAL: token leak in billing-service"
KEY = incident_key(SECRET, GITLAB, PROJECT, 42)


class FakeClock:
    """Seconds that move only when a test (or a pacer's ``sleep``) moves them."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def action(text: str, digest: str = "aaaa1111", *, all_clear: bool = False, recorded: Recorded | None = None,
           stem: str = "Security incident update") -> Action:
    return plan_publish(key=KEY, stem=stem, draft=Draft(digest, text), all_clear=all_clear,
                        recorded=recorded or Recorded())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def statusio_sim(clock: FakeClock) -> Iterator[SimulatedStatusIo]:
    with SimulatedStatusIo(components={"5f0c1a2b3c4d5e6f7a8b9c0d": ["5f0c1a2b3c4d5e6f7a8b9c0e"]},
                           clock=clock) as sim:
        yield sim


@pytest.fixture
def statusio_policy() -> StatusPagePolicy:
    policy = parse_policy({"provider": "statusio", "components": ["5f0c1a2b3c4d5e6f7a8b9c0d"],
                           "containers": ["5f0c1a2b3c4d5e6f7a8b9c0e"], "allowed_hosts": ["status.gitlab.com"]})
    assert policy is not None
    return policy


@pytest.fixture
def statusio(statusio_sim: SimulatedStatusIo, statusio_policy: StatusPagePolicy) -> StatusIo:
    return StatusIo(StatusIoSettings(statusio_sim.url, statusio_sim.api_id, statusio_sim.api_key,
                                     statusio_sim.statuspage_id), statusio_policy, timeout=5)


@pytest.fixture
def statuspage_sim(clock: FakeClock) -> Iterator[SimulatedStatuspage]:
    Pacer.forget()
    with SimulatedStatuspage(components=["cmpweb000001", "cmpapi000002"], clock=clock) as sim:
        yield sim
    Pacer.forget()


@pytest.fixture
def statuspage_policy() -> StatusPagePolicy:
    policy = parse_policy({"provider": "statuspage", "components": ["cmpweb000001", "cmpapi000002"]})
    assert policy is not None
    return policy


@pytest.fixture
def statuspage(statuspage_sim: SimulatedStatuspage, statuspage_policy: StatusPagePolicy,
               clock: FakeClock) -> Statuspage:
    settings = StatuspageSettings(statuspage_sim.url, statuspage_sim.api_key, statuspage_sim.page_id)
    return Statuspage(settings, statuspage_policy, timeout=5,
                      pacer=Pacer(settings.api_key, clock=clock, sleep=clock.sleep))
