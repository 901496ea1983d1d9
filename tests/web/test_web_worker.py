"""The worker: what happens to a job after each kind of reconcile outcome, shutdown, and coalescing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from websupport import HOOK_HEADERS, FakeClock, FakeReconciler, metric_value

from bot.core.model import IncidentRef
from bot.gitlab.errors import GitLabAuthError, GitLabCallError, OutcomeUnknown
from bot.metrics import Metrics
from bot.store import DeliveryStore, JobState, LeaseLost
from bot.worker import Outcome, Worker, WorkerPool
from tests import store_inspect as peek

KEY = "42#12"


def make_worker(store: DeliveryStore, reconciler: Any, clock: FakeClock, **kwargs: Any) -> Worker:
    kwargs.setdefault("settle", timedelta(0))
    return Worker(store, reconciler, worker_id="test:1", clock=clock, **kwargs)


def deliver(store: DeliveryStore, clock: FakeClock, n: int = 1, key: str = KEY, uuid: str | None = "u-1") -> None:
    for _ in range(n):
        store.record_delivery(f"d-{time.perf_counter_ns()}", key, "Issue Hook", clock(), b"{}", event_uuid=uuid)


def raising(exc: BaseException) -> Callable[[IncidentRef], None]:
    def effect(ref: IncidentRef) -> None:
        raise exc

    return effect


def test_a_successful_reconcile_completes_the_job_and_forwards_the_event_uuid(
    store: DeliveryStore, clock: FakeClock, metrics: Metrics
) -> None:
    fake = FakeReconciler()
    deliver(store, clock, uuid="chain-7")
    result = make_worker(store, fake, clock, metrics=metrics).run_once()
    assert result is not None and result.outcome is Outcome.OK and result.state == "done"
    assert fake.calls == [(IncidentRef("42", 12), "chain-7")]
    assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}
    assert metric_value(metrics, "incident_bot_reconcile_duration_seconds_count", outcome="ok") == 1


def test_nothing_ready_means_nothing_runs(store: DeliveryStore, clock: FakeClock) -> None:
    assert make_worker(store, FakeReconciler(), clock).run_once() is None


def test_transient_error_is_retried_after_the_servers_retry_after(
    store: DeliveryStore, clock: FakeClock, metrics: Metrics
) -> None:
    error = GitLabCallError("read the incident", KEY, 429, "Too Many Requests", True, retry_after=42)
    deliver(store, clock)
    worker = make_worker(store, FakeReconciler(effect=raising(error)), clock, metrics=metrics)
    result = worker.run_once()
    assert result is not None and result.outcome is Outcome.TRANSIENT and result.state == "pending"
    job = peek.active_job(store, KEY)
    assert job is not None and job.not_before == clock() + timedelta(seconds=42)
    assert "429" in (job.last_error or "")
    clock.advance(41)
    assert worker.run_once() is None
    clock.advance(1)
    assert worker.run_once() is not None
    assert metric_value(metrics, "incident_bot_reconcile_errors_total", kind="transient") == 2


def test_transient_error_without_a_hint_uses_the_stores_backoff(store: DeliveryStore, clock: FakeClock) -> None:
    error = OutcomeUnknown("create a child issue", KEY, 502, "Bad Gateway")
    deliver(store, clock)
    make_worker(store, FakeReconciler(effect=raising(error)), clock).run_once()
    job = peek.active_job(store, KEY)
    assert job is not None and job.state is JobState.PENDING and job.not_before > clock()


@pytest.mark.parametrize(
    "error",
    [
        GitLabCallError("create a child issue", KEY, 422, "Unprocessable", False),
        GitLabAuthError("read the incident", KEY, 401, "Unauthorized", False),
        RuntimeError("a bug in the bot"),
    ],
    ids=["permanent", "auth", "crash"],
)
def test_failures_dead_letter_after_the_stores_max_attempts_with_the_last_error(
    store: DeliveryStore, clock: FakeClock, error: Exception
) -> None:
    fake = FakeReconciler(effect=raising(error))
    deliver(store, clock)
    worker = make_worker(store, fake, clock)
    states = []
    for _ in range(store.max_attempts):
        result = worker.run_once()
        assert result is not None
        states.append(result.state)
        clock.advance(3600)
    assert states == ["pending"] * (store.max_attempts - 1) + ["dead"]
    (dead,) = store.dead_jobs()
    assert dead.incident_key == KEY and str(error) in (dead.last_error or "")
    assert worker.run_once() is None


@pytest.mark.parametrize(
    "error",
    [
        GitLabCallError("create a child issue", KEY, 403, "Forbidden", False),
        GitLabCallError("read the incident", KEY, 404, "Not found", False),
    ],
    ids=["403", "404-incident"],
)
def test_a_refusal_that_cannot_pass_with_time_is_dead_at_once_with_the_reason(
    store: DeliveryStore, clock: FakeClock, error: Exception
) -> None:
    deliver(store, clock)
    result = make_worker(store, FakeReconciler(effect=raising(error)), clock).run_once()
    assert result is not None and result.state == "dead"
    (dead,) = store.dead_jobs()
    assert dead.attempts == 1 and dead.sticky and str(error) in (dead.last_error or "")
    assert "dead at once" in (dead.last_error or "")


def test_a_bad_incident_key_fails_without_calling_gitlab(store: DeliveryStore, clock: FakeClock) -> None:
    fake = FakeReconciler()
    deliver(store, clock, key="not-a-key")
    result = make_worker(store, fake, clock).run_once()
    assert result is not None and result.outcome is Outcome.PERMANENT
    assert fake.calls == []


def test_a_crash_never_stops_the_loop(store: DeliveryStore, clock: FakeClock) -> None:
    def effect(ref: IncidentRef) -> None:
        if ref.iid == 1:
            raise ZeroDivisionError("boom")

    fake = FakeReconciler(effect=effect)
    deliver(store, clock, key="42#1")
    deliver(store, clock, key="42#2")
    stop = threading.Event()
    worker = make_worker(store, fake, clock, poll_interval=0.01)
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while fake.count("42#2") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert fake.count("42#1") >= 1 and fake.count("42#2") == 1


def test_a_job_is_not_claimed_before_it_settled(store: DeliveryStore, clock: FakeClock) -> None:
    fake = FakeReconciler()
    deliver(store, clock)
    worker = make_worker(store, fake, clock, settle=timedelta(seconds=1))
    assert worker.run_once() is None
    clock.advance(0.999)
    assert worker.run_once() is None
    clock.advance(0.001)
    assert worker.run_once() is not None
    job = peek.jobs(store)[0]
    assert job.lease_until is None and job.state is JobState.DONE


def test_the_lease_is_renewed_while_reconciling(store: DeliveryStore, clock: FakeClock) -> None:
    seen: list[Any] = []

    def slow(ref: IncidentRef) -> None:
        first = peek.active_job(store, KEY)
        clock.advance(50)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            job = peek.active_job(store, KEY)
            if job is not None and first is not None and job.lease_until != first.lease_until:
                seen.append((first.lease_until, job.lease_until))
                return
            time.sleep(0.01)

    deliver(store, clock)
    worker = make_worker(
        store, FakeReconciler(effect=slow), clock, lease=timedelta(seconds=60), heartbeat=timedelta(seconds=0.02)
    )
    result = worker.run_once()
    assert result is not None and result.outcome is Outcome.OK
    assert seen and seen[0][1] == seen[0][0] + timedelta(seconds=50)


def test_a_lost_lease_drops_the_result_without_crashing(store: DeliveryStore, clock: FakeClock) -> None:
    def steal(ref: IncidentRef) -> None:
        clock.advance(600)  # our lease has run out; another worker takes the job over
        assert store.claim("other:1", clock(), timedelta(seconds=60)) is not None

    deliver(store, clock)
    worker = make_worker(store, FakeReconciler(effect=steal), clock, lease=timedelta(seconds=60))
    result = worker.run_once()
    assert result is not None and result.state is None
    job = peek.active_job(store, KEY)
    assert job is not None and job.worker_id == "other:1" and job.state is JobState.RUNNING
    with pytest.raises(LeaseLost):
        store.complete(job.id, "test:1")


def test_shutdown_releases_a_claimed_job_that_had_not_started(store: DeliveryStore, clock: FakeClock) -> None:
    fake = FakeReconciler()
    deliver(store, clock)
    stop = threading.Event()
    stop.set()
    result = make_worker(store, fake, clock).run_once(stop)
    assert result is not None and result.outcome is Outcome.RELEASED
    assert fake.calls == []
    job = peek.active_job(store, KEY)
    assert job is not None and job.state is JobState.PENDING and job.attempts == 0


def test_shutdown_finishes_the_reconcile_in_progress(store: DeliveryStore, clock: FakeClock) -> None:
    started, release = threading.Event(), threading.Event()

    def effect(ref: IncidentRef) -> None:
        started.set()
        assert release.wait(5)

    deliver(store, clock)
    deliver(store, clock, key="42#99")
    pool = WorkerPool(store, FakeReconciler(effect=effect), threads=1, clock=clock, settle=timedelta(0))
    stop = threading.Event()
    runner = threading.Thread(target=lambda: pool.run(stop, grace=5, tick=0.01))
    runner.start()
    assert started.wait(5)
    stop.set()  # SIGTERM arrives mid-reconcile
    release.set()
    runner.join(10)
    assert not runner.is_alive()
    states = {j.incident_key: j.state for j in peek.jobs(store)}
    assert states[KEY] is JobState.DONE  # finished, not abandoned
    assert states["42#99"] is JobState.PENDING  # never claimed after the stop


def test_hundred_deliveries_in_a_second_cost_at_most_three_reconciles(
    make_app: Callable[..., Flask], store: DeliveryStore, clock: FakeClock, incident_payload: dict[str, Any]
) -> None:
    """The intake keeps recording while the worker runs concurrently; the burst coalesces."""
    client = make_app().test_client()
    body = json.dumps(incident_payload).encode()
    fake = FakeReconciler()
    pool = WorkerPool(store, fake, threads=2, clock=clock)  # default settle
    for w in pool.workers:
        w.poll_interval = 0.001
    stop = threading.Event()
    pool.start(stop)
    try:
        for i in range(100):
            response = client.post("/webhook", data=body, headers={**HOOK_HEADERS, "Idempotency-Key": f"burst-{i}"})
            assert response.status_code == 202
            clock.advance(0.01)  # 100 deliveries spread over one second
            time.sleep(0.001)  # let the worker threads run in between
        clock.advance(5)
        deadline = time.monotonic() + 10
        while peek.depth(store) != {"pending": 0, "running": 0, "dead": 0} and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        assert pool.join(5)
    assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}
    assert 1 <= fake.count(KEY) <= 3
    assert sum(j.deliveries for j in peek.jobs(store)) == 100
