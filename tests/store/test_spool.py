"""The receiver's spool: deliveries the shared store cannot take are kept and moved over later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store import open_store
from bot.store.base import StoreError
from bot.store.spool import Spool, SpoolingStore, drain
from tests import store_inspect as peek

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


class Outage:
    """A shared store that can be switched off, as PostgreSQL is while it restarts."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False

    def record_delivery(self, *args, **kwargs):
        if self.down:
            raise StoreError("connection refused")
        return self.inner.record_delivery(*args, **kwargs)

    def ping(self):
        if self.down:
            raise StoreError("connection refused")


@pytest.fixture
def shared(tmp_path):
    store = open_store(tmp_path / "shared.sqlite3")
    yield Outage(store)
    store.close()


def receiver(shared, tmp_path) -> SpoolingStore:
    return SpoolingStore(lambda: shared, Spool(tmp_path / "spool.sqlite3"))


def test_deliveries_during_an_outage_are_spooled_and_moved_over_once(tmp_path, shared):
    intake = receiver(shared, tmp_path)
    assert intake.record_delivery("d0", "42#1", "Issue Hook", NOW, b"{}").job_id is not None
    shared.down = True
    for n in range(1, 6):
        result = intake.record_delivery(f"d{n}", f"42#{n}", "Issue Hook", NOW, b"{}", event_uuid="u")
        assert result.new and result.job_id is None  # spooled: no job yet
    assert intake.record_delivery("d3", "42#3", "Issue Hook", NOW, b"{}").new is False  # a resend
    assert "spooled" in (intake.degraded or "")
    intake.ping()  # ready, though degraded: the spool takes deliveries
    assert len(intake.spool) == 5
    assert drain(intake.spool, shared) == 0 and len(intake.spool) == 5, "nothing leaves while the store is away"
    shared.down = False
    assert drain(intake.spool, shared) == 5 and len(intake.spool) == 0
    assert peek.depth(shared.inner)["pending"] == 5  # d0 and d1 coalesced into one job for 42#1
    assert peek.active_job(shared.inner, "42#3").event_uuid == "u"
    assert drain(intake.spool, shared) == 0
    intake.ping()
    assert intake.degraded is None


def test_a_spool_survives_the_process(tmp_path, shared):
    shared.down = True
    receiver(shared, tmp_path).record_delivery("d1", "42#1", "Issue Hook", NOW, b"{}")
    shared.down = False
    assert drain(Spool(tmp_path / "spool.sqlite3"), shared) == 1


def test_a_delivery_already_in_the_store_is_not_duplicated_by_the_drain(tmp_path, shared):
    intake = receiver(shared, tmp_path)
    intake.record_delivery("d1", "42#1", "Issue Hook", NOW, b"{}")
    shared.down = True
    intake.record_delivery("d1", "42#1", "Issue Hook", NOW, b"{}")  # GitLab resent it
    shared.down = False
    drain(intake.spool, shared)
    assert peek.active_job(shared.inner, "42#1").deliveries == 1


def test_a_receiver_starts_while_the_database_is_away(tmp_path, shared):
    """The shared store is opened on first use, and again after each failure."""
    attempts = []

    def open_shared():
        attempts.append(1)
        if len(attempts) == 1:
            raise StoreError("connection refused")
        return shared

    intake = SpoolingStore(open_shared, Spool(tmp_path / "spool.sqlite3"))
    assert intake.record_delivery("d1", "42#1", "Issue Hook", NOW, b"{}").job_id is None  # spooled
    assert intake.record_delivery("d2", "42#2", "Issue Hook", NOW, b"{}").job_id is not None  # then reached
    assert len(attempts) == 2


def test_a_spooled_delivery_keeps_its_priority_when_it_is_moved_over(tmp_path, shared):
    """A new critical incident that arrived during the outage is still served before the sweep's backlog."""
    from bot.core.urgency import Priority

    intake = receiver(shared, tmp_path)
    shared.down = True
    intake.record_delivery("critical", "42#1", "Issue Hook", NOW, b"{}", priority=Priority.URGENT)
    shared.down = False
    shared.inner.enqueue("42#2", NOW - timedelta(minutes=1), "sweep", priority=Priority.BACKGROUND)
    assert drain(intake.spool, shared) == 1
    assert peek.active_job(shared.inner, "42#1").priority == Priority.URGENT
    assert shared.inner.claim("w", NOW, LEASE).incident_key == "42#1"


def test_a_spool_written_before_priorities_is_moved_over_as_normal_work(tmp_path, shared):
    import sqlite3

    from bot.core.urgency import Priority

    path = tmp_path / "old-spool.sqlite3"
    with sqlite3.connect(path) as conn:  # the spool's table before priorities
        conn.execute(
            "CREATE TABLE spool (delivery_id TEXT PRIMARY KEY, incident_key TEXT, event TEXT NOT NULL,"
            " received_at TEXT NOT NULL, payload BLOB NOT NULL, event_uuid TEXT)"
        )
        conn.execute("INSERT INTO spool VALUES ('d1', '42#1', 'Issue Hook', ?, x'7b7d', NULL)", (NOW.isoformat(),))
    conn.close()
    assert drain(Spool(path), shared) == 1
    assert peek.active_job(shared.inner, "42#1").priority == Priority.NORMAL
