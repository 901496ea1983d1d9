"""Urgent work first, end to end: a worker with a backlog serves a new critical incident and a command first.

Against the simulated GitLab with the webhooks it would send (``bot.simgitlab.hooks``) through the real
receiver; the simulator, the receiver and the worker share one manual clock, nobody sleeps. The backlog is
what a sweep queues after an outage: high-severity incidents with one channel each, never seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot.commands.world import World
from bot.config import Config
from bot.core import bodies
from bot.core.urgency import Priority
from bot.simgitlab import ManualClock
from bot.simgitlab.hooks import issue_hook, note_hook
from bot.store import DeliveryStore, open_store
from bot.web.app import WebSettings, create_app
from bot.worker import Outcome, Worker
from tests import store_inspect as peek

SECRET = "s3cret-token"
BACKLOG = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeliveryStore]:
    url = str(tmp_path / "bot.sqlite3") if request.param == "sqlite" else request.getfixturevalue(
        "postgres_database"
    ).new_url()
    with open_store(url) as s:
        yield s


@pytest.fixture
def receiver(store: DeliveryStore, default_config: Config, clock: ManualClock) -> FlaskClient:
    return create_app(WebSettings(secret=SECRET), store=store, config=default_config, clock=clock).test_client()


def deliver(receiver: FlaskClient, event: str, payload: dict[str, Any], did: str) -> None:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": SECRET, "Idempotency-Key": did}
    answer = receiver.post("/webhook", data=json.dumps(payload), headers=headers, content_type="application/json")
    assert answer.status_code == 202, answer.get_data(as_text=True)


def has_checklist(w: World, iid: int) -> bool:
    return any(bodies.find_checklist_marker(n["body"]) for n in w.bot_notes(iid))


def backlog(w: World, store: DeliveryStore, clock: ManualClock) -> list[int]:
    """What a sweep queues after an outage: incidents it has never seen, at background priority."""
    iids = [w.incident("severity::2", "comms-email", title=f"backlog {n}") for n in range(BACKLOG)]
    for iid in iids:
        store.enqueue(f"{w.project_id}#{iid}", clock(), "sweep: never seen", priority=Priority.BACKGROUND)
        clock.advance(1)
    return iids


def work(w: World, store: DeliveryStore, clock: ManualClock) -> Iterator[str]:
    """A worker as ``serve`` builds it (default settle); yields the incident key of each job it finishes."""
    worker = Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock)
    try:
        clock.advance(1)  # past the settle time
        while (result := worker.run_once()) is not None:
            assert result.outcome is Outcome.OK, result.error
            yield result.incident_key
    finally:
        worker.reconciler.close()  # type: ignore[attr-defined]


def test_a_new_critical_incident_is_converged_before_the_backlog_queued_ahead_of_it(
    w: World, store: DeliveryStore, receiver: FlaskClient, clock: ManualClock
) -> None:
    queued = backlog(w, store, clock)
    critical = w.incident("severity::1", "data-breach", title="Customer data exposed")
    deliver(receiver, "Issue Hook", issue_hook(w.sim.state, w.project, critical, action="open"), "open-critical")
    worked = work(w, store, clock)
    assert next(worked) == f"{w.project_id}#{critical}"
    assert has_checklist(w, critical), "the critical incident has its checklist"
    assert not any(has_checklist(w, iid) for iid in queued), "while the backlog waits"
    assert list(worked) == [f"{w.project_id}#{iid}" for iid in queued], "then the backlog, first in first out"
    assert all(has_checklist(w, iid) for iid in queued)
    reminder = peek.active_job(store, f"{w.project_id}#{critical}")
    assert reminder is not None and reminder.delayed and reminder.priority == Priority.HIGH, (
        "its next status update is queued as a critical incident's reminder"
    )


def test_a_command_is_answered_before_the_backlog(
    w: World, store: DeliveryStore, receiver: FlaskClient, clock: ManualClock
) -> None:
    incident = w.incident("severity::3", title="Phishing report")
    deliver(receiver, "Issue Hook", issue_hook(w.sim.state, w.project, incident, action="open"), "open")
    assert list(work(w, store, clock)) == [f"{w.project_id}#{incident}"]
    replies_before = len(w.bot_notes(incident))
    queued = backlog(w, store, clock)
    note = w.sim.state.add_note(w.project, incident, "@incident-bot status", author="sec-oncall")
    deliver(receiver, "Note Hook", note_hook(w.sim.state, w.project, incident, note["id"]), "command")
    worked = work(w, store, clock)
    assert next(worked) == f"{w.project_id}#{incident}"
    assert len(w.bot_notes(incident)) > replies_before, "the reply is there"
    assert not any(has_checklist(w, iid) for iid in queued), "before any of the backlog was worked on"
    assert len(list(worked)) == BACKLOG
