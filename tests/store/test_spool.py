"""The receiver's spool: deliveries the shared store cannot take are kept and moved over later."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.store import open_store
from bot.store.base import StoreError
from bot.store.spool import Spool, drain, record_or_spool

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Outage:
    """A shared store that can be switched off, as PostgreSQL is while it restarts."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False

    def record_delivery(self, *args, **kwargs):
        if self.down:
            raise StoreError("connection refused")
        return self.inner.record_delivery(*args, **kwargs)


@pytest.fixture
def shared(tmp_path):
    store = open_store(tmp_path / "shared.sqlite3")
    yield Outage(store)
    store.close()


def test_deliveries_during_an_outage_are_spooled_and_moved_over_once(tmp_path, shared):
    spool = Spool(tmp_path / "spool.sqlite3")
    record_or_spool(shared, spool, "d0", "42#1", "Issue Hook", NOW, b"{}")
    shared.down = True
    for n in range(1, 6):
        result, spooled = record_or_spool(shared, spool, f"d{n}", f"42#{n}", "Issue Hook", NOW, b"{}", "u")
        assert spooled and result.new
    assert record_or_spool(shared, spool, "d3", "42#3", "Issue Hook", NOW, b"{}")[0].new is False  # a resend
    assert len(spool) == 5
    assert drain(spool, shared) == 0 and len(spool) == 5, "nothing leaves the spool while the store is away"
    shared.down = False
    assert drain(spool, shared) == 5 and len(spool) == 0
    assert shared.inner.depth()["pending"] == 5  # d0 and d1 coalesced into one job for 42#1
    assert shared.inner.active_job("42#3").event_uuid == "u"
    assert drain(spool, shared) == 0


def test_a_spool_survives_the_process(tmp_path, shared):
    shared.down = True
    record_or_spool(shared, Spool(tmp_path / "spool.sqlite3"), "d1", "42#1", "Issue Hook", NOW, b"{}")
    reopened = Spool(tmp_path / "spool.sqlite3")
    shared.down = False
    assert drain(reopened, shared) == 1


def test_a_delivery_already_in_the_store_is_not_duplicated_by_the_drain(tmp_path, shared):
    spool = Spool(tmp_path / "spool.sqlite3")
    record_or_spool(shared, spool, "d1", "42#1", "Issue Hook", NOW, b"{}")
    shared.down = True
    record_or_spool(shared, spool, "d1", "42#1", "Issue Hook", NOW, b"{}")  # GitLab resent it
    shared.down = False
    drain(spool, shared)
    assert shared.inner.active_job("42#1").deliveries == 1


def test_without_a_spool_an_outage_is_an_error(shared):
    shared.down = True
    with pytest.raises(StoreError):
        record_or_spool(shared, None, "d1", "42#1", "Issue Hook", NOW, b"{}")
