"""Contract tests for the durable delivery store and work queue (bot.store).

The contract tests run against each backend in BACKENDS through the `store` / `url` fixtures and the public
interface only; backend-specific knowledge lives in the Backend adapters (tests/store/support.py, the
fixtures in tests/store/conftest.py). A few tests are about
one backend and say so in their names (a version-1 database of each, PostgreSQL's row locks and
connections). PostgreSQL runs on a throw-away server (see tests/conftest.py): without PostgreSQL installed its
variants are skipped with a message, except under CI, where they fail.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import bot
from bot.store import (
    DeliveryStore,
    JobState,
    LeaseLost,
    PruneResult,
    SchemaVersionError,
    StoreError,
    open_store,
    upgrade,
)
from tests import store_inspect as peek
from tests.hypothesis_profiles import examples
from tests.pg import INSTALL_HINT
from tests.store.support import LEASE, T0, A, B, Backend, C, at, claim, record, sqlite_as_written_by

if TYPE_CHECKING:
    from tests.pg import PostgresTestDatabase


def repo_root() -> str:
    return str(Path(bot.__file__).resolve().parents[1])


# -- intake: dedup and coalescing -------------------------------------------------------------------------


def test_same_delivery_id_twice_is_one_delivery_and_one_job(store: DeliveryStore) -> None:
    first = record(store, "idem-1")
    second = record(store, "idem-1", t=5)
    assert first.new and first.job_id is not None
    assert not second.new and second.job_id == first.job_id
    [job] = peek.jobs(store)
    assert job.deliveries == 1 and job.state == JobState.PENDING
    assert store.stats().deliveries == 1
    delivery = peek.get_delivery(store, "idem-1")
    assert delivery is not None and delivery.received_at == T0 and delivery.payload == b'{"id": "idem-1"}'


def test_delivery_without_incident_is_logged_but_enqueues_nothing(store: DeliveryStore) -> None:
    result = record(store, "note-on-snippet", key=None, event="Note Hook")
    assert result.new and result.job_id is None
    assert peek.jobs(store) == [] and store.claim("w1", at(0), LEASE) is None
    assert peek.get_delivery(store, "note-on-snippet") is not None
    assert not record(store, "note-on-snippet", key=None).new


def test_hundred_deliveries_for_one_incident_coalesce_into_one_pending_job(store: DeliveryStore) -> None:
    ids = {record(store, f"d{i}", t=i).job_id for i in range(100)}
    assert len(ids) == 1
    [job] = peek.jobs(store)
    assert (job.state, job.deliveries, job.attempts) == (JobState.PENDING, 100, 0)
    assert job.created_at == T0 and job.updated_at == at(99) and job.not_before == T0
    assert peek.depth(store) == {"pending": 1, "running": 0, "dead": 0}


def test_delivery_during_run_marks_dirty_and_requeues_after_complete(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store, "w1", t=1)
    record(store, "d2", t=2)
    running = peek.get_job(store, job.id)
    assert running is not None and running.dirty and running.state == JobState.RUNNING
    assert running.deliveries == 2
    assert store.claim("w2", at(3), LEASE) is None, "a dirty running job must not be run concurrently"
    assert store.complete(job.id, "w1", now=at(4)) == JobState.PENDING
    again = claim(store, "w2", t=5)
    assert again.id == job.id and not again.dirty and again.attempts == 1
    assert store.complete(again.id, "w2") == JobState.DONE
    assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}


def test_new_delivery_after_done_creates_a_new_job(store: DeliveryStore) -> None:
    record(store, "d1")
    first = claim(store, t=0)
    store.complete(first.id, "w1")
    second = record(store, "d2", t=10)
    assert second.job_id != first.id
    assert [j.state for j in peek.jobs(store)] == [JobState.DONE, JobState.PENDING]


def test_enqueue_coalesces_like_a_delivery_without_counting_one(store: DeliveryStore) -> None:
    job_id = store.enqueue(A, at(0), "sweep")
    assert record(store, "d1", t=1).job_id == job_id
    assert store.enqueue(A, at(2), "refresh") == job_id
    job = peek.get_job(store, job_id)
    assert job is not None and job.deliveries == 1 and job.reason == "refresh"
    running = claim(store)
    store.enqueue(A, at(3), "refresh")
    assert store.complete(running.id, "w1") == JobState.PENDING


# -- claiming ---------------------------------------------------------------------------------------------


def test_claim_takes_oldest_ready_job_and_respects_not_before(store: DeliveryStore) -> None:
    record(store, "a", A, t=0)
    record(store, "b", B, t=1)
    record(store, "c", C, t=2)
    assert store.claim("w1", at(-1), LEASE) is None, "not ready before it was received"
    first = claim(store, "w1", t=3)
    assert first.incident_key == A
    assert first.lease_until == at(3) + LEASE and first.worker_id == "w1" and first.attempts == 1
    store.fail(first.id, "w1", "GitLab 502", at(3), retry_in=timedelta(seconds=60))
    for worker, key in (("w2", B), ("w3", C)):
        job = claim(store, worker, t=4)
        assert job.incident_key == key
        store.complete(job.id, worker)
    assert store.claim("w4", at(62), LEASE) is None
    assert claim(store, "w4", t=63).incident_key == A


def test_expired_lease_competes_by_time_it_became_ready(store: DeliveryStore) -> None:
    record(store, "x", A, t=0)
    stuck = claim(store, "w1", t=0)  # lease expires at t=30
    record(store, "y", B, t=40)
    assert claim(store, "w2", t=50).id == stuck.id
    assert claim(store, "w3", t=50).incident_key == B


def test_expired_lease_is_reclaimed_and_stale_worker_gets_lease_lost(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store, "w1", t=0)
    assert store.claim("w2", at(29), LEASE) is None, "lease still valid"
    taken = claim(store, "w2", t=30)
    assert taken.id == job.id and taken.worker_id == "w2" and taken.attempts == 2
    before = peek.get_job(store, job.id)
    with pytest.raises(LeaseLost):
        store.complete(job.id, "w1")
    with pytest.raises(LeaseLost):
        store.fail(job.id, "w1", "boom", at(31))
    with pytest.raises(LeaseLost):
        store.release(job.id, "w1")
    with pytest.raises(LeaseLost):
        store.extend_lease(job.id, "w1", at(31), LEASE)
    assert peek.get_job(store, job.id) == before, "a stale worker changes nothing"
    assert store.complete(job.id, "w2") == JobState.DONE
    with pytest.raises(LeaseLost):
        store.complete(job.id, "w2")
    with pytest.raises(LeaseLost):
        store.complete(12345, "w2")


def test_extend_lease_keeps_the_job(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store, "w1", t=0)
    extended = store.extend_lease(job.id, "w1", at(25), LEASE)
    assert extended.lease_until == at(55)
    assert store.claim("w2", at(40), LEASE) is None
    assert claim(store, "w2", t=55).id == job.id


def test_expired_but_unclaimed_lease_can_still_complete(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store, "w1", t=0)
    assert store.complete(job.id, "w1", now=at(500)) == JobState.DONE
    done = peek.get_job(store, job.id)
    assert done is not None and done.updated_at == at(500) and done.lease_until is None


def test_release_gives_job_back_without_counting_an_attempt(store: DeliveryStore) -> None:
    record(store, "a", A, t=0)
    record(store, "b", B, t=1)
    job = claim(store, "w1", t=2)
    store.release(job.id, "w1", now=at(3))
    again = claim(store, "w2", t=3)
    assert again.id == job.id and again.attempts == 1, "released job is first in line, attempt not counted"


# -- failure, back-off, dead letters ----------------------------------------------------------------------


def test_fail_backs_off_exponentially_then_dead_letters(url: str) -> None:
    with open_store(url, max_attempts=8) as store:
        record(store, "d1")
        now = T0
        delays = []
        for attempt in range(1, 9):
            job = store.claim("w1", now, LEASE)
            assert job is not None and job.attempts == attempt
            state = store.fail(job.id, "w1", f"error {attempt}", now)
            if attempt < 8:
                assert state == JobState.PENDING
                pending = peek.get_job(store, job.id)
                assert pending is not None and pending.last_error == f"error {attempt}"
                delays.append((pending.not_before - now).total_seconds())
                assert store.claim("w1", pending.not_before - timedelta(microseconds=1), LEASE) is None
                now = pending.not_before
            else:
                assert state == JobState.DEAD
        assert delays == [10, 20, 40, 80, 160, 320, 600]
        [dead] = store.dead_jobs()
        assert dead.last_error == "error 8" and dead.attempts == 8 and dead.state == JobState.DEAD
        assert store.claim("w1", now + timedelta(days=1), LEASE) is None
        assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 1}


def test_retry_in_overrides_backoff(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store)
    store.fail(job.id, "w1", "429 rate limited", at(0), retry_in=timedelta(seconds=3))
    assert store.claim("w1", at(2), LEASE) is None
    assert claim(store, t=3).id == job.id


def test_retry_dead_one_or_all(url: str) -> None:
    with open_store(url, max_attempts=1) as store:
        for i, key in enumerate((A, B, C)):
            record(store, f"d{i}", key)
            job = claim(store)
            assert store.fail(job.id, "w1", "bad template", at(0)) == JobState.DEAD
        dead = store.dead_jobs()
        assert [j.incident_key for j in dead] == [A, B, C]
        assert store.retry_dead(dead[0].id, now=at(100)) == 1
        assert store.retry_dead(dead[0].id) == 0, "no longer dead"
        revived = claim(store, t=100)
        assert revived.id == dead[0].id and revived.attempts == 1
        assert store.retry_dead() == 2
        assert store.dead_jobs() == []
        assert peek.depth(store)["pending"] == 2


def test_new_delivery_revives_dead_job(url: str) -> None:
    with open_store(url, max_attempts=2) as store:
        record(store, "d1")
        for t in (0, 100):
            job = claim(store, t=t)
            store.fail(job.id, "w1", "500", at(t))
        [dead] = store.dead_jobs()
        assert store.enqueue(A, at(200), "sweep", revive_dead=False) == dead.id
        assert store.dead_jobs() == [peek.get_job(store, dead.id)], "left dead"
        result = record(store, "d2", t=300)
        assert result.new and result.job_id == dead.id
        revived = peek.get_job(store, dead.id)
        assert revived is not None
        assert (revived.state, revived.attempts, revived.deliveries) == (JobState.PENDING, 0, 2)
        assert revived.not_before == at(300) and revived.last_error == "500"
        assert store.dead_jobs() == []


def test_change_during_last_attempt_is_not_buried_in_dead_letter(url: str) -> None:
    with open_store(url, max_attempts=1) as store:
        record(store, "d1")
        job = claim(store)
        record(store, "d2", t=1)
        assert store.fail(job.id, "w1", "boom", at(2)) == JobState.PENDING
        again = claim(store, t=12)
        assert again.id == job.id and again.attempts == 1
        assert store.fail(again.id, "w1", "boom", at(13)) == JobState.DEAD


def test_job_that_keeps_killing_its_worker_goes_dead(url: str) -> None:
    with open_store(url, max_attempts=2) as store:
        record(store, "d1")
        claim(store, "w1", t=0)
        claim(store, "w2", t=30)
        assert store.claim("w3", at(60), LEASE) is None
        [dead] = store.dead_jobs()
        assert dead.last_error is not None and "lease expired" in dead.last_error


# -- introspection and maintenance ------------------------------------------------------------------------


def test_depth_stats_and_ping(url: str) -> None:
    with open_store(url, max_attempts=1) as store:
        store.ping()
        assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}
        record(store, "a", A, t=0)
        record(store, "b", B, t=1)
        record(store, "c", C, t=2)
        record(store, "n", None, t=3)
        dead = claim(store, "w1", t=5)
        store.fail(dead.id, "w1", "x", at(5))
        claim(store, "w2", t=5)
        stats = store.stats()
        assert peek.depth(store) == {"pending": 1, "running": 1, "dead": 1}
        assert (stats.pending, stats.running, stats.dead, stats.done, stats.deliveries) == (1, 1, 1, 0, 4)
        assert stats.oldest_pending == at(2) and stats.schema_version >= 1
    with pytest.raises(StoreError):
        store.ping()


def test_prune_keeps_unfinished_work_and_dead_letters(url: str) -> None:
    with open_store(url, max_attempts=1) as store:
        record(store, "a1", A, t=0)
        record(store, "n1", None, t=0)
        record(store, "b1", B, t=1)
        record(store, "c1", C, t=2)
        done = claim(store, t=5)
        store.complete(done.id, "w1", now=at(6))
        dead = claim(store, t=7)
        store.fail(dead.id, "w1", "x", at(7))
        result = store.prune(at(3600))
        assert (result.deliveries, result.jobs) == (2, 1)
        assert peek.get_delivery(store, "a1") is None and peek.get_delivery(store, "n1") is None
        assert peek.get_job(store, done.id) is None
        assert peek.get_delivery(store, "c1") is not None, "pending work keeps its deliveries"
        assert peek.get_delivery(store, "b1") is not None, "dead letters keep their deliveries"
        assert record(store, "a1", A, t=3700).new, "dedup window is the retention"
        assert store.prune(at(0)) == PruneResult(deliveries=0, jobs=0)


def test_naive_datetimes_are_refused_and_other_zones_normalised(store: DeliveryStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_delivery("d", A, "Issue Hook", datetime(2026, 11, 28, 12), b"")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.claim("w1", datetime(2026, 11, 28, 12), LEASE)
    cet = timezone(timedelta(hours=1))
    store.record_delivery("d", A, "Issue Hook", datetime(2026, 11, 28, 13, tzinfo=cet), b"")
    [job] = peek.jobs(store)
    assert job.created_at == T0 and job.created_at.utcoffset() == timedelta(0)


# -- durability and schema --------------------------------------------------------------------------------


def test_pending_running_and_dead_jobs_survive_reopen(url: str) -> None:
    with open_store(url, max_attempts=1) as store:
        record(store, "a", A, t=0)
        record(store, "b", B, t=1)
        record(store, "c", C, t=2)
        dead = claim(store, t=3)
        store.fail(dead.id, "w1", "template error", at(3))
        claim(store, "w-crashed", t=4)
    with open_store(url) as store:
        assert peek.depth(store) == {"pending": 1, "running": 1, "dead": 1}
        [d] = store.dead_jobs()
        assert d.incident_key == A and d.last_error == "template error"
        assert claim(store, "w2", t=5).incident_key == C
        assert claim(store, "w3", t=34).incident_key == B, "crashed worker's job is re-claimed"
        delivery = peek.get_delivery(store, "b")
        assert delivery is not None and delivery.payload == b'{"id": "b"}'


WRITER = """
import os, sys
from datetime import UTC, datetime, timedelta
from bot.store import open_store

