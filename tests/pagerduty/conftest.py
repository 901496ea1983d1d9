"""Fixtures for the PagerDuty tests: the simulated PagerDuty, and a guard that the client never sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pagerduty.api_client
import pytest

from bot.simpagerduty import SimulatedPagerDuty

KEY = "k" * 28 + "0001"
"""A well-formed (32 character) routing key."""


@pytest.fixture(autouse=True)
def client_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """PagerDuty's client sleeps before each of its own retries; with its retries off it never does."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"PagerDuty's client slept {seconds}s before a retry of its own")

    monkeypatch.setattr(pagerduty.api_client, "time", SimpleNamespace(sleep=refuse))


@pytest.fixture
def simpd() -> Iterator[SimulatedPagerDuty]:
    with SimulatedPagerDuty(clock=lambda: 1_796_637_600.0) as sim:
        yield sim
