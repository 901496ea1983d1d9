"""Reminders come from the queue, not the sweep: a reconcile's requeue time is a delayed job.

No sweep runs in these tests (as with ``INCIDENT_BOT_SWEEP_SECONDS=off``): after the first reconcile, only
the worker and the store's delayed job bring the incident round again when a status update falls due.
The simulator and the workers share one manual clock; nobody sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.commands.world import World
from bot.simgitlab import ManualClock
from bot.store import DeliveryStore, JobState, open_store
from bot.worker import MAX_POLL, Outcome, Worker
from tests import store_inspect as peek

REMINDER = "Status update due"
LATE = timedelta(seconds=30)
"""How late a reminder may be posted after it falls due."""


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "bot.sqlite3")
    return request.getfixturevalue("postgres_database").new_url()


@pytest.fixture
def store(db: str) -> Iterator[DeliveryStore]:
    with open_store(db) as s:
        yield s


def worker(w: World, store: DeliveryStore, clock: ManualClock, name: str = "w:1") -> Worker:
    """A worker as ``serve`` and ``worker`` build it (default settle and poll interval)."""
    return Worker(store, w.reconciler(clock=clock), worker_id=name, clock=clock)


def run_all(wk: Worker) -> list[Outcome]:
    outcomes = []
    while (result := wk.run_once()) is not None:
        outcomes.append(result.outcome)
    return outcomes


def reminders(w: World, iid: int) -> list[dict]:
    return [n for n in w.bot_notes(iid) if REMINDER in n["body"]]


def first_reconcile(w: World, store: DeliveryStore, clock: ManualClock, iid: int) -> datetime:
    """The webhook for a new SEV1 incident, worked off; returns when its first status update falls due."""
    wk = worker(w, store, clock)
    try:
        store.enqueue(f"{w.project_id}#{iid}", clock(), "Issue Hook")
        clock.advance(1)
        assert run_all(wk) == [Outcome.OK]
    finally:
        wk.reconciler.close()  # type: ignore[attr-defined]
    job = peek.active_job(store, f"{w.project_id}#{iid}")
    assert job is not None and job.state is JobState.PENDING and job.delayed, "no due time in the queue"
    assert reminders(w, iid) == []
    return job.not_before


def test_with_no_sweep_a_reminder_is_posted_within_30_s_of_falling_due(w, store, clock) -> None:
    iid = w.incident("severity::1", "data-breach")
    due = first_reconcile(w, store, clock, iid)
    assert due - clock() > timedelta(minutes=50), "the hourly engagements fall due an hour after the incident"
    wk = worker(w, store, clock)
    try:
        clock.set(due - timedelta(seconds=1))
        assert run_all(wk) == [] and reminders(w, iid) == [], "nothing before it falls due"
        clock.set(due + timedelta(seconds=1))
        w.sim.reset_log()
        assert run_all(wk) == [Outcome.OK]
    finally:
        wk.reconciler.close()  # type: ignore[attr-defined]
    assert len(reminders(w, iid)) == 1
    assert not any(r.query.get("membership") for r in w.sim.requests), "no sweep listed the bot's projects"
    again = peek.active_job(store, f"{w.project_id}#{iid}")
    assert again is not None and again.delayed and again.not_before > due, "the next window is queued in turn"


def test_a_reminder_falls_due_on_time_after_a_restart_in_between(w, db, clock) -> None:
    iid = w.incident("severity::1", "data-breach")
    with open_store(db) as before:
        due = first_reconcile(w, before, clock, iid)
    clock.set(due + timedelta(seconds=2))  # the bot was down and comes back: a new store, a new worker
    with open_store(db) as after:
        wk = worker(w, after, clock, "restarted:1")
        try:
            assert run_all(wk) == [Outcome.OK]
        finally:
            wk.reconciler.close()  # type: ignore[attr-defined]
    assert len(reminders(w, iid)) == 1


def test_two_replicas_post_a_due_reminder_once(w, db, clock) -> None:
    iids = [w.incident("severity::1", "data-breach", title=f"s1 {n}") for n in range(4)]
    with open_store(db) as store:
        dues = [first_reconcile(w, store, clock, iid) for iid in iids]
    clock.set(max(dues) + timedelta(seconds=1))
    two_replicas_drain(w, db, clock)
    assert [len(reminders(w, iid)) for iid in iids] == [1, 1, 1, 1]


def two_replicas_drain(w, db: str, clock) -> None:  # type: ignore[no-untyped-def]
    """Two worker processes' worth of store and worker on one database, started at the same instant, each
    running every job it can claim."""
    stores = [open_store(db), open_store(db)]
    workers = [worker(w, s, clock, f"replica-{n}:1") for n, s in enumerate(stores)]
    start = threading.Barrier(2)

    def replica(wk: Worker) -> None:
        start.wait()
        run_all(wk)

    threads = [threading.Thread(target=replica, args=(wk,)) for wk in workers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for wk, s in zip(workers, stores, strict=True):
            wk.reconciler.close()  # type: ignore[attr-defined]
            s.close()


def test_a_comment_before_the_reminder_is_due_is_reconciled_at_once_and_keeps_the_due_time(w, store, clock) -> None:
    iid = w.incident("severity::1", "data-breach")
    due = first_reconcile(w, store, clock, iid)
    key = f"{w.project_id}#{iid}"
    clock.advance(minutes=10)
    store.record_delivery("note-1", key, "Note Hook", clock(), b"{}")
    clock.advance(1)
    wk = worker(w, store, clock)
    try:
        assert run_all(wk) == [Outcome.OK], "the delivery is worked off now, not at the due time"
        job = peek.active_job(store, key)
        assert job is not None and job.delayed and job.not_before == due
        clock.set(due + timedelta(seconds=1))
        assert run_all(wk) == [Outcome.OK]
    finally:
        wk.reconciler.close()  # type: ignore[attr-defined]
    assert len(reminders(w, iid)) == 1


def test_a_closed_incident_leaves_nothing_in_the_queue(w, store, clock) -> None:
    iid = w.incident("severity::1", "data-breach")
    key = f"{w.project_id}#{iid}"
    first_reconcile(w, store, clock, iid)
    w.sim.state.close_issue(w.project, iid)
    store.record_delivery("close-1", key, "Issue Hook", clock(), b"{}")
    clock.advance(1)
    wk = worker(w, store, clock)
    try:
        assert run_all(wk) == [Outcome.OK]
    finally:
        wk.reconciler.close()  # type: ignore[attr-defined]
    assert peek.active_job(store, key) is None
    assert store.stats().delayed == 0


def test_an_idle_worker_wakes_for_a_reminder_that_falls_due_while_nothing_else_happens(w, store, clock) -> None:
    """``Worker.run`` end to end: its idle waits (which move the clock here) bring the delayed job round."""
    iid = w.incident("severity::1", "data-breach")
    due = first_reconcile(w, store, clock, iid)
    clock.set(due - timedelta(minutes=2))
    posted: list[datetime] = []
    stop = threading.Event()

    def wait(event: threading.Event, seconds: float) -> bool:
        assert seconds <= MAX_POLL
        clock.advance(seconds)
        if reminders(w, iid) and not posted:
            posted.append(clock())
        if posted or clock() > due + timedelta(minutes=5):
            event.set()
        return event.is_set()

    wk = Worker(store, w.reconciler(clock=clock), worker_id="idle:1", clock=clock, wait=wait)
    try:
        wk.run(stop)
    finally:
        wk.reconciler.close()  # type: ignore[attr-defined]
    assert posted, "the reminder was never posted"
    assert due <= posted[0] <= due + LATE


def test_a_worker_refuses_an_idle_poll_too_long_for_reminders_to_be_on_time(tmp_path) -> None:
    with open_store(tmp_path / "bot.sqlite3") as store, pytest.raises(ValueError, match="poll_interval"):
        Worker(store, None, poll_interval=60.0)  # type: ignore[arg-type]


def test_a_restarted_worker_process_posts_the_reminder_on_time_with_the_sweep_off(
    default_config, fast_config, tmp_path
) -> None:
    """``incident-bot worker`` with ``INCIDENT_BOT_SWEEP_SECONDS=off``, stopped and started again before the
    reminder falls due, posts it once, within 30 s. Real time: the due time is set a few seconds ahead."""
    import os
    import signal
    import subprocess
    import time

    from bot.commands.world import world
    from bot.simgitlab import SimulatedGitLab
    from tests.test_replicas import start_worker

    db = str(tmp_path / "bot.sqlite3")
    log = tmp_path / "worker.log"
    with SimulatedGitLab(seed=5) as sim:
        w = world(sim, default_config)
        iid = w.incident("severity::1", "data-breach")
        first = ManualClock(datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=6))
        with open_store(db) as store:
            due = first_reconcile(w, store, first, iid)
        procs = [start_worker(sim, db, fast_config, log)]
        try:
            deadline = time.monotonic() + 30
            while sim.count("GET", r"/user$") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            procs[0].send_signal(signal.SIGTERM)
            assert procs[0].wait(30) == 0, log.read_text()[-2000:]
            assert datetime.now(UTC) < due and reminders(w, iid) == [], "stopped before the reminder fell due"
            procs.append(start_worker(sim, db, fast_config, log))
            while not reminders(w, iid) and datetime.now(UTC) < due + LATE:
                time.sleep(0.1)
            time.sleep(1)  # a second reminder would show up now
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                try:
                    p.wait(25)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        posted = [datetime.fromisoformat(n["created_at"]) for n in reminders(w, iid)]
    assert len(posted) == 1, log.read_text()[-2000:]
    assert due <= posted[0] <= due + LATE
