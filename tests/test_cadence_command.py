"""``@incident-bot cadence ENGAGEMENT DURATION|default`` and the cadence rules, on the pure core."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.commands.cli import renderer_for
from bot.config import ConfigError, parse_config
from bot.core import bodies, cadence, commands
from bot.core import state as bot_state
from bot.core.model import BotState, CadenceRequest, IncidentRef, Issue, Note, Observed
from bot.core.observed import command_allowed_at
from bot.core.policy import plan, plan_observed
from bot.text.markers import StateKey, find_marker, marker, strip_markers

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
KEY = StateKey(b"k" * 32)
S1 = ("security-incident", "severity::1", "data-breach")


def incident(*labels: str) -> Issue:
    return Issue(IncidentRef("acme/sec", 7), id=907, project_id=11, labels=frozenset(labels), assignees=("sec-oncall",))


def cmd(text: str, *, allowed: bool = True, author: str = "dana", note_id: int = 90, when: datetime = NOW):
    note = Note(note_id, f"@incident-bot {text}", author, created_at=when, author_id=5)
    parsed = commands.parse(note, "incident-bot")
    assert parsed is not None
    return replace(parsed, allowed=allowed)


@pytest.mark.parametrize(
    ("text", "ok", "reply", "effect"),
    [
        ("cadence e-group 30m", True, "status updates every 30m, requested by", ("e-group", timedelta(minutes=30))),
        ("cadence sr-director-security 2h", True, "every 2h", ("sr-director-security", timedelta(hours=2))),
        ("cadence E-Group 1h30m", True, "every 1h 30m", ("e-group", timedelta(minutes=90))),
        ("cadence e-group 15m", True, "every 15m", ("e-group", timedelta(minutes=15))),  # the lower bound itself
        ("cadence e-group 4h", True, "every 4h", ("e-group", timedelta(hours=4))),  # the upper bound itself
        ("cadence e-group default", True, "back to the plan's cadence", ("e-group", None)),
        ("cadence e-group 10m", False, "between 15m and 4h (asked: 10m)", None),
        ("cadence e-group 5h", False, "between 15m and 4h (asked: 5h)", None),
        ("cadence e-group 2d", False, "between 15m and 4h (asked: 2d)", None),
        ("cadence e-group soon", False, "cannot parse duration 'soon'", None),
        ("cadence e-group 0m", False, "cannot parse duration", None),
        ("cadence egroup 30m", False, "unknown engagement 'egroup' (did you mean e-group?", None),
        ("cadence sr-director 30m", False, "did you mean sr-director-security?", None),
        ("cadence ciso 30m", False, "unknown engagement 'ciso' (engagements: sr-director-security, e-group", None),
        ("cadence legal 1h", False, "legal is engaged continuously", None),
        ("cadence e-group", False, "usage: cadence ENGAGEMENT DURATION|default", None),
        ("cadence", False, "usage: cadence ENGAGEMENT DURATION|default", None),
    ],
)
def test_judge_cadence(default_config, text, ok, reply, effect):
    verdict = commands.judge(cmd(text), default_config)
    assert verdict.ok is ok
    assert reply in str(verdict.reply)
    if effect is None:
        assert verdict.cadence is None
    else:
        assert verdict.cadence == (effect[0], CadenceRequest(effect[1], "dana", NOW))


@pytest.mark.parametrize(
    ("who", "level", "allowed"),
    [("Guest", 10, False), ("Reporter", 20, False), ("Developer", 30, True), ("Maintainer", 40, True)],
)
def test_who_may_change_the_cadence(default_config, who, level, allowed):
    verdict = commands.judge(cmd("cadence e-group 30m", allowed=command_allowed_at(level, default_config)),
                             default_config)
    assert verdict.ok is allowed, who
    assert (verdict.cadence is not None) is allowed, who
    if not allowed:
        assert "refused" in str(verdict.reply)


def test_the_state_keeps_requests_and_reads_states_written_before_them():
    request = CadenceRequest(timedelta(minutes=30), "dana", NOW)
    requests = {"e-group": request, "x": CadenceRequest(None, "eve", NOW)}
    state = BotState({"seoc": "sec-oncall"}, cadences=requests, rev=3)
    assert bot_state.decode(bot_state.encode(state)) == state
    old = {"roles": {"seoc": "sec-oncall"}, "rev": 2}  # written by a bot without the cadence command
    assert bot_state.decode(old) == BotState({"seoc": "sec-oncall"}, rev=2)
    junk = {"roles": {}, "cadences": {"e-group": {"every": "1h", "by": 3}, "y": [1]}, "rev": 1}
    assert bot_state.decode(junk).cadences == {}


def _plan_with(state: BotState, cfg, *labels: str):
    return {e.id: e for e in plan(incident(*labels), state, cfg, NOW).engagements}


def test_precedence_command_over_config_rule_over_the_engagements_own(default_config):
    rules = [
        {"severity_at_least": "critical", "phase": "comms::investigating", "every": "30m"},
        {"engagements": ["e-group"], "every": "2h"},
    ]
    cfg = default_config.model_copy(update={"cadence_defaults": parse_config(
        {**_raw(default_config), "cadence_defaults": rules}).cadence_defaults})
    asked = BotState(cadences={"e-group": CadenceRequest(timedelta(minutes=45), "dana", NOW)})
    own = _plan_with(BotState(), default_config, *S1)
    assert own["e-group"].cadence == timedelta(hours=1) and own["e-group"].cadence_source == ""
    by_rule = _plan_with(BotState(), cfg, *S1)
    assert by_rule["e-group"].cadence == timedelta(minutes=30)
    assert by_rule["e-group"].cadence_source == "config default for severity critical, phase comms::investigating"
    assert by_rule["legal"].cadence is None, "a continuous engagement stays continuous"
    later = _plan_with(BotState(), cfg, *S1, "comms::scoped")
    assert later["e-group"].cadence == timedelta(hours=2), "the next rule holds once the phase moves on"
    assert later["sr-director-security"].cadence == timedelta(hours=1), "no rule: the engagement's own"
    by_command = _plan_with(asked, cfg, *S1)
    assert by_command["e-group"].cadence == timedelta(minutes=45)
    assert by_command["e-group"].cadence_source == "requested by @dana"
    restored = BotState(cadences={"e-group": CadenceRequest(None, "dana", NOW)})
    assert _plan_with(restored, cfg, *S1)["e-group"].cadence == timedelta(minutes=30), "default: back to the rule"


def _raw(cfg):
    return {
        k: v
        for k, v in cfg.model_dump(by_alias=True, exclude={"source", "base_dir"}).items()
        if k not in ("cadence_defaults",)
    }


@pytest.mark.parametrize(
    ("section", "value", "problem"),
    [
        ("cadence_bounds", {"min": "2h", "max": "1h"}, "cadence_bounds: min is longer than max"),
        ("cadence_bounds", {"min": "soon"}, "cadence_bounds.min: cannot parse duration 'soon'"),
        ("cadence_defaults", [{"phase": "comms::scopd", "every": "30m"}],
         "cadence_defaults[0].phase: unknown phase 'comms::scopd' (did you mean 'comms::scoped'?"),
        ("cadence_defaults", [{"engagements": ["egroup"], "every": "30m"}],
         "cadence_defaults[0].engagements[0]: unknown engagement 'egroup' (did you mean 'e-group'?"),
        ("cadence_defaults", [{"severity_at_least": "huge", "every": "30m"}],
         "cadence_defaults[0].severity_at_least: unknown severity 'huge'"),
        ("cadence_defaults", [{"every": "continuous"}], "cadence_defaults[0].every: cannot parse duration"),
        ("cadence_defaults", [{"evry": "30m"}], "unknown key 'evry' (did you mean 'every'?)"),
    ],
)
def test_cadence_config_problems_are_one_line_each(default_config, section, value, problem):
    with pytest.raises(ConfigError) as err:
        parse_config({**_raw(default_config), section: value}, source="bot.yaml")
    lines = [str(p) for p in err.value.problems]
    assert any(problem in line for line in lines), lines
    assert all("\n" not in line for line in lines)


# ---- reminder windows follow the new cadence -------------------------------------------------------


def _dues(state: BotState, cfg, now: datetime, last_update: datetime | None = None):
    t0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    engagements = plan(incident(*S1), state, cfg, now).engagements
    changed = {e.id: e.cadence_changed for e in engagements if e.cadence_changed}
    return {d.engagement.id: d for d in cadence.dues(engagements, last_update, {}, t0, now, changed=changed)}


@pytest.mark.parametrize(
    ("asked", "at", "now", "window", "due_at"),
    [
        # Shorter at 09:50 (the engagement began 09:00): counted from the change, not back to 09:00.
        ("30m", "09:50", "09:55", 0, "10:20"),
        ("30m", "09:50", "10:20", 1, "10:20"),
        ("30m", "09:50", "10:50", 2, "10:50"),
        # Longer at 09:50: the reminder that was due at 10:00 now waits for 11:50.
        ("2h", "09:50", "10:30", 0, "11:50"),
        ("2h", "09:50", "11:50", 1, "11:50"),
        # Back to the plan's 1h at 10:30 after 2h: no reminder for 10:00 after the fact.
        ("default", "10:30", "10:45", 0, "11:30"),
        ("default", "10:30", "11:30", 1, "11:30"),
    ],
)
def test_windows_after_a_change(default_config, asked, at, now, window, due_at):
    def t(hhmm: str) -> datetime:
        h, m = (int(x) for x in hhmm.split(":"))
        return datetime(2026, 11, 30, h, m, tzinfo=UTC)

    every = None if asked == "default" else commands.parse_duration(asked)
    state = BotState(cadences={"e-group": CadenceRequest(every, "dana", t(at))})
    first, again = _dues(state, default_config, t(now)), _dues(state, default_config, t(now))
    due = first["e-group"]
    assert (due.window, due.due_at) == (window, t(due_at))
    assert due.key == again["e-group"].key, "the same window on every run and every replica"
    assert first["sr-director-security"].anchor == t("09:00"), "other engagements keep their windows"


def test_a_status_update_after_the_change_moves_the_anchor_as_before(default_config):
    state = BotState(cadences={"e-group": CadenceRequest(timedelta(minutes=30), "dana", NOW)})
    later = NOW + timedelta(minutes=20)
    due = _dues(state, default_config, NOW + timedelta(minutes=45), last_update=later)["e-group"]
    assert due.anchor == later and due.window == 0


# ---- through plan_observed: the checklist, the log, a forged state ---------------------------------


def _observed(cfg, *pending, state: BotState | None = None, checklist: Note | None = None) -> Observed:
    return Observed(
        incident=incident(*S1),
        commands=tuple(pending),
        state=state or BotState({"seoc": "sec-oncall"}),
        checklist=checklist,
        orphans_searched=True,
        key=KEY,
    )


def test_the_checklist_shows_the_requested_cadence_and_who_asked(default_config):
    r = renderer_for(default_config)
    observed = _observed(default_config, cmd("cadence e-group 30m"))
    desired = plan_observed(observed, default_config, NOW)
    body = bodies.checklist_body(desired, observed, default_config, r)
    line = next(line for line in body.splitlines() if "Broader e\\-group" in line)
    assert "every 30m (requested by \\@dana)" in line, line
    assert "@dana" not in line.replace("\\@dana", ""), "named, not notified"
    state = bot_state.decode(find_marker(body, bodies.CHECKLIST).fields)  # type: ignore[union-attr]
    assert state.cadences["e-group"] == CadenceRequest(timedelta(minutes=30), "dana", NOW)
    logged = {e.key: e.text for e in bodies.log_entries(desired, observed)}
    expected = "status updates for ` e-group `: every 30m, requested by \\@dana at 2026-11-30 10:00 UTC"
    assert expected in logged["cadence:90"]


def test_a_refused_cadence_changes_nothing(default_config):
    observed = _observed(default_config, cmd("cadence e-group 30m", allowed=False))
    desired = plan_observed(observed, default_config, NOW)
    assert {e.id: e.cadence for e in desired.engagements}["e-group"] == timedelta(hours=1)
    assert desired.state.cadences == {}


def test_a_maintainer_editing_the_checklist_cannot_change_the_cadence(default_config):
    """Maintainers can rewrite the bot's comments, hidden marker included; the marker is signed."""
    genuine = BotState({"seoc": "sec-oncall"}, began={"e-group": NOW}, rev=4)
    body = bot_state.checklist_marker(genuine, KEY, incident(*S1))
    found = find_marker(body, bodies.CHECKLIST)
    assert found is not None
    fields = dict(found.fields)
    fields["cadences"] = {"e-group": {"every": 60, "by": "maintainer-mo", "at": NOW.isoformat()}}
    fields["rev"] = 9
    edited = marker(bodies.CHECKLIST, **fields)  # the same MAC over different fields
    copy_body = "<!-- incident-bot:log {} --> " + bot_state.copy_marker(genuine, KEY, incident(*S1))
    copy = Note(70, copy_body, "incident-bot")
    reading = bot_state.read(Note(60, edited + "\n### checklist", "incident-bot"), [copy], KEY, incident(*S1))
    assert reading.state == genuine and reading.report is not None
    desired = plan(incident(*S1), reading.state, default_config, NOW)
    assert {e.id: e.cadence for e in desired.engagements}["e-group"] == timedelta(hours=1)
    assert json.dumps(fields["cadences"]) not in strip_markers(edited)
