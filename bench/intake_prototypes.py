"""Prototypes of store-side changes for webhook intake, measured by ``bench/bench_intake.py``; the bot
does not use them. Both wrap a ``SQLiteStore`` and change only how ``record_delivery`` commits.

``HostLockStore``: writers of one host queue on a blocking file lock
--------------------------------------------------------------------
SQLite makes a writer that finds the write lock taken sleep and retry (its busy handler sleeps 1, 2,
5, 10 … ms), while an intake transaction holds the lock for about 0.1 ms. With two or more gunicorn
workers a request that collides sleeps ten times longer than the transaction it waited for, and the
CPU stays idle meanwhile. Taking an exclusive ``flock`` on a side file around the transaction, and
polling for it every 0.1 ms, makes a waiter start about as soon as the holder is done; the wait stays
bounded by ``busy_timeout``. The store would take
it in ``_write()`` (one lock file per database, opened per process after the fork: ``flock``
belongs to the open file description, so an inherited descriptor would be shared with the parent),
with a thread lock in front for threads of one process; processes that do not take it (another
version of the bot) stay correct, because SQLite's own lock still guards the data.

``GroupCommitStore``: group commit
----------------------------------
Several requests served by the threads of one process (gunicorn ``gthread``) share one SQLite
transaction, so with ``durability="full"`` they share one fsync. Leader/follower, as in the group
commit of PostgreSQL or InnoDB: a request appends its delivery to the process's queue; if no commit
is in flight it becomes the leader, takes everything queued, writes it in one ``BEGIN IMMEDIATE`` …
``COMMIT`` and wakes the others. Requests that arrive while that commit runs queue up and go in the
next one. Nobody waits for a timer: a request alone commits at once, as today.

Every request still gets its answer only after the transaction holding its delivery committed;
if that transaction fails, every request in it gets the error (nothing of it was written), so each
answers 503 as it would alone. What the store itself would need, in place of the private helpers
used here, is one method::

    def record_deliveries(self, items: Sequence[DeliveryRecord]) -> list[RecordResult]:
        '''record_delivery for each item, in order, in one transaction: all or none.'''

with exactly ``record_delivery``'s semantics per item (dedup also within the batch: the second of
two equal ``delivery_id`` s answers ``new=False``), a default in ``DeliveryStore`` that loops over
``record_delivery`` (correct, no gain) and an override in each backend (SQLite: one ``_write()``;
PostgreSQL: one transaction, one round trip per statement or ``executemany``).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.store import RecordResult, SQLiteStore, StoreError
from bot.store.sqlite import _us  # prototype only: the real method lives inside the store
from tests import store_inspect as peek

MAX_BATCH = 64
POLL = 0.0001


class HostLockStore:
    """A ``DeliveryStore`` stand-in whose ``record_delivery`` first queues on a host-wide file lock."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.lock_path = f"{inner.path}.intake-lock"
        self._thread_lock = threading.Lock()
        self._fd = -1
        self._pid = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def _host_lock(self) -> Iterator[None]:
        """Wait for the lock in 0.1 ms steps (not SQLite's 1, 2, 5 … ms) up to the store's
        ``busy_timeout``, so a stuck holder still turns into a ``StoreError`` (503), never a hang."""
        if not self._thread_lock.acquire(timeout=self.inner.busy_timeout):
            raise StoreError(f"SQLite store {self.inner.path}: intake lock busy")
        try:
            if self._pid != os.getpid():  # never use a descriptor inherited through fork()
                self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
            deadline = time.monotonic() + self.inner.busy_timeout
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(f"SQLite store {self.inner.path}: intake lock busy") from None
                    time.sleep(POLL)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def record_delivery(self, *args: Any, **kwargs: Any) -> RecordResult:
        with self._host_lock():
            return self.inner.record_delivery(*args, **kwargs)


class CheckpointStore:
    """A ``DeliveryStore`` stand-in whose intake connection checkpoints the WAL less often
    (``PRAGMA wal_autocheckpoint``, pages; SQLite's default is 1000, about 4 MB)."""

    def __init__(self, inner: SQLiteStore, pages: int) -> None:
        self.inner = inner
        self.pages = pages
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def record_delivery(self, *args: Any, **kwargs: Any) -> RecordResult:
        if getattr(self._local, "pid", 0) != os.getpid():
            self.inner._conn().execute(f"PRAGMA wal_autocheckpoint = {int(self.pages)}")
            self._local.pid = os.getpid()
        return self.inner.record_delivery(*args, **kwargs)


