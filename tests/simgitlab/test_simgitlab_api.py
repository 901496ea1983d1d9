"""The simulator's REST behaviour, driven through python-gitlab as the bot drives it."""

from __future__ import annotations

import warnings

import gitlab
import pytest
import requests
from gitlab.v4.objects import Project

from bot.simgitlab import ManualClock, SimulatedGitLab

FREE, PREMIUM = "sec/incidents", "sec/premium"  # seeded by conftest.sim


def api(sim: SimulatedGitLab, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"PRIVATE-TOKEN": token or sim.token}
    return requests.request(method, f"{sim.url}/api/v4{path}", headers=headers, timeout=5, **kwargs)


def user_id(sim: SimulatedGitLab, name: str) -> int:
    return sim.state.user(name)["id"]


# ------------------------------------------------------------------ basics


def test_auth_users_and_projects(sim: SimulatedGitLab, gl: gitlab.Gitlab) -> None:
    gl.auth()
    assert gl.user.username == "incident-bot"
    assert [u.username for u in gl.users.list(username="ALICE", get_all=False)] == ["alice"]
    assert gl.users.list(username="nobody", get_all=False) == []
    assert gl.users.get(user_id(sim, "bob")).username == "bob"

    project = gl.projects.get(FREE)
    assert project.path_with_namespace == FREE and project.web_url == f"{sim.url}/{FREE}"
    assert gl.projects.get(project.id).id == project.id
    assert project.members_all.get(user_id(sim, "alice")).access_level == 30
    with pytest.raises(gitlab.GitlabGetError) as err:
        project.members_all.get(user_id(sim, "carol"))
    assert err.value.response_code == 404

    carol = sim.client("carol")
    with pytest.raises(gitlab.GitlabGetError) as err:
        carol.projects.get(FREE)
    assert err.value.response_code == 404 and err.value.error_message == "404 Project Not Found"


def test_errors_are_worded_like_gitlab(sim: SimulatedGitLab) -> None:
    assert api(sim, "GET", "/user", token="wrong").json() == {"message": "401 Unauthorized"}
    anonymous = requests.get(f"{sim.url}/api/v4/user", timeout=5)
    assert anonymous.status_code == 401 and anonymous.json() == {"message": "401 Unauthorized"}
    unknown = api(sim, "GET", "/no/such/route")
    assert unknown.status_code == 404 and unknown.json() == {"error": "404 Not Found"}
    wrong_method = api(sim, "DELETE", "/user")
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET"
    missing = api(sim, "POST", f"/projects/{FREE.replace('/', '%2F')}/issues", json={})
    assert missing.status_code == 400 and missing.json() == {"error": "title is missing"}
    blank = api(sim, "POST", "/projects/sec%2Fincidents/issues", json={"title": "  "})
    assert blank.status_code == 400 and blank.json() == {"message": {"title": ["can't be blank"]}}
    no_issue = api(sim, "GET", "/projects/sec%2Fincidents/issues/99")
    assert no_issue.status_code == 404 and no_issue.json() == {"message": "404 Not found"}


def test_create_issue_returns_gitlab_fields(sim: SimulatedGitLab, project: Project) -> None:
    issue = project.issues.create(
        {
            "title": "Customer data exposed",
            "description": "details",
            "labels": ["security-incident", "severity::2"],
            "confidential": True,
            "issue_type": "incident",
        }
    )
    assert issue.iid == 1 and issue.id != issue.iid
    assert issue.state == "opened" and issue.confidential is True
    assert issue.labels == ["security-incident", "severity::2"]
    assert (issue.issue_type, issue.type, issue.severity) == ("incident", "INCIDENT", "UNKNOWN")
    assert issue.author["username"] == "incident-bot"
    assert issue.references["full"] == f"{FREE}#1"
    assert issue.web_url == f"{sim.url}/{FREE}/-/issues/1"
    assert issue.created_at == "2026-03-02T09:00:00.000Z" and issue.closed_at is None
    assert issue.user_notes_count == 0 and issue.assignees == [] and issue.assignee is None
    # Missing labels are created as project labels.
    labels = {lab.name for lab in project.labels.list(get_all=True)}
    assert {"security-incident", "severity::2"} <= labels
    # A CSV string works as well as a list.
    assert project.issues.create({"title": "t", "labels": "a, b"}).labels == ["a", "b"]


