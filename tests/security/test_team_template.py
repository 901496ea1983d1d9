"""The team member who edits the team's issue template (issue 19, section 3): a template cannot act as the bot.

The bot opens a channel's child in the team's project from the team's template. GitLab runs the quick actions of
an issue's description when the issue is created through the API, as the user who creates it
(gitlabhq ``app/services/issues/create_service.rb`` -> ``IssuableBaseService#handle_quick_actions`` ->
``QuickActions::InterpretService``; the commands in ``lib/gitlab/quick_actions/issue_actions.rb``,
``issue_and_merge_request_actions.rb`` and ``relate_actions.rb``), and merges their parameters over the API's
(``/assign`` replaces ``assignee_ids``). The simulated GitLab does the same (``bot/simgitlab/commands.py``,
``endpoints.create_issue``).
So whoever may edit the team's templates (its Developers) could make the bot run any quick action with the bot's
reach. Each test below fails on the code before the fix (quick actions sent as written).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands.world import World, configured_users, world
from bot.config import Config, parse_config
from bot.core import bodies
from bot.core.model import IncidentRef
from bot.gitlab.client import UnsafeBody, child_body
from bot.simgitlab import SimulatedGitLab
from bot.store import open_store
from bot.sweep import remember, sweep
from bot.text.quickactions import neutralise

ROOT = Path(__file__).resolve().parents[2]
TEAM = "marketing/programs"
NAME = "Email-Request-mpm"
INTAKE = "## Email request\n\nMarketing Programs' intake form: fill in every field before the send date.\n"
S1 = ("severity::1", "data-breach", "comms-email")
DRI = "mpm-oncall"  # the email channel's DRI in the bundled policy


def team_config(**email: Any) -> Config:
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    for channel in data["channels"]:
        if channel["label"] == "comms-email":
            channel.update({"project": TEAM, "gitlab_template": NAME, **email})
    return parse_config(data, source="test.yaml", base_dir=ROOT / "config")


@pytest.fixture
def w(sim: SimulatedGitLab, clock) -> World:
    made = world(sim, team_config())
    made.clock = clock  # type: ignore[attr-defined]
    return made


def team_project(w: World, template: str, *, tier: str = "free") -> int:
    """The team's project with ``template``; the labels its members made there, so GitLab's ``/label`` (which
    applies only labels that exist) would apply the bot's own."""
    pid = w.team_project(TEAM, templates={NAME: template}, tier=tier)
    for label in ("security-incident", "severity::1", "data-breach", "mpm-intake"):
        w.sim.state.add_label(pid, label)
    return pid


def reconcile(w: World, iid: int, project: str | None = None, **kw: Any):
    r = w.reconciler(clock=w.clock, **kw)  # type: ignore[attr-defined]
    try:
        return r.reconcile(IncidentRef(project or w.project, iid))
    finally:
        r.close()


def team_children(w: World) -> list[dict[str, Any]]:
    return [i for i in w.sim.state.issues(TEAM) if i["author"]["username"] == w.cfg.bot.username]


def sent_quick_actions(w: World) -> list[str]:
    """Every line of a body the bot sent that a GitLab version could run as a quick action."""
    hazards = w.sim.hazards_except(configured_users(w.cfg))
    return [h["line"].strip() for h in hazards if h["kind"] == "quick_action"]


def opened_line(w: World, iid: int, channel: str = "comms-email") -> list[str]:
    """The status-log lines that say the channel's child was opened (the key is logged once)."""
    lines = []
    for note in w.bot_notes(iid):
        for line in note["body"].splitlines():
            if line.lstrip("- ").startswith("opened ") and channel in line.replace("\\", ""):
                lines.append(line.replace("\\", ""))
    return lines


# ---- the recursion: a child that becomes an incident opens the next child from the same template ----------


