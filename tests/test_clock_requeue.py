"""A regulatory clock's reminders come from the queue: the reconcile's requeue time is the clock's next
threshold, a delayed job that survives a restart, and two replicas post the reminder once. No sweep runs; the
workers and the simulator share one manual clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.commands.world import World
from bot.simgitlab import ManualClock
from bot.store import JobState, open_store
from tests import store_inspect as peek
from tests.test_requeue import run_all, two_replicas_drain, worker

REMINDER = "Regulatory deadline"


def _started(w: World, db: str, clock: ManualClock) -> tuple[int, object]:
    """A SEV1 data breach whose status update reminders are snoozed for a week, and Legal's GDPR clock started
    now; returns the incident and the queued job."""
    iid = w.incident("severity::1", "data-breach")
    w.sim.state.add_note(w.project, iid, "@incident-bot snooze 7d", author="sec-oncall")
    w.sim.state.add_note(w.project, iid, "@incident-bot clock start gdpr", author="legal-oncall")
    with open_store(db) as store:
        wk = worker(w, store, clock)
        try:
            store.enqueue(f"{w.project_id}#{iid}", clock(), "Note Hook")
            clock.advance(1)
            run_all(wk)
        finally:
            wk.reconciler.close()  # type: ignore[attr-defined]
        job = peek.active_job(store, f"{w.project_id}#{iid}")
    return iid, job


def _reminders(w: World, iid: int) -> list[dict]:
    return [n for n in w.bot_notes(iid) if REMINDER in n["body"]]


def test_the_halfway_reminder_is_a_delayed_job_that_survives_a_restart(w, clock, tmp_path: Path) -> None:
    db = str(tmp_path / "bot.sqlite3")
    start = clock()
    iid, job = _started(w, db, clock)
    assert job is not None and job.state is JobState.PENDING and job.delayed
    halfway = start + timedelta(hours=36)
    assert abs(job.not_before - halfway) <= timedelta(seconds=2), "requeued for the clock, not the snooze's end"
    clock.set(halfway + timedelta(seconds=2))  # the bot was down and comes back: a new store, a new worker
    with open_store(db) as after:
        wk = worker(w, after, clock, "restarted:1")
        try:
            run_all(wk)
            run_all(wk)
        finally:
            wk.reconciler.close()  # type: ignore[attr-defined]
        again = peek.active_job(after, f"{w.project_id}#{iid}")
    assert len(_reminders(w, iid)) == 1
    assert again is not None and abs(again.not_before - (start + timedelta(hours=54))) <= timedelta(seconds=2)


def test_two_replicas_post_a_clock_reminder_once(w, clock, tmp_path: Path) -> None:
    db = str(tmp_path / "bot.sqlite3")
    start = clock()
    iid, _ = _started(w, db, clock)
    clock.set(start + timedelta(hours=36, seconds=2))
    two_replicas_drain(w, db, clock)
    assert len(_reminders(w, iid)) == 1
