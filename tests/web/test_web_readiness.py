"""/readyz is ready only while a reconcile worker is alive and claiming (the heartbeat of ``serve``'s worker)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from websupport import SECRET, FakeClock, FakeReconciler

from bot import heartbeat
from bot.config import Config
from bot.metrics import Metrics
from bot.store import DeliveryStore, StoreError
from bot.web.app import WebSettings, create_app
from bot.worker import WorkerPool


def app_watching(path: Path, store: DeliveryStore, config: Config, clock: FakeClock) -> Any:
    settings = WebSettings(secret=SECRET)
    app = create_app(settings, store=store, config=config, metrics=Metrics(), clock=clock, worker_heartbeat=path)
    return app.test_client()


def test_readyz_is_not_ready_until_the_worker_claims_and_again_once_it_falls_silent(
    tmp_path: Path, store: DeliveryStore, default_config: Config, clock: FakeClock
) -> None:
    beat = tmp_path / "heartbeat"
    client = app_watching(beat, store, default_config, clock)

    # The worker has not started (or crash-loops on a bad setting): not ready, and outsiders learn no more.
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.get_json() == {"status": "unavailable"}
    insider = client.get("/readyz", headers={"X-Gitlab-Token": SECRET})
    assert insider.status_code == 503
    assert "has not started claiming" in insider.get_json()["reason"]

    heartbeat.beat(beat, clock())
    assert client.get("/readyz").get_json() == {"status": "ready"}
    clock.advance(10)  # a few ticks late on a busy machine: still ready
    assert client.get("/readyz").status_code == 200

    clock.advance(50)  # a minute without a claim loop: the worker is gone or stuck
    silent = client.get("/readyz", headers={"X-Gitlab-Token": SECRET})
    assert silent.status_code == 503
    assert "last claimed 1m ago" in silent.get_json()["reason"]
    assert client.get("/readyz").get_json() == {"status": "unavailable"}


class OneClaimStore:
    """The store, but its first claim fails (or not), and the second waits until the test lets it go."""

    def __init__(self, store: DeliveryStore, *, fail: bool) -> None:
        self.store, self.fail = store, fail
        self.calls = 0
        self.looped, self.release = threading.Event(), threading.Event()

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            if self.fail:
                raise StoreError("database is locked")
            return self.store.claim(*args, **kwargs)
        self.looped.set()
        self.release.wait(10)
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.parametrize("fail", [False, True], ids=["claiming", "store-refuses-claims"])
def test_the_worker_pool_beats_only_while_its_claims_reach_the_store(
    tmp_path: Path, store: DeliveryStore, clock: FakeClock, fail: bool
) -> None:
    beat = tmp_path / "heartbeat"
    shaky = OneClaimStore(store, fail=fail)
    pool = WorkerPool(shaky, FakeReconciler(), threads=1, clock=clock, heartbeat=beat)  # type: ignore[arg-type]
    stop = threading.Event()
    pool.start(stop)
    try:
        assert shaky.looped.wait(10), "the worker never came back for a second claim"
        pool.beat()
    finally:
        stop.set()
        shaky.release.set()
        assert pool.join(10)
    if fail:
        assert heartbeat.last_beat(beat) is None
    else:
        assert heartbeat.last_beat(beat) == clock()
        assert heartbeat.stale(beat, clock() + timedelta(seconds=5)) is None
    before = heartbeat.last_beat(beat)
    clock.advance(1)
    pool.beat()  # the thread has stopped: no beat, however the claims went
    assert heartbeat.last_beat(beat) == before
