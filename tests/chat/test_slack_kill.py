"""A real ``kill -9`` of an ``incident-bot worker`` process right after Slack stored a post and before the
process heard back: the next worker finds the message by its key and posts nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.commands.world import PROJECT, world
from bot.settings import Settings
from bot.simgitlab import SimulatedGitLab
from bot.simslack import SimulatedSlack
from bot.store import open_store
from bot.wiring import slack
from tests import store_inspect as peek

TOKEN = "xoxb-3333-4444-killtesttoken"


@pytest.fixture
def sim() -> Iterator[SimulatedGitLab]:
    """The simulated GitLab on the wall clock (tests/chat/conftest.py's ``sim`` is the simulated Slack)."""
    with SimulatedGitLab() as server:
        yield server


@pytest.fixture
def slack_sim() -> Iterator[SimulatedSlack]:
    with SimulatedSlack(token=TOKEN, rate_limit=False) as server:
        yield server


def start_worker(sim: SimulatedGitLab, slack_url: str, db: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_", "SLACK_"))}
    env |= {
        "GITLAB_URL": sim.url,
        "GITLAB_TOKEN": sim.token,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack_url,
        "INCIDENT_BOT_DB": db,
        "INCIDENT_BOT_CONFIG": str(config),
        "INCIDENT_BOT_SCOPE": PROJECT,
        "INCIDENT_BOT_LEASE_SECONDS": "3",
        "INCIDENT_BOT_RETRY_SECONDS": "0.2",
        "INCIDENT_BOT_SWEEP_SECONDS": "off",
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot", "worker", "--threads", "2", "--log-level", "warning"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(25)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def test_a_worker_killed_between_a_post_and_its_bookkeeping_never_double_posts(
    sim, slack_sim, default_config, fast_config, tmp_path
) -> None:
    state = slack_sim.state
    for name in ("e-group", "security-department"):
        state.add_channel(name)
    state.add_user("sec-director", "sec-director@example.com")
    w = world(sim, default_config)
    iid = w.incident("severity::1", "data-breach")
    db, log = str(tmp_path / "bot.sqlite3"), tmp_path / "worker.log"
    killed = threading.Event()
    victim: list[subprocess.Popen[bytes]] = []
    handle = slack_sim.handle

    def kill_after_the_first_post(method: str, args: dict[str, Any], auth: str) -> Any:
        answer = handle(method, args, auth)
        if method == "chat.postMessage" and answer[0] == 200 and not killed.is_set():
            os.killpg(victim[0].pid, signal.SIGKILL)  # the post is stored; its answer never arrives
            killed.set()
        return answer

    slack_sim.handle = kill_after_the_first_post  # type: ignore[method-assign]
    with open_store(db) as store:
        store.enqueue(f"{w.project_id}#{iid}", datetime.now(UTC), "Issue Hook")
        victim.append(start_worker(sim, slack_sim.url, db, fast_config, log))
        try:
            assert killed.wait(60), log.read_text()[-2000:]
            victim[0].wait(10)
            assert len(state.keys()) == 1
            second = start_worker(sim, slack_sim.url, db, fast_config, log)
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and (
                    store.pending("slack", f"{w.project_id}#{iid}") or peek.depth(store)["running"]
                    or peek.depth(store)["pending"]):
                    time.sleep(0.1)
            finally:
                stop(second)
        finally:
            stop(victim[0])
        assert store.pending("slack", f"{w.project_id}#{iid}") == [], log.read_text()[-2000:]
    keys = state.keys()
    assert [k for k, n in Counter(keys).items() if n > 1] == [], "a message was posted twice"
    assert len(keys) == 3, "the e-group, the Sr. Director and the summary"
    assert w.bot_notes(iid), "GitLab got its checklist"


def test_the_slack_worker_keeps_the_operators_lease(default_config, tmp_path) -> None:
    """INCIDENT_BOT_LEASE_SECONDS applies to Slack jobs too: a killed worker's Slack job is taken over as soon."""
    settings = Settings(slack_bot_token=TOKEN, lease=timedelta(seconds=3))
    with open_store(str(tmp_path / "bot.sqlite3")) as store:
        _, sender = slack(settings, default_config, store, clock=lambda: datetime.now(UTC), worker_id="s")
    assert sender is not None and sender.lease == timedelta(seconds=3)

