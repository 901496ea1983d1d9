"""A child's change is seen at once: its own event queues its incident, and the sweep finds the rest.

Closing a child sends GitLab's Issue Hook about the child (``bot.simgitlab.hooks.issue_hook``, the payload of
GitLab's ``Gitlab::HookData::IssueBuilder``), only to webhooks on the child's project; a team's project often
has none. The tests go through the real receiver and worker against the simulated GitLab on one manual clock:
the incident's checklist ticks the closed child, with the plan's order warning, within one reconcile of the
child's event, and within one sweep without any event. A marker the bot did not sign queues nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot.commands.world import World, world
from bot.config import Config
from bot.core import bodies
from bot.core.urgency import Priority
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simgitlab.hooks import issue_hook
from bot.statekey import derived_key
from bot.store import DeliveryStore, open_store
from bot.sweep import CHILD_CHANGED, sweep
from bot.text.markers import StateKey, marker, signed_marker
from bot.web.app import WebSettings, create_app
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.test_team_projects import NAME, TEAM, TEMPLATE, team_config

SECRET = "s3cret-token"
INCIDENT = ("severity::2", "data-breach", "comms-email", "comms-blog")


@pytest.fixture
def cfg() -> Config:
    """The bundled policy, its customer email in Marketing Programs' own project (a team project)."""
    return team_config().model_copy(update={"scope": ["acme"]})


@pytest.fixture
def w(sim: SimulatedGitLab, cfg: Config) -> World:
    out = world(sim, cfg)
    out.team_project(TEAM, templates={NAME: TEMPLATE})
    return out


@pytest.fixture
def key(sim: SimulatedGitLab) -> StateKey:
    """The key a worker with GITLAB_TOKEN and no INCIDENT_BOT_STATE_KEY signs with (``World.reconciler``'s)."""
    return StateKey(derived_key(sim.token))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeliveryStore]:
    with open_store(tmp_path / "bot.sqlite3") as s:
        yield s


@pytest.fixture
def receiver(store: DeliveryStore, w: World, clock: ManualClock, key: StateKey) -> FlaskClient:
    return create_app(WebSettings(secret=SECRET), store=store, config=w.cfg, clock=clock, state_key=key).test_client()


def deliver(receiver: FlaskClient, payload: dict[str, Any], did: str) -> dict[str, Any]:
    headers = {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": SECRET, "Idempotency-Key": did}
    answer = receiver.post("/webhook", data=json.dumps(payload), headers=headers, content_type="application/json")
    assert answer.status_code == 202, answer.get_data(as_text=True)
    body: dict[str, Any] = answer.get_json()
    return body


def work(w: World, store: DeliveryStore, clock: ManualClock) -> list[str]:
    """A worker as ``serve`` runs it: every ready job, each reconciled once and remembered for the sweep."""
    worker = Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock)
    done = []
    try:
        clock.advance(1)  # past the settle time
        while (result := worker.run_once()) is not None:
            assert result.outcome is Outcome.OK, result.error
            done.append(result.incident_key)
    finally:
        worker.reconciler.close()  # type: ignore[attr-defined]
    return done


def declared(w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient) -> tuple[int, str]:
    """An incident declared through its own webhook and converged: its children exist."""
    iid = w.incident(*INCIDENT)
    deliver(receiver, issue_hook(w.sim.state, w.project, iid, action="open"), "open")
    key = f"{w.project_id}#{iid}"
    assert work(w, store, clock) == [key]
    return iid, key


def ready(store: DeliveryStore, key: str) -> bool:
    """A job for the incident is queued to run now (not only its next reminder, delayed)."""
    job = peek.active_job(store, key)
    return job is not None and not job.delayed


def child(w: World, label: str) -> dict[str, Any]:
    return next(c for c in w.all_children() if label in c["labels"])


def checklist_line(w: World, iid: int, child_ref: str) -> str:
    body = next(n["body"] for n in w.bot_notes(iid) if bodies.find_checklist_marker(n["body"]))
    return next(line for line in body.splitlines() if child_ref in line)