def test_a_templates_labels_cannot_turn_each_child_into_an_incident_that_opens_the_next(w, sim, clock, tmp_path):
    team_project(w, INTAKE + "\n/label ~security-incident ~severity::1 ~data-breach\n")
    iid = w.incident(*S1)
    store = open_store(tmp_path / "bot.sqlite3")
    r = w.reconciler(clock=clock)
    try:
        store.enqueue(f"{w.project_id}#{iid}", clock(), "webhook")
        for _ in range(4):  # four sweeps, 10 s apart, each followed by a worker draining the queue
            while (job := store.claim("worker", clock(), timedelta(minutes=5))) is not None:
                project, _, number = job.incident_key.partition("#")
                remember(store, job.incident_key, r.reconcile(IncidentRef(project, int(number))), clock())
                store.complete(job.id, "worker", now=clock())
            clock.advance(10)
            report = sweep(r.client, store, w.cfg, clock())
    finally:
        r.close()
        store.close()

    children = team_children(w)
    assert len(children) == 1, f"{len(children)} children: each became an incident that opened the next"
    [child] = children
    assert not {"security-incident", "severity::1", "data-breach"} & set(child["labels"])
    assert report.listed == 1  # the sweep finds the incident only
    assert sent_quick_actions(w) == []
    # The child's status-log line says, once, that the line was not applied, and why.
    [line] = opened_line(w, iid)
    assert "/label ~security-incident ~severity::1 ~data-breach" in line
    assert "~security-incident is one of the bot's labels" in line
    # The team sees its line as text in the child, not as an action.
    assert "` /label ~security-incident ~severity::1 ~data-breach `" in child["description"]


# ---- /assign me assigns the bot instead of the DRI ---------------------------------------------------------


def test_assign_me_in_a_template_cannot_assign_the_bot_instead_of_the_dri(w, sim):
    team_project(w, INTAKE + "\n/assign me\n")
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    assert [a["username"] for a in child["assignees"]] == [DRI]
    assert sent_quick_actions(w) == []
    [line] = opened_line(w, iid)
    assert "/assign me" in line and "`me` would be the bot" in line


# ---- /relate, /copy_metadata, /cc, /title, /close: never run with the bot's reach ---------------------------


def test_relate_copy_metadata_cc_and_the_rest_never_run_as_the_bot(w, sim):
    other = w.incident(*S1, title="Another, unrelated confidential incident", confidential=True)
    template = (
        INTAKE
        + f"\n/relate acme/security-incidents#{other}\n/copy_metadata acme/security-incidents#{other}\n"
        + "/cc @e-group\n/title pwned\n/close\n/confidential\n\n"
        + "```\n/close\n```\n"  # GitLab does not run this one; it is escaped all the same
    )
    team_project(w, template)
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    assert sent_quick_actions(w) == []
    assert child["state"] == "opened" and child["title"] != "pwned" and child["confidential"]
    assert [link["iid"] for link in sim.state.links(TEAM, child["iid"])] == [iid]  # no link to the other one
    [line] = opened_line(w, iid)
    for dropped, why in [
        ("/relate", "it would act on other issues with the bot's access"),
        ("/copy_metadata", "it would act on other issues with the bot's access"),
        ("/cc @e-group", "the bot mentions nobody on a team's behalf"),
        ("/title pwned", "it would undo what the bot set on the child"),
        ("/close", "the child's state is the team's to change, by hand"),
    ]:
        assert dropped in line and why in line, dropped
    assert line.count("/close") == 1  # the fenced one was never a quick action: nothing to report
    # Nobody was mentioned by the template's /cc: its line is code.
    assert "@e-group" not in [h.get("handle") for h in sim.hazards_except(configured_users(w.cfg))]


# ---- what the bot applies itself, through the API, from a small allow-list ----------------------------------


def test_the_allow_listed_intent_is_applied_through_the_api_and_the_rest_is_reported_once(w, sim, clock):
    sim.state.add_user("outsider")
    template = (
        INTAKE
        + "\n/label ~mpm-intake ~security-incident ~comms::sending\n"
        + "/assign @pr-manager @outsider @incident-bot\n"
        + '/milestone %"Q4 launch"\n'
        + "/due in 2 days\n"
        + "/weight 3\n"
    )
    pid = team_project(w, template, tier="premium")
    sim.state.add_milestone(pid, "Q4 launch")
    iid = w.incident(*S1)
    sim.reset_log()
    reconcile(w, iid)
    [child] = team_children(w)
    assert "mpm-intake" in child["labels"]
    assert not {"security-incident", "comms::sending"} & set(child["labels"])
    assert [a["username"] for a in child["assignees"]] == [DRI, "pr-manager"]  # the DRI stays, first
    assert child["milestone"]["title"] == "Q4 launch"
    assert child["due_date"] == (clock().date() + timedelta(days=2)).isoformat()
    assert child["weight"] == 3
    assert child["confidential"]
    assert sent_quick_actions(w) == []
    [line] = opened_line(w, iid)
    assert "applied from the team's template: ~mpm-intake, @pr-manager, milestone Q4 launch" in line
    assert "~comms::sending is one of the bot's labels" in line
    assert "@outsider is not a Reporter of marketing/programs" in line
    assert "@incident-bot is the bot" in line
    # What checking the template's people and milestone cost: a look-up and an access level per person named
    # (the DRI's is cached), one milestone look-up; none when the child exists.
    assert sim.count("GET", route="GET /projects/:id/milestones") == 1
    sim.reset_log()
    assert reconcile(w, iid).actions == [] and sim.writes() == []
    assert sim.count("GET", route="GET /projects/:id/milestones") == 0


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("/severity 1", "only the plan decides what is an incident"),
        ("/type incident", "only the plan decides what is an incident"),
        ("/promote_to_incident", "only the plan decides what is an incident"),
        ("/due next full moon", "YYYY-MM-DD"),
        ("/milestone %nope", "has no open milestone"),
        ("/weight heavy", "a weight is a whole number"),
        ("/unassign @mpm-oncall", "it would undo what the bot set"),
        ("/relabel ~mpm-intake", "it would undo what the bot set"),
        ("/Label ~SECURITY-INCIDENT", "one of the bot's labels"),  # case-insensitive, as GitLab's extractor
    ],
)
def test_each_refused_quick_action_is_dropped_with_its_reason(w, sim, line, why):
    team_project(w, INTAKE + "\n" + line + "\n")
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    assert child["issue_type"] == "issue" and child["state"] == "opened"
    assert [a["username"] for a in child["assignees"]] == [DRI]
    assert {"comms-email", "incident-comms"} <= set(child["labels"])
    assert sent_quick_actions(w) == []
    [opened] = opened_line(w, iid)
    assert why in opened, opened


