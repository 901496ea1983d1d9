"""The job kind is a column, on every backend: each kind's jobs are claimed only by that kind's loop (a kind
nobody runs waits), work coalesces per kind and incident, and databases written before the column upgrade with
their queued ``slack:`` jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store import DeliveryStore, JobState, open_store
from tests import store_inspect as peek
from tests.pg import PostgresTestDatabase
from tests.store.support import LEASE, at, sqlite_as_written_by

K = "42#7"


def test_a_third_kind_is_claimed_only_by_its_own_loop(store: DeliveryStore) -> None:
    store.enqueue(K, at(0), "page", kind="pager")
    assert store.claim("gitlab-worker", at(1), LEASE) is None, "a GitLab worker never takes another kind's job"
    assert store.claim("slack-worker", at(1), LEASE, kind="slack") is None
    job = store.claim("pager-worker", at(1), LEASE, kind="pager")
    assert job is not None and (job.kind, job.incident_key) == ("pager", K)


def test_work_coalesces_per_kind_and_incident(store: DeliveryStore) -> None:
    gitlab = store.enqueue(K, at(0), "webhook")
    slack = store.enqueue(K, at(0), "slack", kind="slack")
    assert gitlab != slack, "one active job of each kind for the incident"
    assert store.enqueue(K, at(1), "slack again", kind="slack") == slack
    assert store.enqueue(K, at(1), "webhook again") == gitlab
    held = store.claim("s", at(2), LEASE, kind="slack")
    assert held is not None and held.id == slack
    assert store.enqueue(K, at(3), "slack while running", kind="slack") == slack, "marks the running job dirty"
    assert store.complete(slack, "s", now=at(4)) == JobState.PENDING


def test_completing_another_kind_keeps_the_gitlab_create_log(store: DeliveryStore) -> None:
    store.note_create(K, "comms-faq", at(0))
    store.enqueue(K, at(0), "slack", kind="slack")
    job = store.claim("s", at(1), LEASE, kind="slack")
    assert job is not None
    store.complete(job.id, "s", now=at(2))
    earlier = store.note_create(K, "comms-faq", at(3))
    assert earlier is not None and earlier.attempted_at == at(0), "a child being created is still remembered"


@pytest.mark.parametrize("kind", ["", "Slack", "slack:x", "x" * 41, "a b"])
def test_a_malformed_kind_is_refused_with_what_is_wrong(store: DeliveryStore, kind: str) -> None:
    with pytest.raises(ValueError, match="a job kind is 1 to 40 of a-z 0-9 _ -"):
        store.enqueue(K, at(0), "x", kind=kind)
    with pytest.raises(ValueError, match="a job kind"):
        store.claim("w", at(0), LEASE, kind=kind)


def test_stats_and_dead_letters_show_the_kind(store: DeliveryStore) -> None:
    store.enqueue("1#1", at(0), "webhook")
    store.enqueue("1#1", at(0), "slack", kind="slack")
    store.enqueue("1#2", at(0), "slack", kind="slack")
    job = store.claim("s", at(1), LEASE, kind="slack")
    assert job is not None
    store.fail(job.id, "s", "token refused", at(2), kind="final")
    stats = store.stats()
    assert stats.kinds == {
        "gitlab": {"pending": 1, "running": 0, "dead": 0},
        "slack": {"pending": 1, "running": 0, "dead": 1},
    }
    assert [(j.kind, j.incident_key) for j in store.dead_jobs()] == [("slack", job.incident_key)]


# -- upgrades ------------------------------------------------------------------------------------------------

_OLD_JOBS = [  # what version 8 queued: a GitLab job and a Slack job of one incident, and others
    ("42#1", "pending", None),
    ("slack:42#1", "pending", None),
    ("slack:42#2", "running", "slack-worker"),
    ("slack:42#3", "dead", None),
    ("slack:42#4", "done", None),
]


def _check_upgraded(new: DeliveryStore) -> None:
    by_key = {(j.kind, j.incident_key): j.state for j in peek.jobs(new)}
    assert by_key == {
        ("gitlab", "42#1"): "pending",
        ("slack", "42#1"): "pending",
        ("slack", "42#2"): "running",
        ("slack", "42#3"): "dead",
        ("slack", "42#4"): "done",
    }
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    gitlab = new.claim("w", now, LEASE)
    assert gitlab is not None and (gitlab.kind, gitlab.incident_key) == ("gitlab", "42#1")
    assert new.claim("w", now, LEASE) is None, "the GitLab workers never see a Slack job"
    claimed = {new.claim("s", now, LEASE, kind="slack") for _ in range(2)}
    assert {(j.kind, j.incident_key) for j in claimed if j is not None} == {("slack", "42#1"), ("slack", "42#2")}
    assert new.retry_dead(now=now) == 1
    again = new.claim("s", now, LEASE, kind="slack")
    assert again is not None and again.incident_key == "42#3"
    assert new.enqueue("42#4", now, "slack", kind="slack") not in {j.id for j in claimed if j is not None}


def test_a_version_8_sqlite_database_upgrades_its_slack_jobs(tmp_path: Path) -> None:
    import bot.store.sqlite as sqlite_store

    path = tmp_path / "old.db"
    us = 1_764_493_200_000_000  # 2025-11-30 09:00 UTC
    with sqlite_as_written_by(path, 8) as conn:
        for key, state, worker in _OLD_JOBS:
            conn.execute(
                "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, lease_until, worker_id,"
                " reason, created_at, updated_at) VALUES (?, ?, 1, 0, ?, ?, ?, 'slack', ?, ?)",
                (key, state, us, us if state == "running" else None, worker, us, us),
            )
    conn.close()
    with open_store(str(path)) as new:
        assert new.stats().schema_version == len(sqlite_store.MIGRATIONS)
        _check_upgraded(new)


def test_a_version_8_postgres_database_upgrades_its_slack_jobs(postgres_database: PostgresTestDatabase) -> None:
    import psycopg

    import bot.store.postgres as pg_store

    url = postgres_database.new_url()
    then = datetime(2025, 11, 30, 9, 0, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        conn.execute(pg_store.SCHEMA_VERSION_TABLE)
        for version in range(8):
            for statement in pg_store.MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version + 1,))
        for key, state, worker in _OLD_JOBS:
            conn.execute(
                "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, lease_until, worker_id,"
                " reason, created_at, updated_at) VALUES (%s, %s, 1, 0, %s, %s, %s, 'slack', %s, %s)",
                (key, state, then, then if state == "running" else None, worker, then, then),
            )
    with open_store(url) as new:
        assert new.stats().schema_version == len(pg_store.MIGRATIONS)
        _check_upgraded(new)
