"""One job loop for every kind (bot/jobloop.py): what a handler's result does to its job, for any kind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.jobloop import MIN_RETRY, JobLoop, Result, done, failed, lease_lost, released, retry_after
from bot.lease import LeaseKeeper
from bot.simgitlab.clock import ManualClock
from bot.store import Job, JobState
from bot.store.sqlite import SQLiteStore
from tests import store_inspect as peek

KIND = "pager"
LEASE = timedelta(seconds=60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "bot.sqlite3", durability="normal", max_attempts=3) as s:
        yield s


class Handler:
    """A handler that answers what the test tells it, and remembers what it was given."""

    def __init__(self, *results: Result | BaseException) -> None:
        self.results = list(results)
        self.seen: list[Job] = []

    def __call__(self, job: Job, held: LeaseKeeper) -> Result:
        self.seen.append(job)
        result = self.results.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result


def loop(store: SQLiteStore, clock: ManualClock, handler: Handler, kind: str = KIND) -> JobLoop:
    return JobLoop(store, handler, kind=kind, worker_id="w:1", clock=clock, lease=LEASE)


def test_a_kind_is_run_only_by_its_own_loop(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    gitlab = Handler()
    assert loop(store, clock, gitlab, kind="gitlab").run_once() is None
    pager = Handler(done())
    ran = loop(store, clock, pager).run_once()
    assert ran is not None and ran.state is JobState.DONE
    assert [(j.kind, j.incident_key) for j in pager.seen] == [(KIND, "1#1")] and gitlab.seen == []


def test_done_with_a_time_runs_the_job_again_then(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    handler = Handler(done(clock() + timedelta(minutes=5)), done())
    assert loop(store, clock, handler).run_once().state is JobState.PENDING  # type: ignore[union-attr]
    clock.advance(minutes=4)
    assert loop(store, clock, handler).run_once() is None, "not before its time"
    clock.advance(minutes=1)
    assert loop(store, clock, handler).run_once().state is JobState.DONE  # type: ignore[union-attr]


def test_a_failure_is_retried_after_the_servers_wait_then_dead(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    handler = Handler(*[failed("PagerDuty answered 503", retry_after(30))] * 3)
    for _ in range(2):
        assert loop(store, clock, handler).run_once().state is JobState.PENDING  # type: ignore[union-attr]
        clock.advance(seconds=29)
        assert loop(store, clock, handler).run_once() is None, "waits what the server asked"
        clock.advance(seconds=1)
    assert loop(store, clock, handler).run_once().state is JobState.DEAD  # type: ignore[union-attr]
    (dead,) = store.dead_jobs()
    assert (dead.kind, dead.last_error) == (KIND, "PagerDuty answered 503")


def test_a_final_failure_is_dead_at_once_and_a_retry_after_zero_still_waits(
    store: SQLiteStore, clock: ManualClock
) -> None:
    assert retry_after(0) == MIN_RETRY and retry_after(None) is None
    store.enqueue("1#1", clock(), "page", kind=KIND)
    ran = loop(store, clock, Handler(failed("400: routing key invalid", kind="final"))).run_once()
    assert ran is not None and ran.state is JobState.DEAD and peek.depth(store)["dead"] == 1


def test_a_handler_that_raises_is_a_failed_attempt_with_the_error(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    ran = loop(store, clock, Handler(RuntimeError("boom"))).run_once()
    assert ran is not None and ran.state is JobState.PENDING
    job = peek.active_job(store, "1#1", kind=KIND)
    assert job is not None and job.last_error == "crash: RuntimeError: boom"


def test_on_shutdown_a_claimed_job_is_released_unstarted(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    stop = threading.Event()
    stop.set()
    handler = Handler()
    ran = loop(store, clock, handler).run_once(stop)
    assert ran is not None and ran.result is released and handler.seen == []
    job = peek.active_job(store, "1#1", kind=KIND)
    assert job is not None and (job.state, job.attempts) == (JobState.PENDING, 0), "the attempt is not counted"


def test_an_interrupt_hands_the_job_back_and_goes_on(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    with pytest.raises(KeyboardInterrupt):
        loop(store, clock, Handler(KeyboardInterrupt())).run_once()
    job = peek.active_job(store, "1#1", kind=KIND)
    assert job is not None and job.state is JobState.PENDING


def test_lease_lost_records_nothing_and_a_late_result_is_dropped(store: SQLiteStore, clock: ManualClock) -> None:
    store.enqueue("1#1", clock(), "page", kind=KIND)
    ran = loop(store, clock, Handler(lease_lost)).run_once()
    assert ran is not None and ran.state is None
    clock.advance(seconds=61)  # the lease ran out; another worker takes the job
    other = store.claim("w:2", clock(), LEASE, kind=KIND)
    assert other is not None
    late = loop(store, clock, Handler()).record(other, done())  # w:1 reporting on w:2's job
    assert late.state is None
    assert peek.active_job(store, "1#1", kind=KIND).state is JobState.RUNNING  # type: ignore[union-attr]


def test_the_slack_worker_hands_back_a_job_claimed_after_shutdown_began(store: SQLiteStore, clock: ManualClock) -> None:
    from bot.integrations.slack.job import SlackWorker

    store.enqueue("1#1", clock(), "slack", kind="slack")
    stop = threading.Event()
    stop.set()
    sender = SlackWorker(store, lambda: pytest.fail("no Slack call after shutdown"), worker_id="s:1", clock=clock)
    assert sender.run_once(stop) == "pending"
    job = peek.active_job(store, "1#1", kind="slack")
    assert job is not None and (job.state, job.attempts) == (JobState.PENDING, 0)