def test_a_child_closed_by_its_own_event_is_ticked_with_the_order_warning_in_one_reconcile(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient
) -> None:
    iid, key = declared(w, store, clock, receiver)
    blog = child(w, "comms-blog")
    assert "[ ]" in checklist_line(w, iid, f"#{blog['iid']} ")
    clock.advance(minutes=30)
    w.sim.state.close_issue(w.project, blog["iid"], actor="sec-oncall")  # before the customer email: out of order
    answer = deliver(receiver, issue_hook(w.sim.state, w.project, blog["iid"], "close", user="sec-oncall"), "blog")
    assert answer["status"] == "accepted" and answer["incident"] == f"{w.project}#{iid}"
    job = peek.active_job(store, key)
    assert job is not None and not job.delayed, "ready now, not at the next reminder"
    assert job.priority <= Priority.NORMAL
    assert work(w, store, clock) == [key], "the incident, looked at again once"
    line = checklist_line(w, iid, f"#{blog['iid']} ")
    assert line.startswith("- [x]") and "⚠ closed before ` comms-email `" in line


def test_a_team_project_child_closed_with_a_webhook_there_is_ticked_in_one_reconcile(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient
) -> None:
    iid, key = declared(w, store, clock, receiver)
    email = child(w, "comms-email")
    w.sim.state.close_issue(TEAM, email["iid"], actor="mpm-oncall")
    answer = deliver(receiver, issue_hook(w.sim.state, TEAM, email["iid"], "close", user="mpm-oncall"), "email")
    assert answer["status"] == "accepted", answer
    assert work(w, store, clock) == [key]
    assert checklist_line(w, iid, f"{TEAM}#{email['iid']}").startswith("- [x]")


def test_a_team_project_child_closed_without_any_webhook_is_ticked_within_one_sweep_even_after_all_clear(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient, key: StateKey
) -> None:
    iid, incident_key = declared(w, store, clock, receiver)
    labels = [x for x in w.sim.state.get_issue(w.project, iid)["labels"] if not x.startswith("comms::")]
    w.sim.state.set_labels(w.project, iid, [*labels, "comms::all-clear"], actor="sec-oncall")
    deliver(receiver, issue_hook(w.sim.state, w.project, iid, "update", user="sec-oncall"), "all-clear")
    assert work(w, store, clock) == [incident_key]
    client = w.reconciler(clock=clock)
    try:
        assert sweep(client.client, store, w.cfg, clock(), key=key).queued == {}, "nothing changed"
        clock.advance(minutes=40)
        email = child(w, "comms-email")
        w.sim.state.close_issue(TEAM, email["iid"], actor="mpm-oncall")  # no webhook on the team's project
        clock.advance(minutes=5)
        w.sim.reset_log()
        report = sweep(client.client, store, w.cfg, clock(), key=key)
        calls = len(w.sim.requests)
    finally:
        client.close()
    assert report.queued == {incident_key: CHILD_CHANGED}
    assert calls == 3, "the sweep's two listings and one of the bot's children changed since the last sweep"
    assert work(w, store, clock) == [incident_key]
    assert checklist_line(w, iid, f"{TEAM}#{email['iid']}").startswith("- [x]")


def test_the_sweep_does_not_queue_an_incident_again_for_a_child_the_bot_itself_changed(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient, key: StateKey
) -> None:
    declared(w, store, clock, receiver)
    r = w.reconciler(clock=clock)
    try:
        first = sweep(r.client, store, w.cfg, clock(), key=key)
        clock.advance(minutes=10)
        second = sweep(r.client, store, w.cfg, clock(), key=key)
    finally:
        r.close()
    assert first.queued == {} and second.queued == {}, "children the bot wrote before it converged the incident"


def forged_issue(w: World, **marker_fields: Any) -> int:
    """Someone else's issue (a Reporter's) whose description carries a child marker naming an incident."""
    text = marker("child", channel="comms-blog", **marker_fields)
    made = w.sim.state.create_issue(w.project, title="Not a child", description=f"copied\n{text}",
                                    author="sam-reporter")
    return int(made["iid"])


