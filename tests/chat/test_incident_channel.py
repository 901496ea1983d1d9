"""The bot creates the incident response channel in Slack when the policy asks it to
(``chat.create_incident_channel``): a private channel named by ``chat.incident_channel``, the role holders and
the engaged teams' people invited, its link shared in ``#security-department``; exactly once, even when Slack's
answer is lost; never someone else's channel, never over a channel a person named with the ``channel`` command.

Slack's behaviour as the simulated Slack models it, from the method pages: conversations.create ("Naming";
``name_taken``: "A channel cannot be created with the given name"; scopes ``groups:write`` for a private
channel, ``channels:manage`` for a public one; the answer's ``creator``), conversations.invite ("A comma
separated list of user IDs. Up to 1000 users"; ``force``; ``already_in_channel``, ``cant_invite_self``)."""

from __future__ import annotations

import logging
from typing import Any

from bot.core import bodies
from bot.simslack.state import BOT_USER, Channel
from tests.chat import test_slack_acceptance as acceptance
from tests.chat.test_slack_acceptance import Incident
from tests.security.gitlab_render import read

make, slack_sim = acceptance.make, acceptance.slack_sim  # the acceptance test's fixtures

PEOPLE = {
    "sec-incident-manager": "email:simoc@example.com",  # SIMOC
    "sec-oncall": "email:seoc@example.com",  # SEOC
    "comms-oncall": "email:cmoc@example.com",  # CMOC
    "sec-director": "email:sec-director@example.com",  # the Sr. Director of Security's team: e-group, Legal
    "mallory": "email:mallory@example.com",  # a GitLab user who holds no role and leads no engaged team
}


def creating(make: Any, **chat: Any) -> Incident:
    chat.setdefault("people", PEOPLE)
    inc: Incident = make(incident_channel="#inc-{iid}", create_incident_channel=True, **chat)
    state = inc.slack.state
    for name in ("seoc", "cmoc", "mallory"):
        state.add_user(name, f"{name}@example.com")
    return inc


def channel(inc: Incident, name: str) -> Channel:
    (found,) = [c for c in inc.slack.state.channels.values() if c.name == name]
    return found


def user(inc: Incident, email: str) -> str:
    (found,) = [u.id for u in inc.slack.state.users.values() if u.email == email]
    return found


def status_log(inc: Incident, iid: int) -> str:
    """The bot's comments other than the checklist, as GitLab shows them."""
    return "\n".join(read(n["body"])[1] for n in inc.w.bot_notes(iid) if not bodies.find_checklist_marker(n["body"]))


def test_the_channel_is_created_private_with_the_right_people_and_shared_once(make: Any) -> None:
    inc = creating(make)
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    assert inc.send() == ["done"]
    created = channel(inc, f"inc-{iid}")
    assert created.private and created.creator == BOT_USER and created.member
    role_holders_and_teams = {user(inc, f"{n}@example.com") for n in ("simoc", "seoc", "cmoc", "sec-director")}
    assert created.members == role_holders_and_teams, "the role holders and the engaged teams' people, no one else"
    assert user(inc, "mallory@example.com") not in created.members
    (legal,) = inc.slack.state.texts(created.id)
    assert "*Legal* engaged on security incident" in legal, "its engagements go to the new channel at once"
    assert inc.slack.count("conversations.create") == 1 and inc.slack.count("conversations.invite") == 1

    inc.reconcile()  # the GitLab job the Slack worker queued: the channel is recorded, its link planned
    assert f"created the incident response channel #inc-{iid} in Slack" in status_log(inc, iid)
    inc.send()
    (link,) = [t for t in inc.texts("#security-department") if ":speech_balloon:" in t]
    assert f"<#{created.id}>" in link

    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    assert inc.slack.count("conversations.create") == 1, "created once"
    assert [c.name for c in inc.slack.state.channels.values()].count(f"inc-{iid}") == 1
    inc.no_duplicates()


def test_a_lost_answer_finds_the_bots_own_channel_again_by_name(make: Any) -> None:
    inc = creating(make)
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    inc.slack.fail_after_commit(1, method="conversations.create")  # created in Slack, the answer lost
    assert inc.send() == ["pending"]
    inc.clock.advance(120)
    inc.send()
    assert [c.name for c in inc.slack.state.channels.values()].count(f"inc-{iid}") == 1
    created = channel(inc, f"inc-{iid}")
    assert inc.slack.count("conversations.create") == 2, "the second answered name_taken"
    assert len(created.members) == 4 and len(inc.slack.state.texts(created.id)) == 1