def test_free_tier_keeps_one_assignee_and_drops_non_members(
    sim: SimulatedGitLab, project: Project, premium: Project
) -> None:
    alice, bob, carol = (user_id(sim, n) for n in ("alice", "bob", "carol"))
    free = project.issues.create({"title": "t", "assignee_ids": [alice, bob]})
    assert [a["username"] for a in free.assignees] == ["alice"]
    # Truncation happens before the readability filter: [carol, alice] -> [carol] -> nobody.
    assert project.issues.create({"title": "t", "assignee_ids": [carol, alice]}).assignees == []
    assert [a["username"] for a in premium.issues.create({"title": "t", "assignee_ids": [alice, bob]}).assignees] == [
        "alice",
        "bob",
    ]
    multi = premium.issues.create({"title": "t", "assignee_ids": [carol, alice, bob]})
    assert [a["username"] for a in multi.assignees] == ["alice", "bob"]
    # A Guest cannot read a confidential issue, so cannot be assigned to it.
    gus = user_id(sim, "gus")
    assert premium.issues.create({"title": "t", "confidential": True, "assignee_ids": [gus]}).assignees == []
    # On edit, an assignee list that filters to nothing leaves the assignees unchanged.
    free.assignee_ids = [carol]
    free.save()
    assert [a["username"] for a in project.issues.get(free.iid).assignees] == ["alice"]
    free.assignee_ids = []
    free.save()
    assert project.issues.get(free.iid).assignees == []


def test_update_issue_labels_state_and_system_notes(sim: SimulatedGitLab, project: Project, clock) -> None:
    issue = project.issues.create({"title": "t", "labels": ["a", "b"]})
    clock.advance(minutes=5)
    updated = project.issues.update(issue.iid, {"add_labels": "c", "remove_labels": "a"})
    assert updated["labels"] == ["b", "c"]
    assert updated["updated_at"] == "2026-03-02T09:05:00.000Z"
    assert project.issues.update(issue.iid, {"labels": ""})["labels"] == []
    closed = project.issues.update(issue.iid, {"state_event": "close"})
    assert closed["state"] == "closed" and closed["closed_at"] == "2026-03-02T09:05:00.000Z"
    assert closed["closed_by"]["username"] == "incident-bot"
    assert project.issues.update(issue.iid, {"state_event": "reopen"})["closed_at"] is None
    system = [n["body"] for n in sim.state.notes(FREE, issue.iid) if n["system"]]
    assert system[-2:] == ["closed", "reopened"] and system[0].startswith("added ~") and "removed ~" in system[0]
    assert project.issues.get(issue.iid).user_notes_count == 0  # system notes do not count


def test_scoped_labels_are_exclusive_only_on_premium(project: Project, premium: Project) -> None:
    free = project.issues.create({"title": "t", "labels": ["comms::investigating"]})
    free = project.issues.update(free.iid, {"add_labels": "comms::scoped"})
    assert free["labels"] == ["comms::investigating", "comms::scoped"]
    paid = premium.issues.create({"title": "t", "labels": ["comms::investigating", "x"]})
    assert premium.issues.update(paid.iid, {"add_labels": "comms::scoped"})["labels"] == ["comms::scoped", "x"]


def test_issue_list_filters_and_order(sim: SimulatedGitLab, project: Project, clock: ManualClock) -> None:
    first = project.issues.create({"title": "one", "labels": ["security-incident", "x"]})
    clock.advance(minutes=1)
    second = project.issues.create({"title": "two", "labels": ["security-incident"], "confidential": True})
    clock.advance(minutes=1)
    project.issues.create({"title": "three"})
    clock.advance(minutes=1)
    project.issues.update(first.iid, {"state_event": "close"})

    def iids(**kw) -> list[int]:
        return [i.iid for i in project.issues.list(get_all=True, **kw)]

    assert iids() == [3, 2, 1]
    assert iids(sort="asc") == [1, 2, 3]
    assert iids(order_by="updated_at") == [1, 3, 2]
    assert iids(labels=["security-incident"]) == [2, 1]
    assert iids(labels=["security-incident", "x"]) == [1]
    assert iids(labels="None") == [3]
    assert iids(state="opened") == [3, 2]
    assert iids(confidential=True) == [second.iid]
    assert iids(iids=[1, 3]) == [3, 1]
    assert iids(updated_after="2026-03-02T09:02:30Z") == [1]
    assert iids(created_after="2026-03-02T09:01:00Z", created_before="2026-03-02T09:01:00Z") == [2]
    assert [i.iid for i in sim.client().issues.list(scope="all", get_all=True)] == [3, 2, 1]
    # Only readers of a confidential issue see it.
    outsider = sim.client("gus").projects.get(FREE, lazy=True)
    assert [i.iid for i in outsider.issues.list(get_all=True)] == [3, 1]


