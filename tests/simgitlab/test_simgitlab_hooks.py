"""Webhook payloads and their delivery for changes made through the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gitlab
import pytest
from gitlab.v4.objects import Project

from bot.simgitlab import SimulatedGitLab, issue_hook, note_hook

FREE = "sec/incidents"

# object_attributes keys of a real GitLab.com incident capture (tests/payloads/gitlab/incident_open.json).
REAL_ISSUE_ATTRIBUTES = {
    "author_id", "closed_at", "confidential", "created_at", "description", "discussion_locked", "due_date",
    "id", "iid", "last_edited_at", "last_edited_by_id", "milestone_id", "moved_to_id", "duplicated_to_id",
    "project_id", "relative_position", "state_id", "time_estimate", "title", "updated_at", "updated_by_id",
    "weight", "health_status", "type", "url", "total_time_spent", "time_change", "human_total_time_spent",
    "human_time_change", "human_time_estimate", "assignee_ids", "assignee_id", "labels", "state", "severity",
    "customer_relations_contacts", "escalation_status", "action",
}  # fmt: skip
REAL_PROJECT_KEYS = {
    "id", "name", "description", "web_url", "avatar_url", "git_ssh_url", "git_http_url", "namespace",
    "visibility_level", "path_with_namespace", "default_branch", "ci_config_path", "homepage", "url",
    "ssh_url", "http_url",
}  # fmt: skip
REAL_LABEL_KEYS = {
    "id", "title", "color", "project_id", "created_at", "updated_at", "template", "description", "type", "group_id",
}  # fmt: skip


class Receiver:
    """A local webhook endpoint recording (headers, payload) pairs."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                receiver.received.append((dict(self.headers), json.loads(body)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[tuple[str, str | None]]:
        return [(h["X-Gitlab-Event"], p["object_attributes"].get("action")) for h, p in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


def test_issue_hook_mirrors_real_payload(sim: SimulatedGitLab) -> None:
    state = sim.state
    issue = state.create_issue(
        FREE, "Incident", labels=["security-incident"], issue_type="incident", severity="HIGH", confidential=True
    )
    payload = issue_hook(
        state, FREE, issue["iid"], "update", changes={"labels": {"previous": [], "current": ["security-incident"]}}
    )
    assert payload["object_kind"] == "issue" and payload["event_type"] == "confidential_issue"
    attrs = payload["object_attributes"]
    assert set(attrs) >= REAL_ISSUE_ATTRIBUTES
    assert (attrs["type"], attrs["severity"], attrs["action"], attrs["iid"]) == ("Incident", "high", "update", 1)
    assert set(payload["project"]) == REAL_PROJECT_KEYS
    assert set(payload["labels"][0]) == REAL_LABEL_KEYS and payload["labels"][0]["title"] == "security-incident"
    assert [lab["title"] for lab in payload["changes"]["labels"]["current"]] == ["security-incident"]
    assert "assignees" not in payload  # only present when there are assignees
    assert payload["user"]["username"] == "root" and payload["user"]["email"] == "[REDACTED]"
    work_item = issue_hook(state, FREE, issue["iid"], "open", object_kind="work_item")
    assert work_item["event_type"] == "confidential_work_item"


def test_note_hook_shape(sim: SimulatedGitLab) -> None:
    issue = sim.state.create_issue(FREE, "Incident", assignees=["alice"])
    note = sim.state.add_note(FREE, issue["iid"], "@incident-bot status", author="alice", internal=True)
    payload = note_hook(sim.state, FREE, issue["iid"], note["id"])
    assert (payload["object_kind"], payload["event_type"]) == ("note", "confidential_note")
    attrs = payload["object_attributes"]
    assert (attrs["note"], attrs["noteable_type"], attrs["action"], attrs["system"]) == (
        "@incident-bot status",
        "Issue",
        "create",
        False,
    )
    assert attrs["noteable_id"] == issue["id"] and attrs["url"].endswith(f"/-/issues/1#note_{note['id']}")
    assert payload["issue"]["iid"] == 1 and payload["issue"]["assignee_ids"] == [issue["assignees"][0]["id"]]
    assert payload["user"]["username"] == "alice"


def test_api_changes_are_delivered(sim: SimulatedGitLab, receiver: Receiver) -> None:
    sim.subscribe(receiver.url, secret="s3cret")
    sim.state.create_issue(FREE, "seeded")  # seeding fires nothing
    alice = sim.client("alice").projects.get(FREE, lazy=True)
    issue = alice.issues.create({"title": "Incident", "labels": ["security-incident"]})
    alice.issues.update(issue.iid, {"add_labels": "data-breach"})
    issue.notes.create({"body": "hello"})
    alice.issues.create({"title": "secret", "confidential": True})
    assert sim.wait_for_hooks(5)
    assert receiver.events() == [
        ("Issue Hook", "open"),
        ("Issue Hook", "update"),
        ("Note Hook", "create"),
        ("Confidential Issue Hook", "open"),
    ]
    headers, update = receiver.received[1]
    assert headers["X-Gitlab-Token"] == "s3cret" and headers["Idempotency-Key"] and headers["X-Gitlab-Event-UUID"]
    assert headers["User-Agent"].startswith("GitLab/")
    changes = update["changes"]["labels"]
    assert [lab["title"] for lab in changes["previous"]] == ["security-incident"]
    assert [lab["title"] for lab in changes["current"]] == ["data-breach", "security-incident"]
    assert update["user"]["username"] == "alice"
    assert len({h["Idempotency-Key"] for h, _ in receiver.received}) == 4


def test_who_may_edit_a_comment_and_whom_the_edit_hook_names(sim: SimulatedGitLab, receiver: Receiver) -> None:
    """Author or Maintainer+ (``admin_note``); the edit's hook names the note's author, not the editor."""
    issue = sim.state.create_issue(FREE, "Incident")
    note = sim.client().projects.get(FREE, lazy=True).issues.get(issue["iid"], lazy=True).notes.create({"body": "x"})
    sim.subscribe(receiver.url)
    as_developer = sim.client("alice").projects.get(FREE, lazy=True).issues.get(issue["iid"], lazy=True)
    with pytest.raises(gitlab.exceptions.GitlabUpdateError, match="403"):
        as_developer.notes.update(note.id, {"body": "- [x] ticked by a Developer"})
    sim.state.add_member(FREE, "bob", 40)
    as_maintainer = sim.client("bob").projects.get(FREE, lazy=True).issues.get(issue["iid"], lazy=True)
    as_maintainer.notes.update(note.id, {"body": "rewritten by a Maintainer"})
    assert sim.wait_for_hooks(5)
    (_, payload), = receiver.received
    assert payload["object_attributes"]["action"] == "update" and payload["user"]["username"] == "incident-bot"


def test_recursion_guard_blocks_the_bots_own_echo(sim: SimulatedGitLab, receiver: Receiver) -> None:
    sim.subscribe(receiver.url, incident_object_kind="work_item")
    human = sim.client("alice").projects.get(FREE, lazy=True)
    incident = human.issues.create({"title": "Incident", "issue_type": "incident"})
    assert sim.wait_for_hooks(5)
    headers, payload = receiver.received[0]
    assert payload["object_kind"] == "work_item" and payload["object_attributes"]["type"] == "Incident"
    # The bot reacts and forwards the chain UUID it received: GitLab does not fire the hook again.
    bot_issue = sim.client().projects.get(FREE, lazy=True).issues.get(incident.iid, lazy=True)
    bot_issue.notes.create({"body": "checklist"}, extra_headers={"X-Gitlab-Event-UUID": headers["X-Gitlab-Event-UUID"]})
    bot_issue.notes.create({"body": "no uuid"})
    assert sim.wait_for_hooks(5)
    assert [p["object_attributes"].get("note") for _, p in receiver.received] == [None, "no uuid"]
    assert len(sim.hooks.blocked) == 1


def test_slow_receiver_never_delays_the_api(sim: SimulatedGitLab, project: Project) -> None:
    slow = Receiver(delay=0.3)
    try:
        sim.subscribe(slow.url)
        started = time.monotonic()
        project.issues.create({"title": "a"})
        project.issues.create({"title": "b"})
        assert time.monotonic() - started < 0.25
        assert sim.wait_for_hooks(5) and len(slow.received) == 2
    finally:
        slow.close()


def test_delivery_errors_are_recorded_not_raised(sim: SimulatedGitLab, project: Project) -> None:
    sim.subscribe("http://127.0.0.1:9/unreachable")
    project.issues.create({"title": "a"})
    assert sim.wait_for_hooks(5)
    assert sim.hooks.deliveries[0].error and sim.hooks.deliveries[0].status is None
