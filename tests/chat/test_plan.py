"""The Slack plan, kind by kind: which messages an incident calls for, to whom, keyed how, and what they
never say. Pure: no HTTP, no store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config, parse_config
from bot.core.model import BotState, Child, IncidentRef, Issue, Note, Observed
from bot.core.policy import plan_observed
from bot.integrations.slack.plan import chat_messages
from bot.integrations.slack.render import SlackRenderer
from bot.integrations.slack.text import ZWJ

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
URL = "https://gitlab.example.com/acme/sec/-/issues/7"
SECRET_TITLE = "Customer DB of BigBank leaked"
UPDATE = (
    "Current risk: high\nUsers impacted: some\nTimeline of events: 10:00 found\nMitigation steps taken: rotated\n"
    "Current status of the incident: contained\nNext steps: notify"
)


@pytest.fixture(scope="module")
def render() -> SlackRenderer:
    return SlackRenderer()


@pytest.fixture(scope="module")
def cfg(default_config: Config) -> Config:
    return default_config


def with_chat(cfg: Config, chat) -> Config:
    return cfg.model_copy(update={"chat": chat})


def incident(*labels: str, title: str = SECRET_TITLE, state: str = "opened") -> Issue:
    return Issue(IncidentRef("acme/sec", 7), id=9007, title=title, description="secret details",
                 labels=frozenset(("security-incident", "severity::1", *labels)), state=state, web_url=URL)


def observed(issue: Issue, **kw) -> Observed:
    state = kw.pop("state", BotState(roles={"seoc": "sec-oncall", "simoc": "sec-incident-manager",
                                            "cmoc": "comms-oncall"}, began={}))
    return Observed(issue, state=state, **kw)


def messages(cfg, render, obs: Observed, now: datetime = NOW):
    desired = plan_observed(obs, cfg, now)
    return chat_messages(cfg, desired, obs, render)


def by_event(msgs) -> dict[str, list]:
    out: dict[str, list] = {}
    for m in msgs:
        out.setdefault(m.key.split("|")[1].split(":")[0], []).append(m)
    return out


def update_note(note_id: int = 55, body: str = UPDATE, author: str = "sec-incident-manager") -> Note:
    return Note(note_id, body, author, created_at=NOW - timedelta(minutes=5))


def child(label: str, state: str = "opened") -> Child:
    return Child(label, Issue(IncidentRef("acme/sec", 8), title="Incident response customer email", state=state,
                              web_url="https://gitlab.example.com/acme/sec/-/issues/8"), True)


def test_without_a_chat_section_nothing_is_planned(cfg, render):
    assert chat_messages(with_chat(cfg, None), plan_observed(observed(incident()), cfg, NOW),
                         observed(incident()), render) == []


def test_out_of_scope_incident_plans_nothing(cfg, render):
    low = replace(incident(), labels=frozenset({"security-incident", "severity::4"}))
    assert messages(cfg, render, observed(low, state=BotState())) == []


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((), {("engage:sr-director-security", "email:sec-director@example.com")}),
        (("data-breach",), {("engage:sr-director-security", "email:sec-director@example.com"),
                            ("engage:e-group", "#e-group")}),
    ],
)
def test_each_engagement_that_starts_gets_one_message_to_its_target(cfg, render, labels, expected):
    engaged = by_event(messages(cfg, render, observed(incident(*labels))))["engage"]
    got = {(m.key.split("|")[1], m.target) for m in engaged}
    assert got == expected


def test_engagement_message_carries_severity_reason_dri_and_link_but_never_the_title(cfg, render):
    (msg,) = [m for m in messages(cfg, render, observed(incident("data-breach"))) if "engage:e-group" in m.key]
    assert "critical" in msg.text and "Sr. Director of Security" in msg.text
    assert f"<{URL}|acme/sec#7>" in msg.text
    assert SECRET_TITLE not in msg.text and "secret details" not in msg.text


def test_keys_are_stable_across_runs(cfg, render):
    obs = observed(incident("data-breach"), updates=(update_note(),))
    first = messages(cfg, render, obs)
    assert first == messages(cfg, render, obs)
    assert len({m.key for m in first}) == len(first)


def test_incident_channel_targets_need_a_channel_named_or_a_pattern(cfg, render):
    obs = observed(incident("publicly-reported", "ee-customers-impacted"))
    assert not [m for m in messages(cfg, render, obs) if "corporate-marketing-pr" in m.key]
    named = replace(obs, state=replace(obs.state, chat_channel="#inc-7"))
    targets = {m.target for m in messages(cfg, render, named) if m.key.split("|")[1].startswith("engage:")}
    assert "#inc-7" in targets
    assert cfg.chat is not None
    patterned = with_chat(cfg, cfg.chat.model_copy(update={"incident_channel": "#sec-inc-{iid}"}))
    assert "#sec-inc-7" in {m.target for m in messages(patterned, render, obs)}


def test_status_update_is_forwarded_as_a_pointer_unless_the_target_opted_in(cfg, render):
    obs = observed(incident("data-breach"), updates=(update_note(),))
    updates = by_event(messages(cfg, render, obs))["update"]
    assert {m.target for m in updates} == {"email:sec-director@example.com", "#e-group"}
    for m in updates:
        assert f"{URL}#note_55" in m.text and "contained" not in m.text
    assert cfg.chat is not None
    routes = dict(cfg.chat.engagements)
    routes["e-group"] = routes["e-group"].model_copy(update={"forward_updates": True})
    opted = with_chat(cfg, cfg.chat.model_copy(update={"engagements": routes}))
    texts = {m.target: m.text for m in by_event(messages(opted, render, obs))["update"]}
    assert "contained" in texts["#e-group"] and "contained" not in texts["email:sec-director@example.com"]


def test_reminder_dm_goes_to_the_dri_once_per_overdue_window_via_people(cfg, render):
    assert cfg.chat is not None
    mapped = with_chat(cfg, cfg.chat.model_copy(update={"people": {"sec-incident-manager": "U0123ABCD"}}))
    began = {"sr-director-security": NOW - timedelta(hours=1, minutes=10)}
    obs = observed(incident(), state=BotState(roles={"simoc": "sec-incident-manager"}, began=began))
    (first,) = by_event(messages(mapped, render, obs))["reminder"]
    assert first.target == "U0123ABCD"
    assert first == by_event(messages(mapped, render, obs, NOW + timedelta(minutes=30)))["reminder"][0]
    (later,) = by_event(messages(mapped, render, obs, NOW + timedelta(hours=1)))["reminder"]
    assert later.key != first.key
    assert "reminder" not in by_event(messages(cfg, render, obs))  # no people mapping: no DM


def test_a_child_pings_the_owning_teams_channel_with_its_link(cfg, render):
    obs = observed(incident("comms-email"), children={"comms-email": child("comms-email")})
    (ping,) = by_event(messages(cfg, render, obs))["child"]
    assert ping.target == "#marketing-programs" and "acme/sec/-/issues/8|acme/sec#8" in ping.text


def test_all_clear_goes_to_every_engaged_target(cfg, render):
    obs = observed(incident("data-breach", "comms-email", "comms::all-clear"),
                   children={"comms-email": child("comms-email", "closed")})
    got = {m.target for m in by_event(messages(cfg, render, obs))["all-clear"]}
    assert got == {"email:sec-director@example.com", "#e-group", "#marketing-programs"}


def test_summary_is_one_editable_message_per_target_showing_children_states(cfg, render):
    obs = observed(incident("comms-email"), children={"comms-email": child("comms-email")})
    (summary,) = by_event(messages(cfg, render, obs))["summary"]
    assert summary.summary and summary.target == "#security-department"
    assert "(open)" in summary.text and "critical" in summary.text and SECRET_TITLE not in summary.text
    closed = observed(incident("comms-email"), children={"comms-email": child("comms-email", "closed")})
    (again,) = by_event(messages(cfg, render, closed))["summary"]
    assert again.key == summary.key and "(done)" in again.text


@pytest.mark.parametrize(
    "evil",
    ["@here <!channel> <https://evil.example|click> & @everyone", "*bold* <@U999> @channel"],
)
def test_injection_in_update_text_and_usernames_stays_inert(cfg, render, evil):
    assert cfg.chat is not None
    routes = {k: v.model_copy(update={"forward_updates": True}) for k, v in cfg.chat.engagements.items()}
    opted = with_chat(cfg, cfg.chat.model_copy(update={"engagements": routes}))
    body = UPDATE.replace("Next steps: notify", f"Next steps: {evil}")
    obs = observed(incident("data-breach", title=evil), updates=(update_note(body=body, author="@here"),))
    for m in messages(opted, render, obs):
        for token in ("<!", "<@", "<https://evil", "@here", "@channel", "@everyone"):
            assert token not in m.text, (m.key, token)
    assert f"@{ZWJ}here" in by_event(messages(opted, render, obs))["update"][0].text


def test_a_mistyped_target_is_one_line_with_a_hint(default_config):
    data = default_config.model_dump(by_alias=True, exclude={"source", "base_dir"})
    data["chat"] = {"engagements": {"e-group": "e-group"}}
    with pytest.raises(Exception) as err:
        parse_config(data, source="bot.yaml")
    assert str(err.value) == (
        "bot.yaml: chat.engagements.e-group: invalid Slack target 'e-group' (did you mean '#e-group'? expected "
        "'#channel-name', a Slack id (C…, U…), 'email:someone@example.com' or 'incident-channel')"
    )
    data["chat"] = {"engagements": {"e-gruop": "#e-group"}}
    with pytest.raises(Exception) as err:
        parse_config(data, source="bot.yaml")
    assert "unknown engagement 'e-gruop' (did you mean 'e-group'?" in str(err.value)
