"""The API budget serves urgent callers first (bot.gitlab.callpolicy.UrgentFirst, caller_priority).

When the rate is used up, callers wait for tokens. Background jobs in flight must not hold the budget
against a new critical incident: the next token goes to the caller working for the most urgent job. The
bucket here hands out a token only when the test says so, so the order is the limiter's, not the scheduler's.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import wait

import pytest

from bot.core.urgency import Priority
from bot.gitlab.callpolicy import CallPolicy, UrgentFirst, caller_priority, working_for
from bot.reconciler import CallPool


class GatedBucket:
    """A token bucket that gives a token only when the test releases one; records whom it served."""

    def __init__(self) -> None:
        self.served: list[str] = []
        self.tokens = threading.Semaphore(0)

    def acquire(self, max_wait: float = math.inf) -> float | None:
        self.served.append(threading.current_thread().name)
        assert self.tokens.acquire(timeout=10)
        return 0.0


def until(condition: Callable[[], bool]) -> None:
    """Wait for the other threads to get there (a state, not a time; bounded so a bug fails the test)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the callers never got there"
        time.sleep(0.001)


def caller(gate: UrgentFirst, name: str, priority: Priority, results: dict[str, float | None]) -> threading.Thread:
    def run() -> None:
        with working_for(priority):
            results[name] = gate.acquire()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def test_the_next_token_goes_to_the_caller_working_for_the_most_urgent_job() -> None:
    bucket = GatedBucket()
    gate = UrgentFirst(bucket, clock=lambda: 0.0)  # type: ignore[arg-type]
    results: dict[str, float | None] = {}
    threads = [caller(gate, "background-1", Priority.BACKGROUND, results)]
    until(lambda: bucket.served == ["background-1"])  # it waits for its token
    threads.append(caller(gate, "background-2", Priority.BACKGROUND, results))
    until(lambda: gate.waiting() == [Priority.BACKGROUND])
    threads.append(caller(gate, "sweep", Priority.BACKGROUND, results))
    threads.append(caller(gate, "critical", Priority.URGENT, results))
    threads.append(caller(gate, "edit", Priority.NORMAL, results))
    until(lambda: gate.waiting() == [Priority.URGENT, Priority.NORMAL, Priority.BACKGROUND, Priority.BACKGROUND])
    for _ in threads:
        bucket.tokens.release()
    for t in threads:
        t.join(10)
    assert bucket.served == ["background-1", "critical", "edit", "background-2", "sweep"]
    assert set(results) == {t.name for t in threads} and None not in results.values()
    assert gate.waiting() == []


def test_a_caller_that_cannot_wait_for_its_turn_gives_up_and_takes_no_token() -> None:
    bucket = GatedBucket()
    gate = UrgentFirst(bucket, clock=lambda: 0.0)  # type: ignore[arg-type]
    results: dict[str, float | None] = {}
    holder = caller(gate, "background", Priority.BACKGROUND, results)
    until(lambda: bucket.served == ["background"])
    with working_for(Priority.URGENT):
        assert gate.acquire(max_wait=0) is None
    assert gate.waiting() == [] and bucket.served == ["background"]
    bucket.tokens.release()
    holder.join(10)
    assert results == {"background": 0.0}


def test_alone_a_caller_is_spaced_by_the_rate_as_before() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    policy = CallPolicy(rate_per_minute=60, clock=lambda: now[0], sleep=sleep)
    assert isinstance(policy.limiter, UrgentFirst)
    for _ in range(4):
        policy.call(lambda: None, step="read")
    assert slept == pytest.approx([1.0, 1.0, 1.0])
    assert policy.stats.snapshot().throttled_s == pytest.approx(3.0)


def test_calls_a_job_makes_from_the_reconcilers_threads_keep_its_priority() -> None:
    pool = CallPool(max_workers=2)
    try:
        assert pool.submit(caller_priority.get).result() == Priority.NORMAL, "no job: normal"
        with working_for(Priority.URGENT):
            urgent = [pool.submit(caller_priority.get) for _ in range(4)]
            mapped = list(pool.map(lambda _: caller_priority.get(), range(4)))
        with working_for(Priority.BACKGROUND):
            background = pool.submit(caller_priority.get)
        wait([*urgent, background])
        assert [f.result() for f in urgent] == [Priority.URGENT] * 4 and mapped == [Priority.URGENT] * 4
        assert background.result() == Priority.BACKGROUND
        assert pool.submit(caller_priority.get).result() == Priority.NORMAL, "nothing leaks into the threads"
    finally:
        pool.shutdown()
