# ruff: noqa: F811  (the fixtures are imported from the Slack acceptance tests)
"""Slack cannot be redirected, flooded or fooled (issue 19 §4), against the simulated GitLab and the simulated
Slack over HTTP, with the real ``slack_sdk``.

Who: a Developer (may command the bot), a Reporter (may post status updates, internal ones too), anyone in
Slack (may post a message carrying the bot's metadata), and whoever reads the bot's debug log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import ChatRoute
from bot.core.model import BotState, IncidentRef, Issue, Note, Observed
from bot.core.policy import plan_observed
from bot.integrations.slack.plan import chat_messages
from bot.integrations.slack.render import SlackRenderer
from bot.simslack.state import BOT_USER
from tests.chat.test_slack_acceptance import SIX_POINTS, Incident, make, policy, slack_sim  # noqa: F401
from tests.conftest import T0

DEVELOPER = "dev-dana"
REPORTER = "rep-randy"
S1 = ("severity::1", "data-breach", "publicly-reported")  # engages the e-group, Legal and Corporate PR


def member(inc: Incident, name: str, level: int) -> None:
    inc.w.sim.state.add_user(name)
    inc.w.sim.state.add_member(inc.w.project, name, level)


def replies(inc: Incident, iid: int) -> str:
    return "\n".join(n["body"] for n in inc.w.bot_notes(iid))


@pytest.mark.parametrize("name", ["#general", "#e-group", "#security-department", "#marketing-programs"])
def test_a_developer_cannot_send_the_incident_to_a_channel_of_their_choosing(make, name) -> None:
    inc: Incident = make()
    member(inc, DEVELOPER, 30)
    channel = inc.slack.state.add_channel(name[1:]).id if name == "#general" else inc.channels[name]
    iid = inc.w.incident(*S1)
    inc.note(iid, f"@incident-bot channel {name}", author=DEVELOPER)
    inc.reconcile(iid)
    inc.send()
    engaged = [t for t in inc.slack.state.texts(channel) if "Legal" in t or "Corporate" in t]
    assert engaged == [], f"the Legal and PR engagements went to {name}"
    assert "cannot be the incident channel" in replies(inc, iid)


def test_a_developer_can_still_name_an_incident_channel(make) -> None:
    inc: Incident = make()
    member(inc, DEVELOPER, 30)
    channel = inc.slack.state.add_channel("inc-2026-payroll").id
    iid = inc.w.incident(*S1)
    inc.note(iid, "@incident-bot channel #inc-2026-payroll", author=DEVELOPER)
    inc.reconcile(iid)
    inc.send()
    assert any("Legal" in t for t in inc.slack.state.texts(channel))


def test_a_channel_recorded_before_the_check_is_not_used(default_config) -> None:
    """An incident whose signed state already names ``#general`` (set before names were checked)."""
    issue = Issue(IncidentRef("acme/sec", 7), labels=frozenset({"security-incident", *S1}),
                  web_url="https://gitlab.example.com/acme/sec/-/issues/7")
    observed = Observed(issue, state=BotState(roles={"seoc": "sec-oncall"}, chat_channel="#general"))
    msgs = chat_messages(default_config, plan_observed(observed, default_config, T0), observed, SlackRenderer())
    assert msgs and all(m.target != "#general" for m in msgs)


def test_an_internal_update_is_announced_and_never_forwarded(make) -> None:
    inc: Incident = make(engagements={"sr-director-security": "email:sec-director@example.com",
                                      "e-group": {"to": "#e-group", "forward_updates": True}})
    member(inc, REPORTER, 20)
    iid = inc.w.incident(*S1)
    inc.reconcile(iid)
    inc.send()
    inc.w.sim.state.add_note(inc.w.project, iid, SIX_POINTS.format(risk="the attacker is ex-employee J. Doe"),
                             author=REPORTER, internal=True)
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    assert "J. Doe" not in inc.all_text(), "an internal note's text reached Slack"
    (update,) = [t for t in inc.texts("#e-group") if t.startswith(":memo:")]
    assert update.startswith(":memo: An internal update was posted") and "#note_" in update


@pytest.mark.parametrize("forwarding", ["e-group", "sr-director-security"])
def test_whether_text_is_forwarded_to_a_shared_target_does_not_depend_on_order(default_config, forwarding) -> None:
    """Two engagements reach ``#e-group``; one route opted in to the update text, the other did not."""
    routes = {eid: ChatRoute(to="#e-group", forward_updates=eid == forwarding)
              for eid in ("e-group", "sr-director-security")}
    chat = default_config.chat.model_copy(update={"engagements": routes})
    cfg = default_config.model_copy(update={"chat": chat})
    issue = Issue(IncidentRef("acme/sec", 7), labels=frozenset({"security-incident", *S1}),
                  web_url="https://gitlab.example.com/acme/sec/-/issues/7")
    note = Note(55, SIX_POINTS.format(risk="payroll keys leaked"), "sec-incident-manager", created_at=T0)
    observed = Observed(issue, state=BotState(roles={"seoc": "sec-oncall"}), updates=(note,))
    msgs = chat_messages(cfg, plan_observed(observed, cfg, T0), observed, SlackRenderer())
    (update,) = [m for m in msgs if "|update:" in m.key]
    assert "payroll keys leaked" not in update.text, "one route did not opt in: the text stays in GitLab"


