"""The simulator's resource label events, as GitLab documents them (doc/api/resource_label_events.md:
``GET /projects/:id/issues/:issue_iid/resource_label_events``; one event per label added or removed, with the
user, the time and the label as ``LabelBasic``), driven through the REST API as the bot reads them."""

from __future__ import annotations

from datetime import timedelta

import requests

from bot.simgitlab import ManualClock, SimulatedGitLab

FREE = "sec/incidents"  # seeded by conftest.sim


def get(sim: SimulatedGitLab, path: str, token: str | None = None) -> requests.Response:
    return requests.get(f"{sim.url}/api/v4{path}", headers={"PRIVATE-TOKEN": token or sim.token}, timeout=5)


def test_each_label_added_or_removed_is_one_event_with_who_and_when(sim: SimulatedGitLab, clock: ManualClock):
    sim.state.add_label(FREE, "comms::investigating")
    sim.state.add_label(FREE, "comms::scoped")
    start = clock()
    created = sim.state.create_issue(FREE, "Incident", labels=["comms::investigating"], author="alice")
    clock.advance(minutes=20)
    path = f"/projects/{sim.state.project(FREE)['id']}/issues/{created['iid']}"
    # A person swaps the phase label through the REST API (as the web UI does).
    r = requests.put(f"{sim.url}/api/v4{path}", headers={"PRIVATE-TOKEN": sim.token_for("bob")}, timeout=5,
                     data={"add_labels": "comms::scoped", "remove_labels": "comms::investigating"})
    assert r.status_code == 200, r.text
    events = get(sim, f"{path}/resource_label_events").json()
    assert [(e["label"]["name"], e["action"], e["user"]["username"]) for e in events] == [
        ("comms::investigating", "add", "alice"),
        ("comms::scoped", "add", "bob"),
        ("comms::investigating", "remove", "bob"),
    ]
    assert events[0]["created_at"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    assert events[1]["created_at"].startswith((start + timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"))
    assert set(events[0]) == {"id", "user", "created_at", "resource_type", "resource_id", "label", "action"}
    assert events[0]["resource_type"] == "Issue" and events[0]["resource_id"] == created["id"]


def test_an_outsider_gets_404_for_a_confidential_issues_label_events(sim: SimulatedGitLab):
    created = sim.state.create_issue(FREE, "Incident", confidential=True, author="alice")
    path = f"/projects/{sim.state.project(FREE)['id']}/issues/{created['iid']}/resource_label_events"
    assert get(sim, path, token=sim.token_for("carol")).status_code == 404