def test_pagination_headers_are_gitlabs(sim: SimulatedGitLab, project: Project) -> None:
    for n in range(5):
        project.issues.create({"title": f"i{n}", "labels": ["p"]})
    r = api(sim, "GET", "/projects/sec%2Fincidents/issues?labels=p&per_page=2&page=2")
    assert [i["iid"] for i in r.json()] == [3, 2]
    h = r.headers
    assert (h["X-Page"], h["X-Per-Page"], h["X-Next-Page"], h["X-Prev-Page"]) == ("2", "2", "3", "1")
    assert (h["X-Total"], h["X-Total-Pages"]) == ("5", "3")
    base = f"{sim.url}/api/v4/projects/sec%2Fincidents/issues?labels=p"
    assert r.links["next"]["url"] == f"{base}&page=3&per_page=2"
    assert r.links["prev"]["url"] == f"{base}&page=1&per_page=2"
    assert r.links["first"]["url"] == f"{base}&page=1&per_page=2"
    assert r.links["last"]["url"] == f"{base}&page=3&per_page=2"
    last = api(sim, "GET", "/projects/sec%2Fincidents/issues?per_page=2&page=3").headers
    assert last["X-Next-Page"] == "" and "next" not in requests.utils.parse_header_links(last["Link"])[0]["rel"]
    assert api(sim, "GET", "/projects/sec%2Fincidents/issues?per_page=500").headers["X-Per-Page"] == "100"
    assert "RateLimit-Limit" in h and "RateLimit-Remaining" in h


