"""The incident's GitLab timeline: each of the bot's facts is one timeline event, found again, never twice.

Against the simulated GitLab's ``POST /api/graphql`` (``bot/simgitlab/graphql.py``), which models gitlabhq's
``timelineEventCreate`` (``app/graphql/mutations/incident_management/timeline_event/create.rb``: the Developer
role through ``admin_incident_management_timeline_event`` in ``app/policies/issuable_policy.rb``; predefined tags
only, ``create_service.rb``; a note of at most 10,000 characters, ``app/models/incident_management/timeline_event.rb``)
and ``Project.incidentManagementTimelineEvents`` (``app/graphql/types/project_type.rb``). The clock is shifted, never
slept on.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from bot.commands.world import World, world
from bot.config import TimelineSettings
from bot.core import timeline
from bot.core.model import IncidentRef, Issue
from bot.gitlab.errors import GitLabCallError
from bot.statekey import derived_key
from bot.text.markers import StateKey, find_marker
from tests.conftest import T0, at, look

BOT = "incident-bot"
GRAPHQL = r"^/api/graphql$"  # queries by GET, mutations by POST


def add_labels(w: World, iid: int, *labels: str) -> None:
    current = w.sim.state.get_issue(w.project, iid)["labels"]
    w.sim.state.set_labels(w.project, iid, [*current, *labels])


def events(w: World, iid: int) -> list[dict[str, Any]]:
    """The incident's timeline events as GitLab keeps them (author, note, occurred_at, tags)."""
    issue = w.sim.state.find_issue(w.project, iid)
    out = []
    for e in w.sim.state.timeline_events.get(issue.id, []):
        author = w.sim.state.users_by_id[e["author_id"]].username
        out.append({**e, "author": author})
    return out


def key_of(event: dict[str, Any]) -> str | None:
    m = find_marker(event["note"], timeline.KIND)
    return m.fields.get("k") if m else None


def bot_keys(w: World, iid: int) -> Counter[str]:
    return Counter(k for e in events(w, iid) if e["author"] == BOT and (k := key_of(e)))


def graphql_calls(w: World) -> int:
    return w.sim.count(path_regex=GRAPHQL)