def test_an_incident_channel_created_after_start_gets_its_engagement(make) -> None:
    inc: Incident = make(incident_channel="#inc-{iid}")
    iid = inc.w.incident(*S1)
    inc.reconcile(iid)
    inc.send()
    assert inc.store.refused_targets("slack", f"{inc.w.project_id}#{iid}").keys() == {f"#inc-{iid}"}
    channel = inc.slack.state.add_channel(f"inc-{iid}").id  # someone creates the channel and invites the bot
    inc.clock.advance(minutes=11)
    inc.note(iid, "a comment: the incident is looked at again")
    inc.reconcile(iid)
    inc.send()  # the same Slack worker process: its channel list predates the channel
    legal = [t for t in inc.slack.state.texts(channel) if "Legal" in t]
    assert len(legal) == 1
    inc.sender = inc.slack_worker("s:restarted")  # a restart changes nothing
    inc.clock.advance(minutes=11)
    inc.reconcile(iid)
    inc.send()
    inc.no_duplicates()
    assert inc.store.refused_targets("slack", f"{inc.w.project_id}#{iid}") == {}


@pytest.mark.parametrize("who", [{"user": "U00000042"}, {"user": "U00000043", "bot_id": "BOTHER01"}])
def test_a_key_in_someone_elses_message_is_not_taken_for_the_bots(make, who) -> None:
    inc: Incident = make()
    iid = inc.w.incident(*S1)
    key = f"{inc.w.project_id}#{iid}|engage:e-group|#e-group|0"
    inc.slack.state.say(inc.channels["#e-group"], "nothing to see", metadata={
        "event_type": "incident_bot", "event_payload": {"key": key}}, **who)
    inc.reconcile(iid)
    inc.send()
    mine = [m for m in inc.slack.state.messages[inc.channels["#e-group"]] if m.user == BOT_USER]
    assert any("engaged on security incident" in m.text for m in mine), "the e-group was never engaged"


def test_ten_quick_status_updates_by_one_reporter_are_one_message_per_target(make) -> None:
    inc: Incident = make(engagements={"sr-director-security": "email:sec-director@example.com",
                                      "e-group": {"to": "#e-group", "forward_updates": True}})
    member(inc, REPORTER, 20)
    iid = inc.w.incident(*S1)
    inc.reconcile(iid)
    inc.send()
    inc.slack.reset_calls()
    for n in range(10):
        inc.note(iid, SIX_POINTS.format(risk=f"update number {n}"), author=REPORTER)
        inc.clock.advance(20)
        inc.reconcile(iid)
        inc.send()
    targets = ("#e-group", "email:sec-director@example.com")
    for target in targets:
        updates = [t for t in inc.texts(target) if t.startswith(":memo:")]
        assert len(updates) == 1, target
    (update,) = [t for t in inc.texts("#e-group") if t.startswith(":memo:")]
    assert "update number 9" in update, "the latest text"
    assert inc.slack.count("chat.postMessage") == len(targets)


def test_one_persons_updates_over_an_hour_are_bounded(make) -> None:
    inc: Incident = make()
    member(inc, REPORTER, 20)
    iid = inc.w.incident(*S1)
    inc.reconcile(iid)
    inc.send()
    for n in range(10):  # one every 6 minutes: each would open a new window
        inc.note(iid, SIX_POINTS.format(risk=f"update number {n}"), author=REPORTER)
        inc.clock.advance(minutes=6)
        inc.reconcile(iid)
        inc.send()
    updates = [t for t in inc.texts("#e-group") if t.startswith(":memo:")]
    assert 1 <= len(updates) <= 5, "one person opens at most 4 windows an hour (here over 60 minutes)"


def test_a_debug_log_holds_no_message_body_and_no_history(make, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # as `--log-level debug`
    inc: Incident = make(engagements={"e-group": {"to": "#e-group", "forward_updates": True}})
    inc.slack.state.say(inc.channels["#e-group"], "private chatter: the CFO resigns tomorrow")
    iid = inc.w.incident(*S1)
    inc.reconcile(iid)
    inc.send()
    inc.note(iid, SIX_POINTS.format(risk="payroll keys leaked"))
    inc.clock.advance(60)
    inc.reconcile(iid)
    inc.send()
    assert inc.texts("#e-group"), "messages went out"
    logged = caplog.text
    for secret in ("CFO resigns", "payroll keys leaked", "engaged on security incident", "incident_bot"):
        assert secret not in logged, secret


def test_the_bundled_incident_channel_names(tmp_path: Path) -> None:
    cfg = policy(tmp_path)
    assert cfg.chat is not None and cfg.chat.incident_channel_glob() == "#inc-*"
    assert cfg.chat.may_be_incident_channel("#inc-12") and not cfg.chat.may_be_incident_channel("#general")