@dataclass
class _Pending:
    args: tuple[str, str | None, str, datetime, bytes, str | None]
    done: bool = False
    result: RecordResult | None = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    commits: int = 0
    deliveries: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class GroupCommitStore:
    """A ``DeliveryStore`` stand-in whose ``record_delivery`` commits concurrent calls together."""

    def __init__(self, inner: SQLiteStore, max_batch: int = MAX_BATCH) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self._mutex = threading.Lock()
        self._wake = threading.Condition(self._mutex)
        self._queue: list[_Pending] = []
        self._leader = False
        self.stats = BatchStats()

    def __getattr__(self, name: str) -> Any:  # ping, stats, get_delivery, ...
        return getattr(self.inner, name)

    def record_delivery(
        self,
        delivery_id: str,
        incident_key: str | None,
        event: str,
        received_at: datetime,
        payload: bytes,
        event_uuid: str | None = None,
    ) -> RecordResult:
        if not delivery_id:
            raise ValueError("delivery_id must not be empty")
        mine = _Pending((delivery_id, incident_key, event, received_at, payload, event_uuid))
        with self._mutex:
            self._queue.append(mine)
            while not mine.done and self._leader:
                self._wake.wait()
            if not mine.done:
                self._leader = True
        if not mine.done:
            self._lead()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _lead(self) -> None:
        """Commit batches until the queue is empty; then hand leadership back."""
        try:
            while True:
                with self._mutex:
                    batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                    if not batch:
                        return
                results: list[RecordResult] = []
                error: BaseException | None = None
                try:
                    results = self._commit(batch)
                except BaseException as exc:  # every request of the batch answers 503
                    error = exc
                with self._mutex:
                    for i, item in enumerate(batch):
                        item.error = error
                        item.result = results[i] if error is None else None
                        item.done = True
                    self.stats.commits += 1
                    self.stats.deliveries += len(batch)
                    self.stats.largest = max(self.stats.largest, len(batch))
                    self.stats.sizes[len(batch)] = self.stats.sizes.get(len(batch), 0) + 1
                    self._wake.notify_all()
        finally:
            with self._mutex:
                self._leader = False
                self._wake.notify_all()

    def _commit(self, batch: list[_Pending]) -> list[RecordResult]:
        """``record_delivery`` for each item, in one transaction (what ``record_deliveries`` would do)."""
        store = self.inner
        results: list[RecordResult] = []
        with store._write() as conn:
            for item in batch:
                delivery_id, incident_key, event, received_at, payload, event_uuid = item.args
                now = _us(received_at, "received_at")
                seen = conn.execute("SELECT job_id FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
                if seen is not None:
                    results.append(RecordResult(new=False, job_id=seen[0]))
                    continue
                job_id = None
                if incident_key is not None:
                    job_id = store._upsert_job(
                        conn, incident_key, now, event, delivery=True, revive_dead=True, event_uuid=event_uuid
                    )
                conn.execute(
                    "INSERT INTO deliveries (delivery_id, incident_key, event, received_at, payload, job_id,"
                    " event_uuid) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (delivery_id, incident_key, event, now, bytes(payload), job_id, event_uuid),
                )
                results.append(RecordResult(new=True, job_id=job_id))
        return results


def self_test() -> None:
    """Threads hammer one store through the wrapper; every call's row is there, dedup holds."""
    import tempfile
    from datetime import UTC
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        inner = SQLiteStore(Path(tmp) / "g.sqlite3", durability="full")
        store = GroupCommitStore(inner)
        now = datetime.now(UTC)
        answers: dict[str, bool] = {}
        lock = threading.Lock()

        def hammer(t: int) -> None:
            for i in range(200):
                did = f"d-{(t * 200 + i) % 1000}"  # every id twice over the 10 threads
                result = store.record_delivery(did, f"42#{i % 7}", "Issue Hook", now, b"{}")
                with lock:
                    if result.new:
                        assert did not in answers, f"{did} recorded twice"
                        answers[did] = True

        threads = [threading.Thread(target=hammer, args=(t,)) for t in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 1000, len(answers)
        assert all(peek.get_delivery(inner, d) is not None for d in answers)
        assert inner.stats().deliveries == 1000
        print(f"ok: {store.stats.deliveries} calls in {store.stats.commits} commits, largest {store.stats.largest}")

        def refuse() -> Any:
            raise StoreError("disk full")

        inner._write = refuse  # type: ignore[method-assign]
        broken = GroupCommitStore(inner)
        try:
            broken.record_delivery("x", None, "Issue Hook", now, b"{}")
        except StoreError:
            pass
        else:
            raise AssertionError("a failed commit must raise")


def _hammer_with_host_lock(db: str, prefix: str) -> None:
    from datetime import UTC

    store = HostLockStore(SQLiteStore(db, durability="normal", busy_timeout=30.0))
    now = datetime.now(UTC)

    def run(t: int) -> None:
        for i in range(150):
            assert store.record_delivery(f"{prefix}-{t}-{i}", f"42#{i % 5}", "Issue Hook", now, b"{}").new

    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def self_test_host_lock() -> None:
    """Processes forked after the wrapper exists, each with threads, through one HostLockStore each."""
    import multiprocessing
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "h.sqlite3")
        SQLiteStore(db).close()
        procs = [
            multiprocessing.get_context("fork").Process(target=_hammer_with_host_lock, args=(db, f"p{n}"))
            for n in range(3)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            assert p.exitcode == 0, p.exitcode
        store = SQLiteStore(db)
        assert store.stats().deliveries == 3 * 3 * 150, store.stats().deliveries
        store.close()
        print("ok: host lock, 3 processes x 3 threads x 150 deliveries, all recorded")


if __name__ == "__main__":
    self_test()
    self_test_host_lock()