# ---- the child converges after create: confidential, the bot's labels, its DRI -----------------------------


def test_a_child_someone_made_public_unlabelled_and_unassigned_is_put_back_once(w, sim):
    team_project(w, INTAKE)
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    sim.state.update_issue(TEAM, child["iid"], actor="mktg-ops", confidential=False, assignees=[],
                           labels=["mpm-intake"])
    sim.reset_log()
    reconcile(w, iid)
    after = sim.state.get_issue(TEAM, child["iid"])
    assert after["confidential"]
    assert {"comms-email", "incident-comms", "mpm-intake"} <= set(after["labels"])
    assert [a["username"] for a in after["assignees"]] == [DRI]
    assert sim.count("PUT", route="PUT /projects/:id/issues/:iid") == 1  # one write puts it all back
    log = "\n".join(n["body"] for n in w.bot_notes(iid)).replace("\\", "")
    assert log.count("had been changed; put back as the plan says") == 1
    sim.reset_log()
    assert reconcile(w, iid).actions == []


def test_a_reassignment_to_another_person_is_kept(w, sim):
    team_project(w, INTAKE)
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    sim.state.update_issue(TEAM, child["iid"], actor="mktg-ops", assignees=["mktg-ops"])
    sim.reset_log()
    reconcile(w, iid)
    assert sim.count("PUT", route="PUT /projects/:id/issues/:iid") == 0
    assert [a["username"] for a in sim.state.get_issue(TEAM, child["iid"])["assignees"]] == ["mktg-ops"]


# ---- the description the bot sends never holds a quick action ---------------------------------------------


@pytest.mark.parametrize("template", ["/label ~x", "text\n/assign me", "a\r\n/close", "x\u2028/close"])
def test_a_raw_template_is_refused_and_a_neutralised_one_is_sent(template):
    body = "**Email** for the incident\n"
    with pytest.raises(UnsafeBody):
        child_body(template, body)
    assert child_body(neutralise(template)[0], body).endswith(body)


def test_the_log_line_about_the_template_is_safe_markdown(w, sim):
    team_project(w, INTAKE + "\n/assign @all\n/label ~\"<b>x</b>\" ~@all\n")
    iid = w.incident(*S1)
    reconcile(w, iid)
    mentions = [h for h in sim.hazards_except(configured_users(w.cfg)) if h["kind"] == "mention"]
    assert [h for h in mentions if h["handle"].lower() == "all"] == []
    # The log line names the lines as code, so it passes the bot's own safety check (no inert notice instead).
    [line] = opened_line(w, iid)
    assert "/assign @all" in line and bodies.INERT_NOTICE not in "\n".join(n["body"] for n in w.bot_notes(iid))


def test_on_free_the_dri_stays_the_one_assignee_and_the_log_says_so(w, sim):
    team_project(w, INTAKE + "\n/assign @pr-manager\n")  # GitLab Free keeps one assignee: the first, the DRI
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    assert [a["username"] for a in child["assignees"]] == [DRI]
    [line] = opened_line(w, iid)
    assert "` /assign @pr-manager ` (GitLab kept only the DRI (one assignee here))" in line
    assert "applied from the team's template" not in line
