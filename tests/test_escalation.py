"""An update that stays overdue for a second window mentions the next person in the engagement's chain
(``escalate_to``: the engagement's own, else its DRI's role's or team's), once per window. The clock is
moved, never slept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from bot.commands.cli import main
from bot.commands.demo import STATUS_UPDATE
from bot.commands.world import World, world
from bot.config import Config, parse_config
from bot.core.policy import escalation
from bot.simgitlab import ManualClock, SimulatedGitLab
from tests.conftest import ROOT, at, look
from tests.rendered import rendered_lines

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
HOLDERS: dict[str, str | None] = {"seoc": "sec-oncall", "simoc": "sec-incident-manager", "cmoc": "comms-oncall"}


def bundled() -> dict:
    return yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())


def policy(*, role: str | None = None, team: str | None = None, engagement: str | None = None) -> Config:
    """The bundled policy with an escalation on the SIMOC's role, the Sr. Director's team, and/or the e-group
    engagement (whose DRI is that team)."""
    data = bundled()
    if role:
        data["roles"]["simoc"]["escalate_to"] = role
    if team:
        data["teams"]["sr_director_security"]["escalate_to"] = team
    if engagement:
        next(e for e in data["engagements"] if e["id"] == "e-group")["escalate_to"] = engagement
    return parse_config(data, base_dir=ROOT / "config")


# ---- who is next in the chain ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "sr_director", "e_group"),
    [
        ({}, None, None),
        ({"role": "simoc-backup"}, "simoc-backup", None),  # the SIMOC's engagement only
        ({"team": "sec-manager"}, None, "sec-manager"),  # the team's engagement only
        ({"role": "@simoc-backup", "team": "role:cmoc"}, "simoc-backup", "comms-oncall"),  # a role: its holder
        ({"role": "team:egroup"}, "e-group", None),  # a team: its handle
        ({"team": "sec-manager", "engagement": "ciso"}, None, "ciso"),  # the engagement's own wins
    ],
)
def test_the_next_person_in_the_chain(kw, sr_director, e_group):
    cfg = policy(**kw)
    found = {e.id: escalation(e, HOLDERS, cfg) for e in cfg.engagements}
    assert (found["sr-director-security"] and found["sr-director-security"].handle) == sr_director
    assert (found["e-group"] and found["e-group"].handle) == e_group
    assert found["corporate-marketing-pr"] is None, "the CMOC's engagements have no escalation here"


# ---- the operator --------------------------------------------------------------------------------------


def check(tmp_path, data: dict, capsys) -> tuple[int, list[str]]:
    path = tmp_path / "bot.yaml"
    data["templates_dir"] = str(ROOT / "issue_templates")
    path.write_text(yaml.safe_dump(data))
    code = main(["check-config", "--config", str(path)])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("where", "value", "line"),
    [
        (
            ("teams", "sr_director_security"),
            "team:sr_director_securty",
            "teams.sr_director_security.escalate_to: unknown team 'sr_director_securty' "
            "(did you mean 'sr_director_security'? expected one of: ",
        ),
        (
            ("roles", "simoc"),
            "role:simco",
            "roles.simoc.escalate_to: unknown role 'simco' (did you mean 'simoc'? expected one of: seoc, simoc, cmoc)",
        ),
        (
            ("engagements", "e-group"),
            "team:markting_programs",
            "engagements[e-group].escalate_to: unknown team 'markting_programs' (did you mean 'marketing_programs'? ",
        ),
        (
            ("roles", "simoc"),
            "the backup",
            "roles.simoc.escalate_to: invalid escalation 'the backup' (expected 'role:<seoc|simoc|cmoc>', "
            "'team:<team id>' or a GitLab username)",
        ),
    ],
)
def test_a_mistyped_escalate_to_is_one_line(tmp_path, capsys, where, value, line):
    data = bundled()
    section, name = where
    entry = next(e for e in data[section] if e["id"] == name) if section == "engagements" else data[section][name]
    entry["escalate_to"] = value
    code, lines = check(tmp_path, data, capsys)
    assert code != 0 and len(lines) == 1, lines
    assert line in lines[0], lines


def test_a_mistyped_escalate_to_key_is_one_line_with_did_you_mean(tmp_path, capsys):
    data = bundled()
    data["roles"]["simoc"]["escalate_too"] = "simoc-backup"
    code, lines = check(tmp_path, data, capsys)
    assert code != 0 and len(lines) == 1, lines
    assert "roles.simoc: unknown key 'escalate_too' (did you mean 'escalate_to'?)" in lines[0], lines


# ---- the incident over a morning ------------------------------------------------------------------------


@pytest.fixture
def ew(sim: SimulatedGitLab) -> Iterator[World]:
    yield world(sim, policy(role="simoc-backup", team="sec-manager"))


def reminders(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid) if "Status update due" in n["body"]]


def lines_of(body: str) -> list[str]:
    return [line.text for line in rendered_lines(body) if line.block == "li"]


def test_the_second_overdue_window_mentions_the_next_in_the_chain_once_per_window(ew: World, clock: ManualClock):
    iid = ew.incident(*S1)
    look(ew, clock, iid)  # 09:00: the Sr. Director (DRI: the SIMOC) and the e-group (DRI: the Sr. Director), hourly
    at(clock, "10:00")
    look(ew, clock, iid)
    (first,) = reminders(ew, iid)
    assert "escalated" not in first and "@simoc-backup" not in first and "@sec-manager" not in first
    for hhmm in ("11:00", "11:30", "11:59"):
        at(clock, hhmm)
        look(ew, clock, iid)
    assert len(reminders(ew, iid)) == 2, "one reminder per window, escalation or not"
    second = reminders(ew, iid)[1]
    assert lines_of(second) == [
        "Sr. Director of Security: @sec-incident-manager, an update is due every 1h via Slack direct message; due "
        "since 2026-11-30 11:00 UTC; overdue for 2 windows, so escalated to @simoc-backup (the next in the chain)",
        "Broader e-group: @sec-director, an update is due every 1h via #e-group Slack channel; due since "
        "2026-11-30 11:00 UTC; overdue for 2 windows, so escalated to @sec-manager (the next in the chain)",
    ]
    at(clock, "12:00")
    look(ew, clock, iid)
    look(ew, clock, iid)
    third = reminders(ew, iid)[2:]
    assert len(third) == 1 and "overdue for 3 windows, so escalated to @simoc-backup" in third[0]
    mentions = [body.count("@simoc-backup") for body in reminders(ew, iid)]
    assert mentions == [0, 1, 1], "once per window from the second on"


def test_a_status_update_starts_the_chain_again(ew: World, clock: ManualClock):
    iid = ew.incident(*S1)
    look(ew, clock, iid)
    at(clock, "11:00")
    look(ew, clock, iid)
    assert "escalated to @simoc-backup" in reminders(ew, iid)[-1]
    at(clock, "11:10")
    ew.sim.state.add_note(ew.project, iid, STATUS_UPDATE, author="sec-incident-manager")
    look(ew, clock, iid)
    at(clock, "12:10")  # the first window after the update: a reminder, no escalation
    look(ew, clock, iid)
    assert len(reminders(ew, iid)) == 2
    assert "escalated" not in reminders(ew, iid)[-1]


def test_without_escalate_to_the_reminders_are_as_before(w: World, clock: ManualClock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "11:00")
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 1 and "escalated" not in reminders(w, iid)[0]


def test_the_escalation_is_resolved_at_the_time_of_the_reminder(ew: World, clock: ManualClock):
    """A role named as the escalation resolves to its holder now: after a hand-off, the new holder."""
    ew.cfg = policy(team="role:cmoc")
    iid = ew.incident(*S1)
    look(ew, clock, iid)
    at(clock, "10:30")
    ew.sim.state.add_note(ew.project, iid, "@incident-bot handoff cmoc @secops-oncall", author="sec-oncall")
    look(ew, clock, iid)
    at(clock, "11:00")
    look(ew, clock, iid)
    assert "escalated to @secops-oncall" in reminders(ew, iid)[-1]



def test_an_escalation_to_the_dri_itself_names_nobody_twice(sim: SimulatedGitLab, clock: ManualClock):
    w = world(sim, policy(team="team:sr_director_security"))  # the e-group's DRI is that team
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "11:00")
    look(w, clock, iid)
    (reminder,) = reminders(w, iid)
    assert "escalated" not in reminder and reminder.count("@sec-director") == 1
