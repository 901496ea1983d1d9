"""Exactly once across replicas: several worker processes, two receivers, one shared store.

Three ``incident-bot worker`` processes share the store; 200 incidents arrive through two receivers,
every delivery twice and in shuffled order; 20 % of GitLab API calls fail; one worker is killed with
SIGKILL while jobs run. Every incident converges with no duplicate child, link or comment.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands.world import PROJECT, World, world
from bot.core.events import parse_event
from bot.core.routing import route
from bot.simgitlab import SimulatedGitLab
from bot.simgitlab.hooks import issue_hook
from bot.store import open_store
from bot.web.app import WebSettings, create_app
from tests import store_inspect as peek

SECRET = "replica-secret"
CHANNELS = ("severity::1", "comms-email", "comms-faq")


@pytest.fixture
def sim() -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab(seed=3) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store the replicas share: a SQLite file (one host) or PostgreSQL (several hosts)."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.sqlite3")
    return request.getfixturevalue("postgres_database").new_url()


def start_worker(sim: SimulatedGitLab, db: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_"))}
    env |= {
        "GITLAB_URL": sim.url,
        "GITLAB_TOKEN": sim.token,
        "INCIDENT_BOT_DB": db,
        "INCIDENT_BOT_CONFIG": str(config),
        "INCIDENT_BOT_SCOPE": PROJECT,
        "INCIDENT_BOT_LEASE_SECONDS": "3",
        "INCIDENT_BOT_RETRY_SECONDS": "0.2",
        "INCIDENT_BOT_SWEEP_SECONDS": "off",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--threads", "6", "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def deliveries(w: World, iids: list[int]) -> list[tuple[str, dict]]:
    out = []
    for iid in iids:
        payload = issue_hook(w.sim.state, w.project, iid, action="open")
        out.append((f"open-{iid}", payload))
    return out


def test_three_workers_two_receivers_faults_and_a_kill_converge_exactly_once(
    sim, default_config, fast_config, shared_db, tmp_path
):
    db = shared_db
    w = world(sim, default_config)
    iids = [w.incident(*CHANNELS, title=f"incident {n}") for n in range(200)]
    store = open_store(db)
    receivers = [
        create_app(WebSettings(secret=SECRET), store=open_store(db), config=default_config).test_client()
        for _ in range(2)
    ]
    log = tmp_path / "workers.log"
    workers = [start_worker(sim, db, fast_config, log) for _ in range(3)]
    try:
        # Faults start once every worker has checked its token: the test is about faults while reconciling.
        deadline = time.monotonic() + 30
        while sim.count("GET", r"/user$") < len(workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(p.poll() is None for p in workers), log.read_text()[-2000:]
        sim.random_faults(rate=0.2, kinds=["429", "500", "502", "timeout", "reset"], seed=9)
        sim.timeout_hold = 0.3
        sim.retry_after = 0
        todo = deliveries(w, iids) * 2  # every delivery twice, through either receiver, in any order
        random.Random(4).shuffle(todo)
        for n, (key, payload) in enumerate(todo):
            assert route(parse_event("Issue Hook", payload), default_config) is not None
            response = receivers[n % 2].post(
                "/webhook",
                data=json.dumps(payload),
                headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Issue Hook", "Idempotency-Key": key},
                content_type="application/json",
            )
            assert response.status_code in (200, 202), response.get_data(as_text=True)
            if n == len(todo) // 3:
                deadline = time.monotonic() + 30
                while peek.depth(store)["running"] == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.killpg(workers[0].pid, signal.SIGKILL)  # mid-run, jobs in its hands
                workers[0].wait(10)
        deadline = time.monotonic() + 150
        while peek.depth(store) != {"pending": 0, "running": 0, "dead": 0} and time.monotonic() < deadline:
            time.sleep(0.2)  # a job is done only when its reconcile converged
    finally:
        for p in workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in workers:
            try:
                p.wait(25)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        store.close()
    tail = log.read_text()[-2000:] if log.exists() else ""
    assert store_depth_is_empty(db), tail
    assert len(sim.fault_log) > 200, "faults were injected"
    expected = None
    for iid in iids:
        snap = w.snapshot(iid)
        snap["children"] = [(t.split(" for ")[0], *rest) for t, *rest in snap["children"]]
        expected = expected or snap
        assert snap == expected, f"incident #{iid}: {snap}\n{tail}"
    assert len(w.children()) == 2 * len(iids)
    assert expected["checklists"] == 1 and expected["bot_comments"] == 2 and expected["links"] == 2


def store_depth_is_empty(db: str) -> bool:
    with open_store(db) as store:
        return peek.depth(store) == {"pending": 0, "running": 0, "dead": 0}
