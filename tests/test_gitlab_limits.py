"""A burst of critical incidents against GitLab's limit on new notes (gitlabhq ``notes_create``, modelled in
``bot/simgitlab/ratelimits.py``): every incident gets its checklist, no job fails for the limit, and a bot that knows
the limit is never refused. Fake time: the worker's, the policy's and the simulator's clocks are one ManualClock, and
every wait moves it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.commands.world import World
from bot.gitlab.budget import Budgets, LocalLedger
from bot.gitlab.callpolicy import CallPolicy
from bot.simgitlab import ManualClock
from bot.store import SQLiteStore
from bot.worker import Outcome, Worker

LABELS = ("severity::1", "data-breach", "comms-email")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal")
    yield s
    s.close()


def _policy(clock: ManualClock, notes_per_minute: int) -> CallPolicy:
    def now() -> float:
        return clock().timestamp()

    def sleep(seconds: float) -> None:
        clock.advance(seconds)

    budgets = Budgets({"notes": notes_per_minute}, LocalLedger(), wallclock=now, sleep=sleep)
    return CallPolicy(rate_per_minute=10**6, burst=1000, clock=now, sleep=sleep, wallclock=now, budgets=budgets)


def _burst(w: World, clock: ManualClock, store: SQLiteStore, notes_per_minute: int) -> list[Outcome]:
    keys = [f"{w.project_id}#{w.incident(*LABELS, title=f'incident {n}')}" for n in range(6)]
    for key in keys:
        store.enqueue(key, clock(), "Issue Hook")
    worker = Worker(
        store,
        w.reconciler(_policy(clock, notes_per_minute), clock=clock),
        worker_id="w:1",
        clock=clock,
        settle=timedelta(0),
    )
    outcomes = []
    for _ in range(200):
        result = worker.run_once()
        if result is None:
            if all(w.bot_notes(int(k.split("#")[1])) for k in keys):
                break
            clock.advance(1)
            continue
        outcomes.append(result.outcome)
    return outcomes


def test_a_bot_that_does_not_know_the_limit_waits_for_gitlabs_minute_and_fails_no_job(
    w: World, clock: ManualClock, store: SQLiteStore
) -> None:
    w.sim.state.rate_limits.configure(notes_create=2)
    outcomes = _burst(w, clock, store, notes_per_minute=60)
    assert set(outcomes) == {Outcome.OK}, "no failed attempt, nothing dead"
    refused = w.sim.state.rate_limits.refused.get("notes_create", 0)
    assert 1 <= refused <= 3, "one refusal a minute, not four attempts in the same minute"
    assert store.dead_jobs() == []


def test_a_bot_that_knows_the_limit_is_never_refused(w: World, clock: ManualClock, store: SQLiteStore) -> None:
    w.sim.state.rate_limits.configure(notes_create=3)
    outcomes = _burst(w, clock, store, notes_per_minute=3)
    assert set(outcomes) == {Outcome.OK}
    assert w.sim.state.rate_limits.refused == {}
    checklists = sorted(r.timestamp for r in w.sim.find_requests(route="POST /projects/:id/issues/:iid/notes"))
    assert len(checklists) == 6