def test_a_channel_of_that_name_someone_else_created_is_never_adopted(make: Any) -> None:
    inc = creating(make)
    theirs = inc.slack.state.add_channel("inc-1")  # a person's channel, the bot in it
    iid = inc.w.incident("severity::1", "data-breach")
    assert iid == 1
    inc.reconcile(iid)
    inc.send()
    assert theirs.members == set() and inc.slack.state.texts(theirs.id) == [], "nobody invited, nothing posted"
    inc.reconcile()
    log_text = status_log(inc, iid)
    assert "already exists and the bot did not create it" in log_text
    assert "created the incident response channel" not in log_text


def test_a_developer_who_names_an_existing_channel_keeps_it(make: Any) -> None:
    inc = creating(make)
    war_room = inc.slack.state.add_channel("inc-war-room")
    iid = inc.w.incident("severity::1", "data-breach")
    inc.note(iid, "@incident-bot channel #inc-war-room", author="sec-oncall")  # a Developer
    inc.reconcile(iid)
    inc.send()
    assert inc.slack.count("conversations.create") == 0 and inc.slack.count("conversations.invite") == 0
    (legal,) = inc.slack.state.texts(war_room.id)
    assert "*Legal* engaged" in legal


def test_an_outsider_cannot_get_invited(make: Any) -> None:
    """mallory is in the policy's people map (for reminders) but holds no role: a hand-off she writes herself
    is refused (not a Developer), and she is assigned the incident in GitLab; she is still not invited."""
    inc = creating(make)
    inc.w.sim.state.add_user("mallory")
    iid = inc.w.incident("severity::1", "data-breach")
    inc.note(iid, "@incident-bot handoff simoc @mallory", author="mallory")
    inc.w.sim.state.update_issue(inc.w.project, iid, assignees=["mallory"])
    inc.reconcile(iid)
    inc.send()
    assert user(inc, "mallory@example.com") not in channel(inc, f"inc-{iid}").members
    assert "mallory" not in str([c.args for c in inc.slack.calls if c.method == "users.lookupByEmail"])


def test_an_operator_without_the_scope_gets_one_line_and_the_rest_still_goes_out(make: Any, caplog) -> None:
    inc = creating(make)
    inc.slack.state.scopes = {"chat:write", "channels:read", "groups:read", "users:read.email", "im:write"}
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    with caplog.at_level(logging.WARNING, logger="bot.integrations.slack.job"):
        assert inc.send() == ["done"], "not a dead job: only the channel is refused"
    (line,) = [r.getMessage() for r in caplog.records if "incident channel" in r.getMessage()]
    assert "groups:write" in line and "chat.create_incident_channel: false" in line and "\n" not in line
    assert len(inc.texts("#e-group")) == 1, "the other targets still get theirs"
    inc.reconcile()
    assert "groups:write" in status_log(inc, iid), "the incident's status log says it too"


def test_whoever_takes_over_a_role_is_invited_later_without_a_second_channel(make: Any) -> None:
    inc = creating(make, people={**PEOPLE, "bob": "email:bob@example.com"})
    inc.slack.state.add_user("bob", "bob@example.com")
    inc.w.sim.state.add_user("bob")
    inc.w.sim.state.add_member(inc.w.project, "bob", 30)
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    inc.send()
    inc.note(iid, "@incident-bot handoff simoc @bob", author="sec-oncall")
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    assert user(inc, "bob@example.com") in channel(inc, f"inc-{iid}").members
    assert inc.slack.count("conversations.create") == 1 and inc.slack.count("conversations.invite") == 2


def test_creating_without_a_name_pattern_is_one_config_line(tmp_path) -> None:
    import pytest
    import yaml

    from bot.config import ConfigError, load_config
    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["chat"]["create_incident_channel"] = True
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (line,) = str(err.value).splitlines()
    assert "chat" in line and "create_incident_channel needs incident_channel" in line


def test_plan_shows_the_channel_it_would_create(make: Any, capsys, monkeypatch) -> None:
    from bot.commands.cli import main

    inc = creating(make)
    iid = inc.w.incident("severity::1", "data-breach")
    monkeypatch.setenv("GITLAB_URL", inc.w.sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", inc.w.sim.token)
    monkeypatch.setenv("INCIDENT_BOT_DB", str(inc.db))
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", inc.w.project)
    assert main(["plan", f"{inc.w.project}#{iid}", "--config", str(inc.w.cfg.source)]) == 0
    out = capsys.readouterr().out
    assert f"  - #inc-{iid}: create this private channel, inviting 4 people [pending]" in out