url, durability, mode = sys.argv[1:4]
store = open_store(url, durability=durability)
t0 = datetime(2026, 11, 28, tzinfo=UTC)
for i in range(100_000):
    store.record_delivery(f"d{i}", f"9#{i % 5}", "Issue Hook", t0 + timedelta(milliseconds=i), b"x" * 500)
    print(i, flush=True)
    if mode == "exit" and i == 299:
        os._exit(0)
"""


@pytest.mark.parametrize("durability", ["normal", "full"])
@pytest.mark.parametrize("mode", ["kill", "exit"])
def test_every_acknowledged_delivery_survives_a_crashed_writer(
    backend: Backend, url: str, durability: str, mode: str
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo_root(), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, durability, mode], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    acknowledged: list[int] = []
    try:
        for line in proc.stdout:
            acknowledged.append(int(line))
            if mode == "kill" and len(acknowledged) == 300:
                os.kill(proc.pid, signal.SIGKILL)
                break
        acknowledged.extend(int(line) for line in proc.stdout)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    backend.settle(url)
    assert len(acknowledged) >= 300
    with open_store(url) as store:
        missing = [i for i in acknowledged if peek.get_delivery(store, f"d{i}") is None]
        assert missing == []
        stats = store.stats()
        jobs = peek.jobs(store)
        assert len(jobs) == 5 and all(j.state == JobState.PENDING for j in jobs)
        assert sum(j.deliveries for j in jobs) == stats.deliveries, "delivery rows and job counts move together"
        assert stats.deliveries in (len(acknowledged), len(acknowledged) + 1)


def test_database_from_newer_version_is_refused(backend: Backend, url: str) -> None:
    with open_store(url) as store:
        record(store, "d1")
    with open_store(url) as store:
        version = store.stats().schema_version
    backend.set_schema_version(url, version + 1)
    with pytest.raises(SchemaVersionError) as refused:
        open_store(url)
    message = str(refused.value)
    assert "\n" not in message and str(version + 1) in message and "newer" in message


# -- concurrency ------------------------------------------------------------------------------------------


def _claim_until_empty(store: DeliveryStore, worker: str, start: threading.Barrier | None = None) -> list[int]:
    if start is not None:
        start.wait()
    claimed = []
    while (job := store.claim(worker, T0, timedelta(hours=1))) is not None:
        claimed.append(job.id)
        store.complete(job.id, worker)
    return claimed


def _enqueue_many(store: DeliveryStore, n: int) -> set[int]:
    return {store.enqueue(f"1#{i}", T0, "sweep") for i in range(n)}


def test_four_threads_claim_each_job_exactly_once(store: DeliveryStore) -> None:
    expected = _enqueue_many(store, 200)
    start = threading.Barrier(4)
    results: dict[str, list[int]] = {}

    def work(worker: str) -> None:
        results[worker] = _claim_until_empty(store, worker, start)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    counts = Counter(job_id for ids in results.values() for job_id in ids)
    assert set(counts) == expected and set(counts.values()) == {1}
    assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}


def _process_worker(url: str, worker: str, start: Any, out: Any) -> None:
    with open_store(url) as store:
        out.put(_claim_until_empty(store, worker, start))


def test_two_processes_claim_each_job_exactly_once(store: DeliveryStore, url: str) -> None:
    expected = _enqueue_many(store, 200)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(url, f"p{i}", start, out)) for i in range(2)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    counts = Counter(job_id for ids in claimed for job_id in ids)
    assert set(counts) == expected and set(counts.values()) == {1}


def test_concurrent_intake_and_workers_never_run_an_incident_twice(store: DeliveryStore) -> None:
    keys = [f"5#{i}" for i in range(8)]
    in_progress: set[str] = set()
    lock = threading.Lock()
    violations: list[str] = []
    stop = threading.Event()

    def receiver(r: int) -> None:
        for i in range(60):
            store.record_delivery(f"r{r}-{i}", keys[(i + r) % len(keys)], "Note Hook", T0, b"{}")

    def worker(w: str) -> None:
        while not stop.is_set():
            job = store.claim(w, T0, timedelta(hours=1))
            if job is None:
                stop.wait(0.002)
                continue
            with lock:
                if job.incident_key in in_progress:
                    violations.append(job.incident_key)
                in_progress.add(job.incident_key)
            peek.get_job(store, job.id)  # stands in for the reconcile, widening the window for overlaps
            with lock:
                in_progress.discard(job.incident_key)
            store.complete(job.id, w)

    receivers = [threading.Thread(target=receiver, args=(r,)) for r in range(3)]
    workers = [threading.Thread(target=worker, args=(f"w{w}",)) for w in range(3)]
    for t in receivers + workers:
        t.start()
    for t in receivers:
        t.join(timeout=30)
    stop.set()
    for t in workers:
        t.join(timeout=30)
    _claim_until_empty(store, "drain")
    assert violations == []
    jobs = peek.jobs(store)
    assert sum(j.deliveries for j in jobs) == 180
    assert {j.state for j in jobs} == {JobState.DONE}
    assert {j.incident_key for j in jobs} == set(keys)


# -- the factory ------------------------------------------------------------------------------------------


def test_open_store_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for unreachable in ("postgresql://bot:s3cret@127.0.0.1:1/incident_bot", "postgres://bot:s3cret@127.0.0.1:1/x"):
        with pytest.raises(StoreError) as refused:
            open_store(unreachable)
        message = str(refused.value)
        assert "\n" not in message and "s3cret" not in message, "one line, and never the password"
        assert "127.0.0.1" in message or "pip install" in message, "where it failed, or what to install"
    for bad in ("mysql://db/x", "sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError):
            open_store(bad)
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///var/bot.db") as s:
        record(s, "d1")
    with open_store(tmp_path / "var" / "bot.db") as s:
        assert peek.get_delivery(s, "d1") is not None
    with open_store(f"sqlite:///{tmp_path}/var/bot.db") as s:
        assert peek.get_delivery(s, "d1") is not None
    assert (tmp_path / "var" / "bot.db").stat().st_mode & 0o077 == 0, "payloads are confidential"


# -- property: random interleavings keep the invariants ---------------------------------------------------

WORKERS = ("w1", "w2", "w3")
KEYS = (A, B, C)


def test_random_sequences_keep_the_invariants(backend: Backend, tmp_path: Path) -> None:
    class QueueMachine(RuleBasedStateMachine):
        """Model: a global step counter orders every change (record/enqueue) and every claim. A change for
        an incident is covered once a reconcile that was claimed after it completes as done."""

        def __init__(self) -> None:
            super().__init__()
            directory = Path(tempfile.mkdtemp(dir=tmp_path))
            self.store = open_store(backend.new_url(directory), durability="normal", max_attempts=3)
            self.now = T0
            self.step = 0
            self.recorded: dict[str, str | None] = {}
            self.changed: dict[str, int] = {}
            self.covered: dict[str, int] = {}
            self.holder: dict[int, str] = {}
            self.lease_until: dict[int, datetime] = {}
            self.belief: dict[str, tuple[int, str, int]] = {}
            self.requeued: dict[str, tuple[datetime, int]] = {}  # key -> requeue time, step of the requeue

        def tick_step(self) -> int:
            self.step += 1
            return self.step

        @rule(delivery=st.integers(0, 14), key=st.sampled_from((*KEYS, None)), priority=st.integers(0, 4))
        def record(self, delivery: int, key: str | None, priority: int) -> None:
            did = f"d{delivery}"
            result = self.store.record_delivery(did, key, "Issue Hook", self.now, b"{}", priority=priority)
            assert result.new == (did not in self.recorded)
            if result.new:
                self.recorded[did] = key
                if key is not None:
                    self.changed[key] = self.tick_step()
                    self.assert_queued(key)

        @rule(key=st.sampled_from(KEYS), priority=st.integers(0, 4))
        def enqueue(self, key: str, priority: int) -> None:
            self.store.enqueue(key, self.now, "sweep", priority=priority)
            self.changed[key] = self.tick_step()
            self.assert_queued(key)

        def assert_queued(self, key: str) -> None:
            """A change revives a dead job: it is never buried in a dead letter."""
            active = peek.active_job(self.store, key)
            assert active is not None and active.state in (JobState.PENDING, JobState.RUNNING)

        @rule(worker=st.sampled_from(WORKERS))
        def claim(self, worker: str) -> None:
            if worker in self.belief:
                return
            job = self.store.claim(worker, self.now, LEASE)
            # Anyone who lost a job must have let its lease expire.
            for job_id, holder in list(self.holder.items()):
                current = peek.get_job(self.store, job_id)
                assert current is not None
                if current.state != JobState.RUNNING or current.worker_id != holder:
                    assert self.lease_until[job_id] <= self.now
                    del self.holder[job_id]
            if job is None:
                return
            assert job.state == JobState.RUNNING and not job.dirty and not job.delayed
            assert 1 <= job.attempts <= self.store.max_attempts
            if job.incident_key in self.requeued:
                at, requeued = self.requeued.pop(job.incident_key)
                if self.changed[job.incident_key] < requeued:
                    assert self.now >= at, "a delayed job was claimed before its time with no change since"
            self.holder[job.id] = worker
            self.lease_until[job.id] = self.now + LEASE
            self.belief[worker] = (job.id, job.incident_key, self.tick_step())

        def act(self, worker: str, action: Callable[[int], JobState | None]) -> JobState | None:
            job_id, _key, _claimed = self.belief.pop(worker)
            holds = self.holder.get(job_id) == worker
            try:
                state = action(job_id)
            except LeaseLost:
                assert not holds
                return None
            assert holds
            del self.holder[job_id]
            return state

        @precondition(lambda self: self.belief)
        @rule(data=st.data())
        def complete(self, data: st.DataObject) -> None:
            worker = data.draw(st.sampled_from(sorted(self.belief)))
            _job_id, key, claimed = self.belief[worker]
            state = self.act(worker, lambda j: self.store.complete(j, worker, now=self.now))
            if state == JobState.DONE:
                assert self.changed[key] < claimed, "done although a change arrived during the run"
                self.covered[key] = claimed
            elif state == JobState.PENDING:
                assert self.changed[key] > claimed

        @precondition(lambda self: self.belief)
        @rule(data=st.data(), later=st.sampled_from((1, 31, 700)))
        def complete_with_requeue(self, data: st.DataObject, later: int) -> None:
            worker = data.draw(st.sampled_from(sorted(self.belief)))
            _job_id, key, claimed = self.belief[worker]
            at = self.now + timedelta(seconds=later)
            state = self.act(worker, lambda j: self.store.complete(j, worker, now=self.now, requeue_at=at))
            if state is None:
                return
            assert state == JobState.PENDING
            active = peek.active_job(self.store, key)
            assert active is not None
            if self.changed[key] < claimed:  # converged: wait for the requeue time
                assert active.delayed and active.not_before == at
                self.covered[key] = claimed
                self.requeued[key] = (at, self.tick_step())
            else:  # a change arrived during the run: due now, whatever the requeue time
                assert not active.delayed and active.not_before <= self.now

        @precondition(lambda self: self.belief)
        @rule(data=st.data(), retry_now=st.booleans())
        def fail(self, data: st.DataObject, retry_now: bool) -> None:
            worker = data.draw(st.sampled_from(sorted(self.belief)))
            retry_in = timedelta(0) if retry_now else None
            self.act(worker, lambda j: self.store.fail(j, worker, "boom", self.now, retry_in=retry_in))

        @precondition(lambda self: self.belief)
        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            worker = data.draw(st.sampled_from(sorted(self.belief)))
            self.act(worker, lambda j: self.store.release(j, worker))

        @precondition(lambda self: self.belief)
        @rule(data=st.data())
        def extend(self, data: st.DataObject) -> None:
            worker = data.draw(st.sampled_from(sorted(self.belief)))
            job_id = self.belief[worker][0]
            holds = self.holder.get(job_id) == worker
            try:
                self.store.extend_lease(job_id, worker, self.now, LEASE)
            except LeaseLost:
                assert not holds
                del self.belief[worker]
                return
            assert holds
            self.lease_until[job_id] = self.now + LEASE

        @precondition(lambda self: self.belief)
        @rule(worker=st.sampled_from(WORKERS))
        def lease_expires_and_another_claims(self, worker: str) -> None:
            self.now += LEASE
            self.claim(worker)

        @rule(seconds=st.sampled_from((1, 11, 31, 700)))
        def tick(self, seconds: int) -> None:
            self.now += timedelta(seconds=seconds)

        @rule()
        def retry_dead(self) -> None:
            dead = len(self.store.dead_jobs())
            assert self.store.retry_dead() == dead

        @invariant()
        def one_active_job_per_incident(self) -> None:
            active = Counter(j.incident_key for j in peek.jobs(self.store) if j.state != JobState.DONE)
            assert all(n == 1 for n in active.values()), active

        @invariant()
        def no_change_is_lost(self) -> None:
            for key, changed in self.changed.items():
                if changed > self.covered.get(key, 0):
                    assert peek.active_job(self.store, key) is not None, key

        @invariant()
        def every_delivery_is_kept_and_counted_once(self) -> None:
            jobs = peek.jobs(self.store)
            assert sum(j.deliveries for j in jobs) == sum(1 for k in self.recorded.values() if k is not None)
            assert self.store.stats().deliveries == len(self.recorded)

        def teardown(self) -> None:
            try:
                self.now += timedelta(days=1)
                for _ in range(200):
                    job = self.store.claim("drain", self.now, LEASE)
                    if job is None:
                        if peek.depth(self.store)["pending"] == 0:
                            break
                        self.now += timedelta(hours=1)  # revived by a change, waiting out its back-off
                        continue
                    claimed = self.tick_step()
                    assert self.store.complete(job.id, "drain") == JobState.DONE
                    self.covered[job.incident_key] = claimed
                for did in self.recorded:
                    assert peek.get_delivery(self.store, did) is not None
                for key, changed in self.changed.items():
                    active = peek.active_job(self.store, key)
                    if active is None:
                        assert changed <= self.covered.get(key, 0), f"{key}: change never reconciled"
                    else:
                        assert active.state == JobState.DEAD, f"{key}: {active.state} after draining"
                assert peek.depth(self.store)["pending"] == 0 and peek.depth(self.store)["running"] == 0
            finally:
                self.store.close()

    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=examples(150),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_upgrade_from_schema_1_keeps_queued_work_and_dead_letters(tmp_path):
    """An upgrade of the bot never loses queued work: a version-1 database opened by this code."""
    import bot.store.sqlite as sqlite_store
    from bot.store import open_store

    path = str(tmp_path / "old.sqlite3")
    us = 1_764_493_200_000_000  # 2025-11-30 09:00 UTC in the store's microseconds
    with sqlite_as_written_by(Path(path), 1) as conn:
        conn.execute(
            "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, last_error, reason,"
            " created_at, updated_at) VALUES ('42#1', 'dead', 8, 1, ?, 'boom', 'Issue Hook', ?, ?),"
            " ('42#2', 'pending', 0, 1, ?, NULL, 'Issue Hook', ?, ?)",
            (us, us, us, us, us, us),
        )
        conn.execute(
            "INSERT INTO deliveries (delivery_id, incident_key, event, received_at, payload, job_id)"
            " VALUES ('d2', '42#2', 'Issue Hook', ?, x'7b7d', 2)",
            (us,),
        )
    with open_store(path) as new:
        assert new.stats().schema_version == len(sqlite_store.MIGRATIONS)
        assert [(j.incident_key, j.last_error) for j in new.dead_jobs()] == [("42#1", "boom")]
        assert peek.depth(new)["pending"] == 1
        assert peek.get_delivery(new, "d2").payload == b"{}"
        now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        job = new.claim("w", now, timedelta(minutes=1))
        assert job.incident_key == "42#2" and job.event_uuid is None
        new.mark_incident("42#2", now, None)
        assert set(new.incident_marks()) == {"42#2"}


def test_a_job_keeps_the_event_uuid_of_its_latest_delivery(store):
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    store.record_delivery("d1", "42#1", "Issue Hook", now, b"{}", event_uuid="u-1")
    store.enqueue("42#1", now, "sweep: due")  # work without a delivery keeps the UUID
    assert peek.active_job(store, "42#1").event_uuid == "u-1"
    store.record_delivery("d2", "42#1", "Note Hook", now, b"{}", event_uuid="u-2")
    assert peek.active_job(store, "42#1").event_uuid == "u-2"
    store.record_delivery("d3", "42#1", "Note Hook", now, b"{}")
    assert peek.active_job(store, "42#1").event_uuid == "u-2"


# -- delayed jobs: a reconcile's requeue time ------------------------------------------------------------


def test_completing_with_a_requeue_time_keeps_the_job_until_then_across_a_restart(url: str) -> None:
    with open_store(url) as store:
        record(store, "d1")
        job = claim(store)
        assert store.complete(job.id, "w1", now=at(1), requeue_at=at(300)) == JobState.PENDING
        assert store.claim("w1", at(299), LEASE) is None, "a delayed job is not claimed before its time"
        assert peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}, "waiting for a time is not a backlog"
        stats = store.stats()
        assert (stats.delayed, stats.oldest_pending) == (1, None)
    with open_store(url) as reopened:  # a restart (or another replica) finds the due time in the store
        again = claim(reopened, "w2", t=300)
        assert again.id == job.id and again.attempts == 1 and not again.delayed
        assert reopened.complete(again.id, "w2") == JobState.DONE


def test_a_delivery_makes_a_delayed_job_due_at_once(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store)
    store.complete(job.id, "w1", now=at(1), requeue_at=at(300))
    assert record(store, "d2", t=10).job_id == job.id, "still one job per incident"
    woken = claim(store, "w2", t=10)
    assert woken.id == job.id and woken.deliveries == 2
    store.complete(woken.id, "w2", now=at(11), requeue_at=at(300))
    store.enqueue(A, at(20), "sweep: updated since last seen")
    assert claim(store, "w3", t=20).id == job.id, "work without a delivery wakes it too"


def test_a_delivery_never_postpones_a_delayed_job_that_is_already_due(store: DeliveryStore) -> None:
    record(store, "d1")
    store.complete(claim(store).id, "w1", now=at(1), requeue_at=at(5))
    record(store, "d2", t=60)
    assert claim(store, t=5).not_before == at(5)


def test_a_requeue_never_postpones_work_that_arrived_during_the_run(store: DeliveryStore) -> None:
    record(store, "d1")
    job = claim(store)
    record(store, "d2", t=2)
    assert store.complete(job.id, "w1", now=at(3), requeue_at=at(300)) == JobState.PENDING
    assert claim(store, "w2", t=3).not_before == at(2), "the change is due at once, not at the requeue time"
    record(store, "d3", t=50)
    store.complete(job.id, "w2", now=at(60), requeue_at=at(40))
    assert peek.get_job(store, job.id).not_before == at(40), "the earlier of the two"


def test_a_failed_run_of_a_delayed_job_backs_off_and_a_delivery_does_not_cut_that_short(store: DeliveryStore) -> None:
    record(store, "d1")
    store.complete(claim(store).id, "w1", now=at(1), requeue_at=at(100))
    job = claim(store, t=100)
    assert store.fail(job.id, "w1", "GitLab 503", at(101), retry_in=timedelta(seconds=60)) == JobState.PENDING
    record(store, "d2", t=102)
    assert store.claim("w1", at(150), LEASE) is None and peek.depth(store)["pending"] == 1
    assert claim(store, t=161).id == job.id


def test_upgrade_to_schema_4_gives_incidents_the_sweep_knew_to_be_due_a_delayed_job(tmp_path: Path) -> None:
    """Reminders do not wait for the sweep after an upgrade: the due times the sweep remembered are queued."""
    path = str(tmp_path / "v3.sqlite3")
    us = 1_764_493_200_000_000  # 2025-11-30 09:00 UTC in the store's microseconds
    due = datetime(2025, 11, 30, 10, 0, tzinfo=UTC)
    with sqlite_as_written_by(Path(path), 3) as conn:
        conn.execute(
            "INSERT INTO incident_marks VALUES ('42#1', ?, ?), ('42#2', ?, NULL), ('42#3', ?, ?)",
            (us, us + 3_600_000_000, us, us, us + 3_600_000_000),
        )
        conn.execute(
            "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, reason, created_at,"
            " updated_at) VALUES ('42#3', 'pending', 0, 1, ?, 'Issue Hook', ?, ?)",
            (us, us, us),
        )
    with open_store(path) as new:
        assert new.stats().delayed == 1
        assert new.claim("w", due - timedelta(seconds=1), LEASE).incident_key == "42#3"
        job = new.claim("w", due, LEASE)
        assert job is not None and job.incident_key == "42#1"
        assert sorted(j.incident_key for j in peek.jobs(new)) == ["42#1", "42#3"], "42#2 had nothing timed"


# -- schema upgrades and PostgreSQL specifics -------------------------------------------------------------


def test_upgrade_creates_then_reports_an_up_to_date_schema_and_refuses_a_newer_one(backend: Backend, url: str) -> None:
    before, after = upgrade(url)
    assert before == 0 and after >= 2
    assert upgrade(url) == (after, after)
    with open_store(url) as store:
        assert store.stats().schema_version == after
    backend.set_schema_version(url, after + 1)
    with pytest.raises(SchemaVersionError, match="newer"):
        upgrade(url)


def test_replicas_starting_together_migrate_once(url: str) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            with open_store(url) as store:
                store.ping()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [], "a migration applied twice fails on tables that already exist"
    before, after = upgrade(url)
    assert before == after >= 2


def test_postgres_upgrade_from_schema_1_keeps_queued_work_and_dead_letters(
    postgres_database: PostgresTestDatabase,
) -> None:
    """An upgrade of the bot never loses queued work: a version-1 PostgreSQL database opened by this code."""
    import psycopg

    import bot.store.postgres as pg_store

    url = postgres_database.new_url()
    then = datetime(2025, 11, 30, 9, 0, tzinfo=UTC)
    with psycopg.connect(url) as conn:  # what version 1 of the store wrote
        conn.execute(pg_store.SCHEMA_VERSION_TABLE)
        for statement in pg_store.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute(
            "INSERT INTO jobs (incident_key, state, attempts, deliveries, not_before, last_error, reason,"
            " created_at, updated_at) VALUES ('42#1', 'dead', 8, 1, %(t)s, 'boom', 'Issue Hook', %(t)s, %(t)s),"
            " ('42#2', 'pending', 0, 1, %(t)s, NULL, 'Issue Hook', %(t)s, %(t)s)",
            {"t": then},
        )
        conn.execute(
            "INSERT INTO deliveries (delivery_id, incident_key, event, received_at, payload, job_id)"
            " SELECT 'd2', '42#2', 'Issue Hook', %s, '\\x7b7d'::bytea, id FROM jobs WHERE incident_key = '42#2'",
            (then,),
        )
    assert upgrade(url) == (1, len(pg_store.MIGRATIONS))
    with open_store(url) as new:
        assert new.stats().schema_version == len(pg_store.MIGRATIONS)
        assert [(j.incident_key, j.last_error) for j in new.dead_jobs()] == [("42#1", "boom")]
        assert peek.depth(new)["pending"] == 1
        delivery = peek.get_delivery(new, "d2")
        assert delivery is not None and delivery.payload == b"{}" and delivery.received_at == then
        now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        job = new.claim("w", now, timedelta(minutes=1))
        assert job is not None and job.incident_key == "42#2" and job.event_uuid is None
        assert new.retry_dead(now=now) == 1 and new.claim("w2", now, LEASE) is not None, "dead letter still works"
        new.mark_incident("42#2", now, None)
        assert set(new.incident_marks()) == {"42#2"}


def test_postgres_claim_skips_a_job_locked_by_another_transaction(postgres_database: PostgresTestDatabase) -> None:
    """FOR UPDATE SKIP LOCKED: a claimer never waits behind another's row lock, it takes the next job."""
    import psycopg

    url = postgres_database.new_url()
    with open_store(url) as store, psycopg.connect(url) as other:
        first = store.enqueue(A, at(0), "sweep")
        second = store.enqueue(B, at(1), "sweep")
        other.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (first,))  # transaction left open
        job = claim(store, "w1", t=2)
        assert job.id == second
        other.rollback()
        assert claim(store, "w2", t=2).id == first


