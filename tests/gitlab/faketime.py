"""A clock and a sleep for call-policy tests that only move when told (no test sleeps for time), and a fixture
that fails any test reaching the real ``time.sleep``."""

from __future__ import annotations

import threading
import time

import pytest


class FakeTime:
    """A clock (``clock``, from ``start``) and a sleep that only move when told; records every sleep."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.start = start
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Import it into a test module to make every real ``time.sleep`` there a failure."""

    def boom(seconds: float) -> None:
        raise AssertionError(f"real sleep({seconds}) called")

    monkeypatch.setattr(time, "sleep", boom)
