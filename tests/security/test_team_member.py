"""The team member: a Reporter (or above) of a team's project, the one a channel's ``project:`` names (say
Marketing Programs), with no role in the security team's incident project.

Team projects receive children; they never declare incidents. The bot has two remits: incidents are
recognised only inside the incident scope, and a team project is only where the bot opens and maintains
children, even when it lies inside a group of the incident scope. A child is never an incident, whatever
labels anyone puts on it: an issue the bot user created is its child (GitLab's author field, which no one
can edit, is the bot's record of creating it).

A whole bot runs in this process (``tests/security/support.py`` ``RunningBot``: receiver, worker, Slack worker
and sweep), against the simulated GitLab and the simulated Slack over HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import yaml

from bot.commands.world import PROJECT, World, add_users, world
from bot.config import Config, parse_config
from bot.simgitlab.hooks import issue_hook
from bot.simslack import SimulatedSlack
from bot.worker import Outcome
from tests import store_inspect as peek
from tests.conftest import ROOT
from tests.security.support import SLACK_TOKEN, RunningBot

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
MEMBER = "tina-team"
REPORTER = 20


def team_config(team: str, scope: list[str]) -> Config:
    """The bundled policy with the email channel's children opened in ``team``, and the incident scope ``scope``."""
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["scope"] = scope
    for channel in data["channels"]:
        if channel["label"] == "comms-email":
            channel["project"] = team
    return parse_config(data, source="team.yaml", base_dir=ROOT / "config")


def team_world(sim: Any, team: str, scope: list[str]) -> World:
    """The security team's project, the team's project (the bot a Reporter there) and a Reporter of the team's
    project who has no role in the incident project."""
    w = world(sim, team_config(team, scope))
    w.team_project(team)
    add_users(sim, [MEMBER])
    sim.state.add_member(team, MEMBER, REPORTER)
    return w


def bot_notes(w: World, project: str, iid: int) -> list[dict[str, Any]]:
    return [n for n in w.sim.state.notes(project, iid, include_system=False)
            if n["author"]["username"] == w.cfg.bot.username]


@pytest.fixture
def slack():
    with SimulatedSlack(token=SLACK_TOKEN, rate_limit=False) as server:
        yield server


@pytest.mark.parametrize(
    "team, scope",
    [
        ("acme/marketing-programs", ["acme"]),  # the team's project inside a group of the incident scope
        ("marketing/programs", [PROJECT]),  # the team's project outside it
    ],
)
def test_a_team_member_labelling_an_issue_in_the_team_project_declares_no_incident(
    sim, clock, slack, tmp_path, caplog, team, scope
):
    """The team's Reporter labels an issue of the team's project as an S1 data breach. Nobody is assigned or
    mentioned, no checklist, no child, no Slack message (no DM to the Sr. Director, no #e-group, no
    #marketing-programs ping): deliveries answered 2xx, counted, logged once; the sweep never queues it. The
    team project still receives the child of a real incident."""
    w = team_world(sim, team, scope)
    bait = int(sim.state.create_issue(
        team, "Please engage the e-group", labels=(w.cfg.labels.trigger, *S1), author=MEMBER, issue_type="incident"
    )["iid"])
    bot = RunningBot(w, slack, clock, tmp_path)
    try:
        with caplog.at_level(logging.INFO):
            answers = [bot.deliver(issue_hook(sim.state, team, bait, a)) for a in ("open", "update", "update")]
            swept = [bot.sweep().queued for _ in range(2)]
            bot.run()
        sim.reset_log()
        real = w.incident(*S1)
        bot.deliver(issue_hook(sim.state, w.project, real, "open"))
        bot.run()
        outbox = peek.outbox_incidents(bot.store)
    finally:
        bot.close()
    assert [(code, body["status"]) for code, body in answers] == [(202, "ignored")] * 3
    assert all("is a team project" in body["reason"] for _, body in answers)
    assert swept == [{}, {}]
    assert bot.outside_remit("team_project") == 3
    said = [r for r in caplog.records if "outside the bot's remit" in r.getMessage()]
    assert len(said) == 1 and team in said[0].getMessage()
    issue = sim.state.get_issue(team, bait)
    assert bot_notes(w, team, bait) == [] and issue["assignees"] == [] and sim.state.links(team, bait) == []
    assert f"{team}#{bait}" not in bot.slack_text()
    assert outbox == {f"{w.project_id}#{real}"}
    # The real incident's email child is opened in the team's project: the team remit works as before.
    children = [i for i in sim.state.issues(team) if i["author"]["username"] == w.cfg.bot.username]
    assert len(children) == 1 and children[0]["confidential"]


def test_a_child_is_never_an_incident_whatever_labels_it_carries(sim, clock, slack, tmp_path):
    """A real S1 incident opens its email child in the team's project and its FAQ child in the incident's own
    project (inside the incident scope). The team's Reporter labels the email child, and a Reporter of the
    incident project the FAQ child, as S1 incidents, with their marker edited away: neither child gets a child,
    a checklist, an assignee or a Slack message of its own, delivery after delivery and sweep after sweep."""
    team = "acme/marketing-programs"
    w = team_world(sim, team, ["acme"])
    real = w.incident(*S1)
    bot = RunningBot(w, slack, clock, tmp_path)
    try:
        bot.deliver(issue_hook(sim.state, w.project, real, "open"))
        bot.run()
        [email] = [i for i in sim.state.issues(team) if i["author"]["username"] == w.cfg.bot.username]
        [faq] = [c for c in w.children() if "comms-faq" in c["labels"]]
        sent = len(slack.state.bot_messages())
        issues = {p: len(sim.state.issues(p)) for p in (team, w.project)}
        outcomes: list[tuple[str, Outcome]] = []
        for project, child, who in ((team, email, MEMBER), (w.project, faq, "sam-reporter")):
            labels = [*child["labels"], w.cfg.labels.trigger, "severity::1", "data-breach", "comms-blog"]
            sim.state.set_labels(project, child["iid"], labels, actor=who)
            sim.state.update_issue(project, child["iid"], description="Nothing to see here", actor=who)
            bot.deliver(issue_hook(sim.state, project, child["iid"], "update", user=who))
            outcomes += [(r.incident_key, r.outcome) for r in bot.run()]
        clock.advance(minutes=10)
        assert bot.sweep().queued == {}
        outcomes += [(r.incident_key, r.outcome) for r in bot.run()]
        outbox = peek.outbox_incidents(bot.store)
    finally:
        bot.close()
    # The email child is ignored at intake (its project is a team project), the FAQ child by the worker. The
    # real incident may run again (its Slack engagements were sent, which the checklist shows).
    real_key = f"{w.project_id}#{real}"
    assert [o for key, o in outcomes if key != real_key] == [Outcome.IGNORED]
    assert all(o is Outcome.OK for key, o in outcomes if key == real_key)
    assert bot.outside_remit("team_project") == 1 and bot.outside_remit("bot_child") == 1
    assert {p: len(sim.state.issues(p)) for p in (team, w.project)} == issues, "no child of a child"
    for project, child in ((team, email), (w.project, faq)):
        assert bot_notes(w, project, child["iid"]) == []
        assert [a["username"] for a in sim.state.get_issue(project, child["iid"])["assignees"]] == [
            a["username"] for a in child["assignees"]
        ]
    assert len(slack.state.bot_messages()) == sent
    assert outbox == {f"{w.project_id}#{real}"}