def test_python_gitlab_follows_link_next_across_pages(sim: SimulatedGitLab, project: Project) -> None:
    issue = project.issues.create({"title": "t"})
    for n in range(45):
        issue.notes.create({"body": f"note {n}"})
    sim.reset_log()
    notes = list(issue.notes.list(iterator=True, sort="asc", order_by="created_at"))
    assert [n.body for n in notes] == [f"note {n}" for n in range(45)]
    assert sim.count("GET", r"/notes$") == 3  # 20 + 20 + 5
    assert [r.query.get("page") for r in sim.requests] == [None, "2", "3"]
    assert len(project.issues.list(get_all=True, per_page=1)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Link URLs share the client's base URL: no warning
        assert len(issue.notes.list(get_all=True, per_page=7)) == 45


def test_notes_crud_and_order(sim: SimulatedGitLab, project: Project, clock: ManualClock) -> None:
    issue = project.issues.create({"title": "t"})
    a = issue.notes.create({"body": "first"})
    clock.advance(seconds=10)
    b = issue.notes.create({"body": "second", "internal": True})
    assert (b.internal, b.noteable_iid, b.noteable_type, b.system) == (True, issue.iid, "Issue", False)
    assert [n.body for n in issue.notes.list(get_all=True)] == ["second", "first"]  # default desc
    clock.advance(seconds=10)
    edited = issue.notes.update(a.id, {"body": "first, edited"})
    assert edited["body"] == "first, edited" and edited["updated_at"] == "2026-03-02T09:00:20.000Z"
    by_update = issue.notes.list(get_all=True, order_by="updated_at", sort="desc")
    assert [n.id for n in by_update] == [a.id, b.id]
    assert project.issues.get(issue.iid).user_notes_count == 2
    issue.notes.delete(b.id)
    with pytest.raises(gitlab.GitlabGetError):
        issue.notes.get(b.id)
    # Internal notes are hidden from Guests.
    assert sim.state.find_user("gus")
    note = issue.notes.create({"body": "secret", "internal": True})
    guest_issue = sim.client("gus").projects.get(FREE, lazy=True).issues.get(issue.iid, lazy=True)
    assert note.id not in [n.id for n in guest_issue.notes.list(get_all=True)]


def test_discussions_hold_a_thread_and_its_replies_next_to_individual_notes(
    sim: SimulatedGitLab, project: Project, clock: ManualClock
) -> None:
    issue = project.issues.create({"title": "t"})
    single = issue.notes.create({"body": "a comment"})
    clock.advance(seconds=10)
    thread = issue.discussions.create({"body": "status log"})
    assert thread.individual_note is False and thread.attributes["notes"][0]["type"] == "DiscussionNote"
    clock.advance(seconds=10)
    reply = thread.notes.create({"body": "entry 2"})
    assert reply.type == "DiscussionNote" and reply.id not in (single.id, thread.attributes["notes"][0]["id"])
    listed = issue.discussions.list(get_all=True)
    assert [(d.individual_note, [n["body"] for n in d.attributes["notes"]]) for d in listed] == [
        (True, ["a comment"]),
        (False, ["status log", "entry 2"]),
    ]
    # Replying to an individual note's discussion turns it into a thread; notes still lists every note.
    single_id = listed[0].id
    issue.discussions.get(single_id, lazy=True).notes.create({"body": "answer"})
    replied = issue.discussions.get(single_id)
    assert replied.individual_note is False
    assert [n["body"] for n in replied.attributes["notes"]] == ["a comment", "answer"]
    assert len(issue.notes.list(get_all=True)) == 4
    # A reply in an internal thread is internal (tests/simgitlab/test_simgitlab_conformance.py: how such a
    # thread starts); an unknown discussion is a 404.
    secret = issue.notes.create({"body": "command", "internal": True})
    listed = issue.discussions.list(get_all=True)
    secret_thread = next(d for d in listed if d.attributes["notes"][0]["id"] == secret.id)
    assert secret_thread.notes.create({"body": "reply"}).internal is True
    with pytest.raises(gitlab.GitlabCreateError) as missing:
        issue.discussions.get("0" * 40, lazy=True).notes.create({"body": "x"})
    assert missing.value.response_code == 404


def test_commands_only_note_returns_202_and_saves_nothing(sim: SimulatedGitLab, project: Project) -> None:
    issue = project.issues.create({"title": "t"})
    sim.state.add_label(FREE, "triaged")
    result = issue.notes.create({"body": "/label ~triaged\n/close\n"})
    assert not hasattr(result, "id") or result.get_id() is None
    raw = api(sim, "POST", f"/projects/sec%2Fincidents/issues/{issue.iid}/notes", json={"body": "/reopen"})
    assert raw.status_code == 202
    assert raw.json() == {"commands_changes": {"state_event": "reopen"}, "summary": ["Reopened this issue."]}
    fresh = project.issues.get(issue.iid)
    assert fresh.user_notes_count == 0 and fresh.labels == ["triaged"] and fresh.state == "opened"
    # Text plus a command: the note is saved without the command line, and the command runs.
    mixed = issue.notes.create({"body": "Closing now.\n/close"})
    assert mixed.body == "Closing now." and project.issues.get(issue.iid).state == "closed"


def test_editing_a_note_down_to_commands_deletes_it(sim: SimulatedGitLab, project: Project) -> None:
    issue = project.issues.create({"title": "t"})
    note = issue.notes.create({"body": "checklist"})
    raw = api(sim, "PUT", f"/projects/11/issues/{issue.iid}/notes/{note.id}", json={"body": "/close"})
    assert raw.status_code == 202 and raw.json()["commands_changes"] == {"state_event": "close"}
    assert api(sim, "GET", f"/projects/11/issues/{issue.iid}/notes/{note.id}").status_code == 404
    assert project.issues.get(issue.iid).user_notes_count == 0


def test_quick_actions_in_descriptions_run_and_are_stripped(project: Project) -> None:
    issue = project.issues.create({"title": "t", "description": "Body\n/confidential\n/assign @alice"})
    assert issue.description == "Body" and issue.confidential is True
    assert [a["username"] for a in issue.assignees] == ["alice"]
    fenced = project.issues.create({"title": "t", "description": "```\n/confidential\n```"})
    assert fenced.confidential is False and "/confidential" in fenced.description


def test_links_two_way_conflict_and_tiers(sim: SimulatedGitLab, project: Project, premium: Project) -> None:
    incident = project.issues.create({"title": "incident"})
    child = project.issues.create({"title": "child", "confidential": True})
    source, target = incident.links.create({"target_project_id": FREE, "target_issue_iid": child.iid})
    assert (source.iid, target.iid) == (incident.iid, child.iid)
    for issue, other in ((incident, child), (child, incident)):
        linked = issue.links.list(get_all=True)
        assert [(x.iid, x.link_type) for x in linked] == [(other.iid, "relates_to")]
        assert linked[0].issue_link_id and linked[0].link_created_at
    for issue, other in ((incident, child), (child, incident)):  # repeat, either direction
        with pytest.raises(gitlab.GitlabCreateError) as err:
            issue.links.create({"target_project_id": project_id(sim, FREE), "target_issue_iid": other.iid})
        assert err.value.response_code == 409 and err.value.error_message == "Issue(s) already assigned"
    with pytest.raises(gitlab.GitlabCreateError) as err:
        incident.links.create({"target_project_id": FREE, "target_issue_iid": 99})
    assert err.value.response_code == 404
    # python-gitlab's lazy id is URL-encoded ("sec%2Fincidents"); GitLab resolves it to nothing.
    with pytest.raises(gitlab.GitlabCreateError) as err:
        incident.links.create({"target_project_id": project.id, "target_issue_iid": child.iid})
    assert err.value.error_message == "404 Project Not Found"
    with pytest.raises(gitlab.GitlabCreateError) as err:
        incident.links.create({"target_project_id": FREE, "target_issue_iid": child.iid, "link_type": "blocks"})
    assert err.value.response_code == 403
    assert err.value.error_message == "Blocked issues not available for current license"

    link_id = incident.links.list(get_all=True)[0].issue_link_id
    incident.links.delete(link_id)
    assert incident.links.list(get_all=True) == [] and child.links.list(get_all=True) == []
    system = [n["body"] for n in sim.state.notes(FREE, child.iid) if n["system"]]
    assert system == ["marked this issue as related to #1", "removed the relation with #1"]


def test_blocking_links_on_premium(premium: Project) -> None:
    a = premium.issues.create({"title": "a"})
    b = premium.issues.create({"title": "b"})
    source, target = a.links.create(
        {"target_project_id": PREMIUM, "target_issue_iid": b.iid, "link_type": "is_blocked_by"}
    )
    # is_blocked_by is stored as "b blocks a", and GitLab answers with that link.
    assert (source.iid, target.iid) == (b.iid, a.iid)
    assert [x.link_type for x in a.links.list(get_all=True)] == ["is_blocked_by"]
    assert [x.link_type for x in b.links.list(get_all=True)] == ["blocks"]


def project_id(sim: SimulatedGitLab, path: str) -> int:
    return sim.state.project(path)["id"]


def test_seeding_helpers_and_templates(sim: SimulatedGitLab, project: Project) -> None:
    state = sim.state
    seeded = state.create_issue(
        FREE,
        "Seeded incident",
        labels=["security-incident"],
        issue_type="incident",
        severity="high",
        author="alice",
        assignees=["bob"],
    )
    assert (seeded["severity"], seeded["author"]["username"], seeded["assignees"][0]["username"]) == (
        "HIGH",
        "alice",
        "bob",
    )
    state.add_note(FREE, seeded["iid"], "hello", author="bob")
    state.set_labels(FREE, seeded["iid"], ["security-incident", "data-breach"])
    state.close_issue(FREE, seeded["iid"])
    fetched = project.issues.get(seeded["iid"])
    assert fetched.state == "closed" and fetched.labels == ["data-breach", "security-incident"]
    assert fetched.user_notes_count == 1
    assert sim.requests[-1].route == "GET /projects/:id/issues/:iid"
    assert sim.writes() == []  # seeding is not HTTP
    state.add_issue_template(FREE, "Incident", "## Summary")
    assert project.issue_templates.get("Incident").content == "## Summary"
