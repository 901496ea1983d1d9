"""Urgent work first: the order in which the queue hands out jobs, on both backends (bot.store, bot.core.urgency).

What an operator would notice: a new critical incident or a command is worked on before a backlog of resyncs,
work of one priority stays first in, first out, a job that has waited long enough goes before newer urgent
work (nothing starves), and more work for a queued job never makes it less urgent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.core.urgency import AGING, Priority
from bot.store import DeliveryStore, JobState, open_store
from tests import store_inspect as peek
from tests.store.support import LEASE, T0, at, claim, sqlite_as_written_by

URGENT, HIGH, ELEVATED, NORMAL, BACKGROUND = (
    Priority.URGENT,
    Priority.HIGH,
    Priority.ELEVATED,
    Priority.NORMAL,
    Priority.BACKGROUND,
)


def deliver(store: DeliveryStore, did: str, key: str, t: float, priority: Priority) -> int:
    result = store.record_delivery(did, key, "Issue Hook", at(t), b"{}", priority=priority)
    assert result.job_id is not None
    return result.job_id


def drain(store: DeliveryStore, t: float) -> list[str]:
    """The incident keys in the order workers claim them at time ``t`` (each completed at once)."""
    order = []
    while (job := store.claim("w", at(t), LEASE)) is not None:
        order.append(job.incident_key)
        store.complete(job.id, "w")
    return order


def test_a_backlog_of_resyncs_waits_while_a_command_and_a_new_critical_incident_go_first(store: DeliveryStore) -> None:
    for n in range(5):
        store.enqueue(f"1#{n}", at(n), "sweep: never seen", priority=BACKGROUND)
    deliver(store, "edit", "2#1", 6, NORMAL)
    deliver(store, "critical", "2#2", 8, URGENT)
    deliver(store, "command", "2#3", 7, URGENT)
    deliver(store, "high", "2#4", 9, HIGH)
    assert drain(store, 10) == ["2#3", "2#2", "2#4", "2#1", "1#0", "1#1", "1#2", "1#3", "1#4"]


def test_a_job_that_waited_longer_than_its_aging_allowance_goes_before_newer_urgent_work(
    store: DeliveryStore,
) -> None:
    allowance = (AGING[BACKGROUND] - AGING[URGENT]).total_seconds()
    store.enqueue("1#1", at(0), "sweep", priority=BACKGROUND)
    deliver(store, "sooner", "2#1", allowance - 1, URGENT)
    deliver(store, "later", "2#2", allowance + 1, URGENT)
    assert drain(store, allowance + 2) == ["2#1", "1#1", "2#2"]


def test_aging_ranks_every_priority_by_its_allowance(store: DeliveryStore) -> None:
    """A NORMAL job ready at 0 and a HIGH one ready a little less / more than their allowances apart."""
    gap = (AGING[NORMAL] - AGING[HIGH]).total_seconds()
    deliver(store, "n", "1#1", 0, NORMAL)
    deliver(store, "h-before", "2#1", gap - 1, HIGH)
    deliver(store, "h-after", "2#2", gap + 1, HIGH)
    assert drain(store, gap + 2) == ["2#1", "1#1", "2#2"]


def test_a_job_delivered_again_while_it_waits_keeps_the_more_urgent_priority(store: DeliveryStore) -> None:
    job_id = store.enqueue("1#1", at(0), "sweep", priority=BACKGROUND)
    assert deliver(store, "command", "1#1", 1, URGENT) == job_id
    assert deliver(store, "edit", "1#1", 2, NORMAL) == job_id
    assert store.enqueue("1#1", at(3), "sweep", priority=BACKGROUND) == job_id
    job = peek.get_job(store, job_id)
    assert job is not None and job.priority == URGENT and job.not_before == at(0), "it waits since the first"


def test_urgent_work_that_arrives_while_the_job_runs_comes_round_urgent(store: DeliveryStore) -> None:
    store.enqueue("1#1", at(0), "sweep", priority=BACKGROUND)
    running = claim(store, "w1", t=1)
    store.enqueue("1#2", at(1), "sweep", priority=BACKGROUND)
    deliver(store, "command", "1#1", 2, URGENT)
    assert store.complete(running.id, "w1", now=at(3)) == JobState.PENDING
    again = claim(store, "w1", t=4)
    assert again.id == running.id and again.priority == URGENT, "the command is answered before the backlog"


def test_a_requeue_takes_the_priority_of_the_reminder_and_new_work_can_raise_it(store: DeliveryStore) -> None:
    store.enqueue("1#1", at(0), "sweep", priority=BACKGROUND)
    job = claim(store, t=0)
    store.complete(job.id, "w1", now=at(1), requeue_at=at(600), priority=HIGH)
    delayed = peek.get_job(store, job.id)
    assert delayed is not None and delayed.delayed and delayed.priority == HIGH
    store.enqueue("1#2", at(500), "sweep", priority=BACKGROUND)
    assert drain(store, 600) == ["1#1", "1#2"], "the reminder at its time goes before the older resync"


def test_a_requeue_without_a_priority_keeps_the_jobs_own(store: DeliveryStore) -> None:
    deliver(store, "d", "1#1", 0, ELEVATED)
    job = claim(store, t=0)
    store.complete(job.id, "w1", requeue_at=at(60))
    delayed = peek.get_job(store, job.id)
    assert delayed is not None and delayed.priority == ELEVATED


def test_a_revived_dead_letter_takes_the_priority_of_the_delivery_that_revived_it(url: str) -> None:
    with open_store(url, max_attempts=1) as s:
        deliver(s, "first", "1#1", 0, URGENT)
        job = claim(s, t=0)
        assert s.fail(job.id, "w1", "boom", at(1)) == JobState.DEAD
        deliver(s, "revive", "1#1", 2, NORMAL)
        revived = peek.get_job(s, job.id)
        assert revived is not None and revived.state == JobState.PENDING and revived.priority == NORMAL
        s.enqueue("1#2", at(3), "sweep", revive_dead=False, priority=BACKGROUND)
        dead = s.claim("w", at(4), LEASE)
        assert dead is not None
        assert s.fail(dead.id, "w", "boom", at(4)) == JobState.DEAD
        s.enqueue(dead.incident_key, at(5), "sweep", revive_dead=False, priority=URGENT)
        left = peek.get_job(s, dead.id)
        assert left is not None and left.state == JobState.DEAD and left.priority == NORMAL, "left dead, unchanged"


def test_an_expired_lease_competes_by_its_priority_too(store: DeliveryStore) -> None:
    deliver(store, "critical", "1#1", 0, URGENT)
    stuck = claim(store, "w1", t=0)  # its worker dies; the lease ends at t=30
    for n in range(3):
        store.enqueue(f"2#{n}", at(n), "sweep", priority=BACKGROUND)
    taken = claim(store, "w2", t=31)
    assert taken.id == stuck.id and taken.priority == URGENT


def test_failed_jobs_keep_their_priority_through_the_back_off(store: DeliveryStore) -> None:
    deliver(store, "critical", "1#1", 0, URGENT)
    job = claim(store, t=0)
    store.fail(job.id, "w1", "GitLab 502", at(1), retry_in=timedelta(seconds=10))
    store.enqueue("2#1", at(2), "sweep", priority=BACKGROUND)
    assert drain(store, 5) == ["2#1"], "the back-off is kept"
    assert drain(store, 11) == ["1#1"]


def test_slack_and_gitlab_jobs_are_ordered_apart(store: DeliveryStore) -> None:
    store.enqueue("1#1", at(0), "slack", priority=BACKGROUND, kind="slack")
    store.enqueue("1#2", at(1), "slack", priority=URGENT, kind="slack")
    deliver(store, "d", "1#3", 2, BACKGROUND)
    slack = store.claim("s", at(3), LEASE, kind="slack")
    assert slack is not None and slack.incident_key == "1#2" and slack.kind == "slack"
    gitlab = store.claim("w", at(3), LEASE)
    assert gitlab is not None and gitlab.incident_key == "1#3"


def test_out_of_range_priorities_are_kept_within_the_scale(store: DeliveryStore) -> None:
    low = store.enqueue("1#1", at(0), "x", priority=99)
    high = store.enqueue("1#2", at(1), "x", priority=-5)
    assert [peek.get_job(store, j).priority for j in (low, high)] == [BACKGROUND, URGENT]  # type: ignore[union-attr]
    assert drain(store, 2) == ["1#2", "1#1"]


def test_jobs_queued_before_the_upgrade_get_normal_priority(tmp_path: Path) -> None:
    """A database of the previous schema: its queued jobs are served as NORMAL work, after urgent new work."""
    path = tmp_path / "v5.sqlite3"
    us = (T0 - datetime(1970, 1, 1, tzinfo=T0.tzinfo)) // timedelta(microseconds=1)
    with sqlite_as_written_by(path, 5) as conn:
        conn.execute(
            "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, reason, created_at,"
            " updated_at) VALUES ('1#1', 'pending', 0, 1, ?, 'Issue Hook', ?, ?)",
            (us, us, us),
        )
    conn.close()
    with open_store(str(path)) as s:
        [old] = peek.jobs(s)
        assert old.priority == NORMAL
        s.enqueue("1#2", at(1), "sweep", priority=BACKGROUND)
        deliver(s, "critical", "1#3", 2, URGENT)
        assert drain(s, 3) == ["1#3", "1#1", "1#2"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_claim_skips_the_most_urgent_job_while_another_claim_holds_it(
    url: str,
) -> None:
    """FOR UPDATE SKIP LOCKED in priority order: a claimer takes the next most urgent job, never waits."""
    import psycopg

    with open_store(url) as s, psycopg.connect(url) as other:
        critical = deliver(s, "critical", "1#1", 0, URGENT)
        command = deliver(s, "command", "1#2", 1, URGENT)
        s.enqueue("1#3", at(0), "sweep", priority=BACKGROUND)
        other.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (critical,))  # transaction left open
        assert claim(s, "w1", t=2).id == command
        assert claim(s, "w2", t=2).incident_key == "1#3"
        other.rollback()
        assert claim(s, "w3", t=2).id == critical