def test_an_unsigned_or_forged_child_marker_queues_nothing(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient
) -> None:
    iid, key = declared(w, store, clock, receiver)
    incident_id = w.sim.state.get_issue(w.project, iid)["id"]
    where = {"incident": incident_id, "project": w.project_id, "iid": iid}
    unsigned = forged_issue(w, **where)
    forged = forged_issue(w, **where, mac="0" * 64)
    for n, fake in enumerate((unsigned, forged)):
        answer = deliver(receiver, issue_hook(w.sim.state, w.project, fake, "close", user="sam-reporter"), f"f{n}")
        assert answer["status"] == "ignored" and "did not sign" in answer["reason"], answer
    assert not ready(store, key) and work(w, store, clock) == []


def test_a_signed_child_marker_naming_an_incident_outside_the_scope_queues_nothing(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient, key: StateKey
) -> None:
    other = w.sim.state.add_project("elsewhere/private", members={w.cfg.bot.username: 30})
    text = signed_marker("child", key, f"{other['id']}#3", incident=1, channel="comms-blog", project=other["id"],
                         iid=3, path="elsewhere/private")
    made = w.sim.state.create_issue(TEAM, title="A child", description=text, author=w.cfg.bot.username)
    answer = deliver(receiver, issue_hook(w.sim.state, TEAM, made["iid"], "close", user="mpm-oncall"), "out")
    assert answer["status"] == "ignored" and "not in the incident scope" in answer["reason"], answer
    assert peek.jobs(store) == []


def test_a_child_of_an_earlier_version_is_left_to_the_sweep_which_finds_its_incident_by_id(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient, key: StateKey
) -> None:
    iid, incident_key = declared(w, store, clock, receiver)
    blog = child(w, "comms-blog")
    incident = w.sim.state.get_issue(w.project, iid)
    old = signed_marker("child", key, f"{w.project_id}#{iid}", incident=incident["id"], channel="comms-blog")
    description = re.sub(r"<!-- incident-bot:child [^\n]*-->", lambda _: old, blog["description"])
    w.sim.state.update_issue(w.project, blog["iid"], actor=w.cfg.bot.username, description=description)
    r = w.reconciler(clock=clock)
    try:
        assert sweep(r.client, store, w.cfg, clock(), key=key).queued == {}
        clock.advance(minutes=10)
        w.sim.state.close_issue(w.project, blog["iid"], actor="sec-oncall")
        answer = deliver(receiver, issue_hook(w.sim.state, w.project, blog["iid"], "close", user="sec-oncall"), "old")
        assert answer["status"] == "ignored" and "the sweep will see it" in answer["reason"], answer
        assert sweep(r.client, store, w.cfg, clock(), key=key).queued == {incident_key: CHILD_CHANGED}
    finally:
        r.close()
    assert work(w, store, clock) == [incident_key]
    assert checklist_line(w, iid, f"#{blog['iid']} ").startswith("- [x]")


def test_without_a_state_key_the_receiver_queues_no_childs_event(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient
) -> None:
    _, key = declared(w, store, clock, receiver)
    keyless = create_app(WebSettings(secret=SECRET), store=store, config=w.cfg, clock=clock).test_client()
    blog = child(w, "comms-blog")
    w.sim.state.close_issue(w.project, blog["iid"], actor="sec-oncall")
    answer = deliver(keyless, issue_hook(w.sim.state, w.project, blog["iid"], "close", user="sec-oncall"), "nokey")
    assert answer["status"] == "ignored" and "no state key" in answer["reason"]
    assert not ready(store, key)



def test_a_child_closed_while_its_incident_was_being_reconciled_is_still_found_by_the_sweep(
    w: World, store: DeliveryStore, clock: ManualClock, receiver: FlaskClient, key: StateKey
) -> None:
    """The incident's mark is taken when a reconcile ends: a child closed after the reconcile read it, a few
    seconds before the mark, is a change the bot has not seen."""
    _, incident_key = declared(w, store, clock, receiver)
    r = w.reconciler(clock=clock)
    try:
        sweep(r.client, store, w.cfg, clock(), key=key)
        clock.advance(minutes=10)
        email = child(w, "comms-email")
        w.sim.state.close_issue(TEAM, email["iid"], actor="mpm-oncall")
        store.mark_incident(incident_key, clock() + timedelta(seconds=5), None)  # a reconcile ending just after
        clock.advance(minutes=1)
        assert sweep(r.client, store, w.cfg, clock(), key=key).queued == {incident_key: CHILD_CHANGED}
    finally:
        r.close()