def graphql_as(w: World, username: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A person's own request to GitLab's GraphQL API, with their token."""
    gl = w.sim.client(username)
    answer: dict[str, Any] = gl.http_post(
        f"{w.sim.url}/api/graphql", post_data={"query": query, "variables": variables}
    )
    return answer


def state_key(w: World) -> StateKey:
    return StateKey(derived_key(w.sim.token))


def incident_issue(w: World, iid: int) -> Issue:
    raw = w.sim.state.get_issue(w.project, iid)
    return Issue(IncidentRef(w.project, iid), id=raw["id"], project_id=raw["project_id"], issue_type="incident")


def test_each_fact_is_one_timeline_event_at_the_time_it_happened(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    at(clock, "09:05")
    add_labels(w, iid, "comms-email")
    look(w, clock, iid)
    [child] = w.children()
    at(clock, "09:40")
    w.sim.state.close_issue(w.project, child["iid"], actor="comms-oncall")  # the email went out
    look(w, clock, iid)
    at(clock, "09:50")
    w.sim.state.add_note(w.project, iid, "@incident-bot handoff cmoc @pr-manager", author="comms-oncall")
    look(w, clock, iid)
    at(clock, "10:30")
    add_labels(w, iid, "comms::all-clear")
    look(w, clock, iid)

    keys = bot_keys(w, iid)
    assert all(n == 1 for n in keys.values()), keys
    assert {
        "declared",
        "role:seoc:sec-oncall",
        "role:cmoc:comms-oncall",
        "role:cmoc:pr-manager",
        "child:comms-email:opened",
        "child:comms-email:sent",
        "all-clear",
    } <= set(keys)
    assert any(k.startswith("engaged:") for k in keys)
    by_key = {key_of(e): e for e in events(w, iid)}
    assert by_key["declared"]["occurred_at"] == T0 and by_key["declared"]["tags"] == ["Start time"]
    assert by_key["child:comms-email:opened"]["occurred_at"] == T0 + timedelta(minutes=5)
    assert by_key["child:comms-email:sent"]["occurred_at"] == T0 + timedelta(minutes=40)
    assert by_key["role:cmoc:pr-manager"]["occurred_at"] == T0 + timedelta(minutes=50)
    assert by_key["all-clear"]["occurred_at"] == T0 + timedelta(minutes=90)
    assert by_key["all-clear"]["tags"] == ["End time"]
    assert sum("Response initiated" in e["tags"] for e in events(w, iid)) == 1
    # What a reader of the timeline sees: the text; the key is in an HTML comment GitLab's sanitiser drops.
    assert by_key["child:comms-email:sent"]["note"].startswith("Sent the communication comms\\-email")

    # A second look with nothing new writes none and asks GitLab's GraphQL API nothing.
    before = len(events(w, iid))
    w.sim.reset_log()
    look(w, clock, iid)
    assert len(events(w, iid)) == before
    assert graphql_calls(w) == 0
    assert not [r for r in w.sim.requests if r.method != "GET"]


def test_a_no_op_look_costs_the_same_calls_with_the_timeline_on_or_off(sim, clock, default_config):
    calls = {}
    for enabled in (True, False):
        project = f"acme/incidents-{enabled}".lower()
        update = {"timeline": TimelineSettings(enabled=enabled), "scope": [project]}
        w = world(sim, default_config.model_copy(update=update), project=project)
        iid = w.incident("severity::1", "data-breach")
        look(w, clock, iid)
        sim.reset_log()
        look(w, clock, iid)
        calls[enabled] = len(sim.requests)
    assert calls[True] == calls[False]


def test_turned_off_no_graphql_call_and_no_event(sim, clock, default_config):
    cfg = default_config.model_copy(update={"timeline": TimelineSettings(enabled=False)})
    w = world(sim, cfg)
    iid = w.incident("severity::1", "data-breach", "comms-email")
    sim.reset_log()
    look(w, clock, iid)
    at(clock, "10:00")
    add_labels(w, iid, "comms::all-clear")
    look(w, clock, iid)
    assert graphql_calls(w) == 0
    assert events(w, iid) == []
    assert w.children()  # the rest of the bot works as before


def test_an_issue_that_is_not_an_incident_gets_no_timeline(w, clock):
    # GitLab shows the timeline only on incidents; the bot writes none elsewhere (and asks nothing).
    iid = w.incident("severity::1", "data-breach", issue_type="issue")
    w.sim.reset_log()
    look(w, clock, iid)
    assert w.bot_notes(iid)  # the incident is handled
    assert graphql_calls(w) == 0
    assert events(w, iid) == []


def _writes_until_create(w: World, clock: Any, n: int) -> int:
    """How many writes a first look makes up to and including its ``n``-th timeline event (a rehearsal incident
    alike in every way, in the same world)."""
    iid = w.incident("severity::1", "data-breach", title="Rehearsal")
    w.sim.reset_log()
    look(w, clock, iid)
    writes = [r for r in w.sim.requests if r.is_write]
    creates = [k for k, r in enumerate(writes, 1) if r.path == "/api/graphql" and "timelineEventCreate" in str(r.json)]
    return creates[n - 1]


@pytest.mark.parametrize("nth", [1, 2])
def test_a_lost_answer_after_a_create_then_a_rerun_still_gives_one_event_each(w, clock, nth):
    """GitLab saved the ``nth`` event, then the connection died before its answer (and the process with it)."""
    w.sim.crash_after_writes(_writes_until_create(w, clock, nth))
    iid = w.incident("severity::1", "data-breach")
    with pytest.raises(GitLabCallError):
        look(w, clock, iid)
    assert len(events(w, iid)) == nth  # the lost answer's event is there
    w.sim.recover()
    at(clock, "09:01")
    look(w, clock, iid)
    keys = bot_keys(w, iid)
    assert len(keys) > nth and all(n == 1 for n in keys.values()), keys
    w.sim.reset_log()
    look(w, clock, iid)
    assert graphql_calls(w) == 0


def test_someone_elses_event_with_the_bots_text_is_not_taken_for_the_bots(w, clock):
    """A Developer may add timeline events; one that copies the bot's note, marker and all, is still theirs."""
    iid = w.incident("severity::1", "data-breach")
    incident = incident_issue(w, iid)
    fact = timeline.Fact("declared", T0, "Incident declared: critical severity", (timeline.START,))
    copied = timeline.note(fact, state_key(w), incident)
    answer = graphql_as(
        w,
        "sec-oncall",  # a Developer
        "mutation($input: TimelineEventCreateInput!) { timelineEventCreate(input: $input) { errors } }",
        {
            "input": {
                "incidentId": f"gid://gitlab/Issue/{incident.id}",
                "note": copied,
                "occurredAt": T0.isoformat(),
                "timelineEventTagNames": ["Start time"],
            }
        },
    )
    assert answer["data"]["timelineEventCreate"]["errors"] == []
    look(w, clock, iid)
    declared = [e for e in events(w, iid) if key_of(e) == "declared"]
    assert sorted(e["author"] for e in declared) == ["incident-bot", "sec-oncall"]
    assert bot_keys(w, iid)["declared"] == 1


@pytest.mark.parametrize("level", [10, 20])  # Guest, Reporter
def test_a_guest_or_reporter_cannot_add_a_timeline_event(w, clock, level):
    name = {10: "gus-guest", 20: "rita-reporter"}[level]
    w.sim.state.add_user(name)
    w.sim.state.add_member(w.project, name, level)
    iid = w.incident("severity::1", "data-breach")
    incident = incident_issue(w, iid)
    answer = graphql_as(
        w,
        name,
        "mutation($input: TimelineEventCreateInput!) { timelineEventCreate(input: $input) { errors } }",
        {
            "input": {
                "incidentId": f"gid://gitlab/Issue/{incident.id}",
                "note": "All clear",
                "occurredAt": T0.isoformat(),
            }
        },
    )
    assert "don't have permission" in answer["errors"][0]["message"]
    assert events(w, iid) == []


def test_the_simulator_refuses_a_tag_that_does_not_exist_and_a_note_too_long(w):
    iid = w.incident("severity::1")
    incident = incident_issue(w, iid)
    query = "mutation($input: TimelineEventCreateInput!) { timelineEventCreate(input: $input) { errors } }"
    base = {"incidentId": f"gid://gitlab/Issue/{incident.id}", "occurredAt": T0.isoformat()}
    bad_tag = graphql_as(w, BOT, query, {"input": {**base, "note": "x", "timelineEventTagNames": ["Comms sent"]}})
    assert bad_tag["data"]["timelineEventCreate"]["errors"] == ["Following tags don't exist: ['Comms sent']"]
    too_long = graphql_as(w, BOT, query, {"input": {**base, "note": "x" * 10_001}})
    assert "too long" in too_long["data"]["timelineEventCreate"]["errors"][0]
    predefined = graphql_as(w, BOT, query, {"input": {**base, "note": "x", "timelineEventTagNames": ["end TIME"]}})
    assert predefined["data"]["timelineEventCreate"]["errors"] == []


def test_a_refusal_is_said_once_in_the_status_log_and_not_retried_on_every_look(w, clock):
    # The bot user is only a Reporter of the incidents' project: GitLab refuses every timeline event.
    w.sim.state.add_member(w.project, BOT, 20)
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    assert events(w, iid) == []
    log = [n["body"] for n in w.bot_notes(iid) if "refused the incident's timeline" in n["body"]]
    assert len(log) == 1
    w.sim.reset_log()
    look(w, clock, iid)
    assert graphql_calls(w) == 0
    at(clock, "09:05")  # a new fact: tried again (a role may have been granted since), said no second time
    add_labels(w, iid, "comms-email")
    w.sim.reset_log()
    look(w, clock, iid)
    assert graphql_calls(w) >= 1 and w.children() and events(w, iid) == []
    assert sum("refused the incident's timeline" in n["body"] for n in w.bot_notes(iid)) == 1


# ---- check-config --live ------------------------------------------------------------------------------


def _timeline_line(text: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.startswith("timeline:")]
    return line


def test_check_config_live_says_the_timeline_api_answers_and_writes_nothing(capsys, monkeypatch, w, sim, tmp_path):
    from tests.test_people import live, policy

    sim.reset_log()
    code, out, err = live(capsys, monkeypatch, sim, policy(tmp_path), "--project", w.project)
    assert code == 0, err
    line = _timeline_line(out)
    assert "GraphQL API answers for acme/security-incidents" in line and "may add timeline events" in line
    assert sim.writes() == []


def test_check_config_live_says_when_the_timeline_api_is_not_available(capsys, monkeypatch, w, sim, tmp_path):
    from tests.test_people import live, policy

    sim.inject("502", times=None, method="GET", path_regex=GRAPHQL)  # e.g. a proxy that does not pass /api/graphql
    code, _, err = live(capsys, monkeypatch, sim, policy(tmp_path), "--project", w.project)
    assert code == 2
    line = _timeline_line(err)
    assert "did not answer for acme/security-incidents" in line and "will not be written" in line


def test_check_config_live_says_a_reporter_bot_cannot_add_timeline_events(capsys, monkeypatch, w, sim, tmp_path):
    from tests.test_people import live, policy

    sim.state.add_member(w.project, BOT, 20)
    code, _, err = live(capsys, monkeypatch, sim, policy(tmp_path), "--project", w.project)
    assert code == 2
    assert "needs Developer" in _timeline_line(err)


def test_timeline_notes_hold_nothing_gitlab_would_run_or_link(w, clock, default_config):
    """The values in a note (role holders, channel labels) are escaped like every other value the bot writes back:
    the simulator scans each mutation's note as it scans comments (``bot/simgitlab/hazards.py``)."""
    iid = w.incident("severity::1", "data-breach", "comms-email")
    look(w, clock, iid)
    assert [e for e in events(w, iid) if e["author"] == BOT]
    assert [h for h in w.sim.hazards if h["path"] == "/api/graphql"] == []
    # (the scan sees a note: a person's "@all" is found)
    incident = incident_issue(w, iid)
    mutation = "mutation($input: TimelineEventCreateInput!) { timelineEventCreate(input: $input) { errors } }"
    args = {"incidentId": f"gid://gitlab/Issue/{incident.id}", "note": "ping @all", "occurredAt": T0.isoformat()}
    graphql_as(w, "sec-oncall", mutation, {"input": args})
    assert [h["handle"] for h in w.sim.hazards if h["path"] == "/api/graphql"] == ["all"]


def test_a_lost_answer_is_found_again_in_the_same_run_before_a_second_try(w, clock):
    """The connection resets after GitLab saved an event (``applied=True``): the run reads the timeline, finds it,
    and goes on; nothing is written twice and the run does not fail."""
    iid = w.incident("severity::1", "data-breach")
    w.sim.inject("reset", times=1, method="POST", path_regex=GRAPHQL, applied=True)  # the first event's answer
    w.sim.reset_log()
    look(w, clock, iid)
    assert len(w.sim.fault_log) == 1
    keys = bot_keys(w, iid)
    assert "declared" in keys and all(n == 1 for n in keys.values()), keys
    assert w.sim.count("GET", GRAPHQL) == 2  # the first read, and the one after the lost answer


def test_a_create_that_gitlab_never_saw_is_sent_again_after_the_read(w, clock):
    iid = w.incident("severity::1", "data-breach")
    w.sim.inject("reset", times=1, method="POST", path_regex=GRAPHQL, applied=False)
    look(w, clock, iid)
    keys = bot_keys(w, iid)
    assert "declared" in keys and all(n == 1 for n in keys.values()), keys


def test_each_clock_decision_of_its_owner_is_one_timeline_event_at_the_time_recorded(w, clock):
    """Legal starts the GDPR clock at the awareness time it gives and files the notification: the timeline
    shows both once, at those times, with the reference as written (escaped), however often the bot looks."""
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    at(clock, "09:10")
    w.sim.state.add_note(w.project, iid, "@incident-bot clock start gdpr 2026-11-30T08:30Z", author="legal-oncall")
    look(w, clock, iid)
    at(clock, "11:00")
    w.sim.state.add_note(w.project, iid, "@incident-bot clock filed gdpr DPC-2026-117", author="legal-oncall")
    look(w, clock, iid)
    look(w, clock, iid)

    keys = bot_keys(w, iid)
    assert keys["clock:gdpr:started"] == 1 and keys["clock:gdpr:filed:notification"] == 1, keys
    by_key = {key_of(e): e for e in events(w, iid)}
    started = by_key["clock:gdpr:started"]
    assert started["occurred_at"].isoformat().startswith("2026-11-30T08:30")  # the owner's awareness time
    assert started["note"].startswith(
        "Regulatory clock started: GDPR Art\\. 33 notification to the supervisory authority (legal\\-oncall)"
    )
    filed = by_key["clock:gdpr:filed:notification"]
    assert filed["occurred_at"] == T0 + timedelta(hours=2)
    assert "reference DPC\\-2026\\-117" in filed["note"]


def test_each_sign_off_decision_and_the_ready_draft_are_one_timeline_event_each(w, clock):
    """The Sr. Director approves the customer email's draft: the timeline shows the approval at the command's
    time and the draft ready to send, once each, however often the bot looks."""
    from bot.core import drafts
    from tests.approvals.support import DIRECTOR, DRAFT, opened, say, write_draft

    iid = opened(w, clock)
    write_draft(w, DRAFT)
    look(w, clock, iid)
    at(clock, "09:20")
    say(w, iid, "approve email", DIRECTOR)
    look(w, clock, iid)
    look(w, clock, iid)

    digest = drafts.digest(DRAFT)
    keys = bot_keys(w, iid)
    assert keys[f"approval:comms-email:{digest}:{DIRECTOR}:approve"] == 1, keys
    assert keys[f"ready:comms-email:{digest}"] == 1, keys
    by_key = {key_of(e): e for e in events(w, iid)}
    approved = by_key[f"approval:comms-email:{digest}:{DIRECTOR}:approve"]
    assert approved["occurred_at"] == T0 + timedelta(minutes=20)
    assert approved["note"].startswith(f"Approved the draft of comms\\-email (digest {digest}): sec\\-director for ")


def test_each_public_post_of_an_integration_is_one_timeline_fact(default_config):
    from datetime import UTC, datetime

    from bot.config import Severity
    from bot.core.model import Desired, Observed
    from bot.core.outbound import OutboundFacts, Published

    at_ = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
    post = Published("status_page", "Status page", "k:create:aaaa1111", at_, "draft aaaa1111 created <b>")
    observed = Observed(Issue(IncidentRef("acme/sec", 12)), outbound=OutboundFacts(published=(post, post)))
    plan = Desired(ref=IncidentRef("acme/sec", 12), in_scope=True, scope_reason="", severity=Severity.CRITICAL,
                   severity_source="", phase="", phase_name="", flags=())
    got = [f for f in timeline.facts(observed, plan, default_config, at_) if f.key.startswith("published:")]
    assert [(f.key, f.occurred_at) for f in got] == [("published:status_page:k:create:aaaa1111", at_)]
    assert "<b>" not in got[0].text
