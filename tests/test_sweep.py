"""The sweep: one listing of open incidents, and work only for those that need it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.commands.world import World
from bot.core.model import IncidentRef
from bot.store import open_store
from bot.sweep import needs_attention, remember, sweep
from tests import store_inspect as peek
from tests.conftest import T0


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "bot.sqlite3")
    yield s
    s.close()


def drain(w: World, store, clock) -> list[str]:
    """What a worker does: claim each queued incident, reconcile it, remember it, complete it."""
    r = w.reconciler(clock=clock)
    done = []
    try:
        while (job := store.claim("test-worker", clock(), timedelta(minutes=5))) is not None:
            project, _, iid = job.incident_key.partition("#")
            report = r.reconcile(IncidentRef(project, int(iid)))
            remember(store, job.incident_key, report, clock())
            store.complete(job.id, "test-worker", now=clock())
            done.append(job.incident_key)
    finally:
        r.close()
    return done


def one_sweep(w: World, store, clock):
    r = w.reconciler(clock=clock)
    try:
        w.sim.reset_log()
        return sweep(r.client, store, w.cfg, clock())
    finally:
        r.close()


def test_a_sweep_lists_once_and_queues_only_what_needs_it(w, store, clock):
    due_soon = [w.incident("severity::1", "data-breach", title=f"s1 {n}") for n in range(3)]
    w.incident("severity::3", title="out of scope")
    first = one_sweep(w, store, clock)
    assert first.listed == 4 and set(first.queued.values()) == {"never seen"}
    assert len(drain(w, store, clock)) == 4

    again = one_sweep(w, store, clock)
    assert again.queued == {} and len(w.sim.requests) == 2, "one page of projects, one of issues, nothing else"

    clock.advance(minutes=61)  # the hourly engagements fall due; the out-of-scope one never does
    due = one_sweep(w, store, clock)
    assert set(due.queued) == {f"{w.project_id}#{iid}" for iid in due_soon}
    assert set(due.queued.values()) == {"due"}
    drain(w, store, clock)
    reminders = [n for iid in due_soon for n in w.bot_notes(iid) if "Status update due" in n["body"]]
    assert len(reminders) == 3
    assert one_sweep(w, store, clock).queued == {}


def test_changes_missed_while_down_are_caught(w, store, clock):
    iid = w.incident("severity::1")
    one_sweep(w, store, clock)
    drain(w, store, clock)
    clock.advance(minutes=5)
    labels = w.sim.state.get_issue(w.project, iid)["labels"]
    w.sim.state.set_labels(w.project, iid, [*labels, "comms-faq"])  # the webhook for this was lost
    assert one_sweep(w, store, clock).queued == {f"{w.project_id}#{iid}": "updated since last seen"}
    drain(w, store, clock)
    assert len(w.children()) == 1


def test_sweep_follows_pagination(w, store, clock):
    for n in range(130):
        w.incident("severity::3", title=f"incident {n}")
    report = one_sweep(w, store, clock)
    assert report.listed == 130 and len(w.sim.requests) == 3  # the bot's projects, then two pages of issues


def test_closed_incidents_are_not_listed(w, store, clock):
    iid = w.incident("severity::1")
    w.sim.state.close_issue(w.project, iid)
    assert one_sweep(w, store, clock).listed == 0


@pytest.mark.parametrize(
    ("updated", "seen", "next_due", "now", "why"),
    [
        (T0, None, None, T0, "never seen"),
        (T0 + timedelta(minutes=1), T0, None, T0 + timedelta(minutes=2), "updated since last seen"),
        (T0, T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1), "due"),
        (T0, T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=59), None),
        (T0, T0, None, T0 + timedelta(days=9), None),
    ],
)
def test_needs_attention(updated, seen, next_due, now, why):
    from bot.core.model import Issue
    from bot.store import IncidentMark

    mark = IncidentMark("k", seen, next_due) if seen else None
    assert needs_attention(Issue(IncidentRef("1", 1), updated_at=updated), mark, now) == why


def test_two_workers_sweeping_at_once_post_each_reminder_once(w, store, clock):
    """Two replicas sweep the same store at the same moment and drain it concurrently."""
    import threading

    from bot.worker import Worker

    iids = [w.incident("severity::1", "data-breach", title=f"s1 {n}") for n in range(6)]
    one_sweep(w, store, clock)
    drain(w, store, clock)
    clock.advance(minutes=61)
    reconcilers = [w.reconciler(clock=clock) for _ in range(2)]
    workers = [
        Worker(store, r, worker_id=f"replica-{n}", clock=clock, settle=timedelta(0)) for n, r in enumerate(reconcilers)
    ]
    start = threading.Barrier(2)

    def replica(worker: Worker) -> None:
        start.wait()
        sweep(worker.reconciler.client, store, w.cfg, clock())
        while worker.run_once() is not None:
            pass

    threads = [threading.Thread(target=replica, args=(wk,)) for wk in workers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for r in reconcilers:
            r.close()
    for iid in iids:
        reminders = [n for n in w.bot_notes(iid) if "Status update due" in n["body"]]
        assert len(reminders) == 1, f"#{iid}"
    assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}


def test_the_sweep_lists_each_scope_entry_of_the_remit_once_and_never_the_whole_instance():
    from bot.gitlab.ports import IssueListing as Listing
    from bot.sweep import RemitProject, listings

    projects = {
        1: RemitProject(1, "acme/sec/incidents", "acme/sec"),
        2: RemitProject(2, "acme/sec/red/ops", "acme/sec/red"),
        3: RemitProject(3, "acme-other/x", "acme-other"),
        4: RemitProject(4, "sam/notes", None),  # a user's namespace
    }
    assert listings(projects, []) == [], "no scope, nothing listed: membership alone is no remit"
    assert listings(projects, ["acme/sec/red/ops", "acme", "nowhere"]) == [
        Listing("project", "acme/sec/red/ops"),
        Listing("group", "acme"),
    ]


def test_metrics_count_reminders_per_engagement_and_the_last_good_sweep(w, store, clock):
    """What an operator alerts on: reminders posted (per engagement), and when the sweep last succeeded."""
    from bot.metrics import Metrics
    from bot.worker import Worker, WorkerPool

    metrics = Metrics()
    w.incident("severity::1", "data-breach")
    r = w.reconciler(clock=clock)
    try:
        pool = WorkerPool(store, r, threads=1, metrics=metrics, sweeper=lambda: sweep(r.client, store, w.cfg, clock()))
        assert metrics.registry.get_sample_value("incident_bot_sweep_last_success_timestamp_seconds") == 0
        pool.sweep()
        assert metrics.registry.get_sample_value("incident_bot_sweep_last_success_timestamp_seconds") > 0
        worker = Worker(store, r, worker_id="w", clock=clock, settle=timedelta(0), metrics=metrics)
        while worker.run_once() is not None:
            pass
        clock.advance(minutes=61)
        one_sweep(w, store, clock)
        while worker.run_once() is not None:
            pass
    finally:
        r.close()
    reminded = {
        e: metrics.registry.get_sample_value("incident_bot_reminders_posted_total", {"engagement": e})
        for e in ("sr-director-security", "e-group")
    }
    assert reminded == {"sr-director-security": 1.0, "e-group": 1.0}