def test_missing_postgres_skips_outside_ci_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pg import postgres_unavailable

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not installed: apt-get install postgresql"):
        postgres_unavailable(INSTALL_HINT)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI never skips"):
        postgres_unavailable("PostgreSQL not installed")


def test_postgres_store_replaces_connections_the_server_ended(postgres_database: PostgresTestDatabase) -> None:
    """A database restart or fail-over ends every session; the next calls reconnect instead of failing."""
    url = postgres_database.new_url()
    with open_store(url) as store:
        record(store, "d1")
        started = threading.Barrier(3)

        def busy() -> None:  # leaves several idle connections behind
            started.wait()
            peek.get_delivery(store, "d1")

        threads = [threading.Thread(target=busy) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert postgres_database.end_sessions(url) >= 1
        assert record(store, "d2", t=1).new
        assert peek.get_delivery(store, "d1") is not None and peek.depth(store)["pending"] == 1


def test_postgres_store_fails_fast_while_the_database_is_away(postgres_database: PostgresTestDatabase) -> None:
    """A receiver spools deliveries while PostgreSQL is down, so each call must fail at once, not hang."""
    from tests.pg import PostgresNotInstalled, PostgresServer

    try:
        server = PostgresServer.start()
    except PostgresNotInstalled:
        pytest.skip("needs local PostgreSQL binaries to start and stop a server of its own")
    try:
        store = open_store(server.create_database("away"))
        record(store, "d1")
    finally:
        server.stop()
    with pytest.raises(StoreError) as refused:
        record(store, "d2")
    assert "\n" not in str(refused.value) and "connect" in str(refused.value)
    with pytest.raises(StoreError, match="unreachable"):
        store.claim("w1", at(0), LEASE)  # within a second of a failed connect: not even tried
    store.close()
