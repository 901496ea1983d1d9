"""The incident over time, against the simulated GitLab with the clock moved forward (never slept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.commands.demo import STATUS_UPDATE
from bot.commands.world import World, world
from bot.core.cadence import dues, is_status_update
from bot.core.model import EngagementPlan, Person
from bot.simgitlab import SimulatedGitLab
from bot.text.markers import strip_markers
from tests.conftest import T0, at, look

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")


@pytest.fixture
def w(w: World) -> World:
    w.sim.state.add_user("guest-gus")
    w.sim.state.add_member(w.project, "guest-gus", 10)
    return w


def comments(w: World, iid: int, kind: str) -> list[str]:
    needle = {
        "reminder": "Status update due",
        "reply": "incident-bot:log",
        "all-clear": "All clear: final communications",
        "closed": "was closed while",
    }[kind]
    bodies = [n["body"] for n in w.bot_notes(iid) if needle in n["body"]]
    if kind == "reply":
        return [b for b in bodies if "cmd" in b]
    return bodies


def say(w: World, iid: int, who: str, text: str) -> None:
    w.sim.state.add_note(w.project, iid, text, author=who)


# ---- cadence: a simulated day -------------------------------------------------------------------


def test_hourly_reminders_through_a_day(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)  # 09:00 engaged: nothing due yet
    assert comments(w, iid, "reminder") == []
    for hhmm, expected in [("09:59", 0), ("10:00", 1), ("10:30", 1), ("10:59", 1), ("11:00", 2), ("11:01", 2)]:
        at(clock, hhmm)
        look(w, clock, iid)
        assert len(comments(w, iid, "reminder")) == expected, hhmm
    reminder = comments(w, iid, "reminder")[0]
    assert "@sec-incident-manager" in reminder and "@sec-director" in reminder  # each DRI is named


def test_a_sweep_two_hours_late_posts_one_reminder_not_zero_not_two(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "12:10")  # windows 10:00 and 11:00 were missed while the bot was down
    look(w, clock, iid)
    look(w, clock, iid)
    assert len(comments(w, iid, "reminder")) == 1
    at(clock, "13:00")
    look(w, clock, iid)
    assert len(comments(w, iid, "reminder")) == 2


def test_no_reminder_right_after_a_status_update(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:50")
    say(w, iid, "sec-incident-manager", STATUS_UPDATE)
    for hhmm in ("10:00", "10:30", "10:49"):
        at(clock, hhmm)
        look(w, clock, iid)
    assert comments(w, iid, "reminder") == []
    at(clock, "10:50")
    look(w, clock, iid)
    assert len(comments(w, iid, "reminder")) == 1
    checklist = next(n["body"] for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])
    assert "Last update: 2026-11-30 09:50 UTC by @sec-incident-manager" in checklist
    assert "Next due: 2026-11-30 10:50 UTC" in checklist


def test_no_reminder_while_snoozed(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:30")
    say(w, iid, "sec-incident-manager", "@incident-bot snooze 3h")
    look(w, clock, iid)
    for hhmm in ("10:00", "11:00", "12:29"):
        at(clock, hhmm)
        look(w, clock, iid)
    assert comments(w, iid, "reminder") == []
    at(clock, "12:30")
    look(w, clock, iid)
    assert len(comments(w, iid, "reminder")) == 1


def test_all_clear_stops_reminders_and_lists_open_children_once(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = next(c["iid"] for c in w.children() if "comms-faq" in c["labels"])
    w.sim.state.close_issue(w.project, faq)
    at(clock, "09:40")
    labels = w.sim.state.get_issue(w.project, iid)["labels"]
    w.sim.state.set_labels(w.project, iid, [*labels, "comms::all-clear"])
    look(w, clock, iid)
    for hhmm in ("10:00", "12:00", "18:00"):
        at(clock, hhmm)
        look(w, clock, iid)
    assert comments(w, iid, "reminder") == []
    [final] = comments(w, iid, "all-clear")
    assert "Incident response customer email" in final and "Customer FAQ" not in final
    assert "@mpm-oncall" in final


def test_closing_with_open_children_says_so_once_and_reopening_resumes(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:30")
    w.sim.state.close_issue(w.project, iid)
    look(w, clock, iid)
    look(w, clock, iid)
    assert len(comments(w, iid, "closed")) == 1
    at(clock, "11:00")
    look(w, clock, iid)
    assert comments(w, iid, "reminder") == [], "a closed incident gets no reminders"
    w.sim.state.reopen_issue(w.project, iid)
    look(w, clock, iid)
    assert len(comments(w, iid, "reminder")) == 1, "reopening resumes"
    at(clock, "11:30")
    w.sim.state.close_issue(w.project, iid)
    look(w, clock, iid)
    assert len(comments(w, iid, "closed")) == 2, "each closing with open children is reported"


def test_two_reconciles_of_the_same_state_post_each_reminder_once(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "10:05")
    look(w, clock, iid)
    look(w, clock, iid)  # a retry, a duplicate webhook, a second replica after the first finished
    assert len(comments(w, iid, "reminder")) == 1


# ---- commands ---------------------------------------------------------------------------------------


def last_reply(w: World, iid: int) -> str:
    return strip_markers(comments(w, iid, "reply")[-1]).replace("\\", "").strip()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("@incident-bot help", "handoff seoc|simoc|cmoc @user"),
        ("@incident-bot", "snooze 2h"),  # a bare mention is a request for help
        ("@incident-bot status", "Current risk"),
        ("@incident-bot refresh", "up to date"),
        ("@incident-bot snooze 2h", "reminders paused until 2026-11-30 11:00 UTC"),
        ("@incident-bot snooze soon", "cannot parse duration"),
        ("@incident-bot snooze 30d", "snooze at most 7 days"),
        ("@incident-bot dance", "unknown command ` dance `"),
        ("@incident-bot handoff ciso @dana", "usage: handoff seoc|simoc|cmoc @user"),
        ("@incident-bot handoff simoc @nobody-here", "there is no GitLab user ` nobody-here `"),
    ],
)
def test_every_command_gets_a_reply(w, clock, command, expected):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "sec-oncall", command)
    look(w, clock, iid)
    assert expected in last_reply(w, iid)
    assert last_reply(w, iid).startswith("@sec-oncall")


def test_status_reply_is_prefilled_from_what_the_bot_knows(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = next(c["iid"] for c in w.children() if "comms-faq" in c["labels"])
    at(clock, "09:45")
    w.sim.state.close_issue(w.project, faq)
    say(w, iid, "sec-incident-manager", "@incident-bot status")
    look(w, clock, iid)
    reply = last_reply(w, iid)
    assert "incident declared" in reply and f"#{faq} closed (comms-faq)" in reply
    assert "Customer FAQ: closed" in reply
    at(clock, "10:30")
    look(w, clock, iid)
    assert len(comments(w, iid, "reminder")) == 1, "the bot's own template is not a status update"


def test_handoff_changes_holder_checklist_assignee_and_logs_who_and_when(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "10:40")
    say(w, iid, "sec-oncall", "@incident-bot handoff seoc @secops-oncall")
    look(w, clock, iid)
    issue = w.sim.state.get_issue(w.project, iid)
    assert [a["username"] for a in issue["assignees"]] == ["secops-oncall"]
    checklist = next(n["body"] for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])
    assert "Security Engineer On Call \\(SEOC\\):** @secops-oncall" in checklist
    log = "\n".join(n["body"] for n in w.bot_notes(iid)).replace("\\", "")
    assert "SEOC handed over to @secops-oncall by sec-oncall at 2026-11-30 10:40 UTC" in log


def test_handoff_of_simoc_leaves_the_incident_assignee(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "sec-oncall", "@incident-bot handoff simoc @secops-oncall")
    look(w, clock, iid)
    assert [a["username"] for a in w.sim.state.get_issue(w.project, iid)["assignees"]] == ["sec-oncall"]
    at(clock, "10:00")
    look(w, clock, iid)
    assert "@secops-oncall" in comments(w, iid, "reminder")[0], "the new SIMOC is reminded"


def test_after_a_handoff_children_follow_the_new_holder_unless_reassigned_by_hand(w, clock):
    iid = w.incident(*S1, "comms-security-alert")
    look(w, clock, iid)

    def child(label: str) -> dict:
        return next(c for c in w.children() if label in c["labels"])

    def assignees(label: str) -> list[str]:
        return [a["username"] for a in w.sim.state.get_issue(w.project, child(label)["iid"])["assignees"]]

    assert assignees("comms-faq") == assignees("comms-security-alert") == ["comms-oncall"]
    # A person gives the alert email to someone else; the bot must respect it.
    alert = child("comms-security-alert")["iid"]
    w.sim.state.update_issue(w.project, alert, assignees=["pr-manager"], actor="sec-oncall")
    email_dri = assignees("comms-email")

    say(w, iid, "sec-oncall", "@incident-bot handoff cmoc @secops-oncall")
    look(w, clock, iid)
    assert assignees("comms-faq") == ["secops-oncall"], "the CMOC's child follows the hand-off"
    assert assignees("comms-security-alert") == ["pr-manager"], "a reassignment by hand is kept"
    assert assignees("comms-email") == email_dri, "a team's child has nothing to do with the role"
    log = "\n".join(n["body"] for n in w.bot_notes(iid)).replace("\\", "")
    faq = child("comms-faq")["iid"]
    followed = "follows the hand-off of the CMOC: reassigned from @comms-oncall to @secops-oncall"
    assert f"#{faq} (comms-faq) {followed}" in log
    assert f"#{alert} (comms-security-alert) follows" not in log

    notes = len(w.bot_notes(iid))
    look(w, clock, iid)
    assert len(w.bot_notes(iid)) == notes and assignees("comms-faq") == ["secops-oncall"], "settled: nothing more"


def test_commands_from_guests_are_refused_with_a_reason(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "guest-gus", "@incident-bot handoff seoc @guest-gus")
    look(w, clock, iid)
    assert "refused" in last_reply(w, iid) and "Developer" in last_reply(w, iid)
    assert [a["username"] for a in w.sim.state.get_issue(w.project, iid)["assignees"]] == ["sec-oncall"]


def test_the_allow_list_lets_a_guest_command(w, clock, default_config):
    cfg = default_config.model_copy(
        update={"bot": default_config.bot.model_copy(update={"allow_commands_from": ["guest-gus"]})}
    )
    w.cfg = cfg
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "guest-gus", "@incident-bot refresh")
    look(w, clock, iid)
    assert "up to date" in last_reply(w, iid)


def test_a_command_is_answered_once_however_often_its_event_arrives(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "sec-oncall", "@incident-bot help")
    for _ in range(3):
        look(w, clock, iid)
    assert len(comments(w, iid, "reply")) == 1


def test_commands_in_the_bots_own_comments_are_never_obeyed(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "incident-bot", "@incident-bot handoff seoc @mpm-oncall")
    look(w, clock, iid)
    assert comments(w, iid, "reply") == []
    assert [a["username"] for a in w.sim.state.get_issue(w.project, iid)["assignees"]] == ["sec-oncall"]


# ---- the cadence arithmetic itself -----------------------------------------------------------------


def eng(cadence_h: float) -> EngagementPlan:
    return EngagementPlan("x", "X", Person("role:simoc", "SIMOC", "s"), timedelta(hours=cadence_h), "dm", "r")


@pytest.mark.parametrize(
    ("minutes_after", "window"),
    [(0, 0), (59, 0), (60, 1), (119, 1), (120, 2), (60 * 5 + 1, 5)],
)
def test_overdue_windows(minutes_after, window):
    [d] = dues([eng(1)], None, {}, T0, T0 + timedelta(minutes=minutes_after))
    assert d.window == window
    assert d.key == f"reminder:x:{T0.isoformat()}:{window}"


def test_an_update_moves_the_anchor():
    update = T0 + timedelta(minutes=90)
    [d] = dues([eng(1)], update, {}, T0, T0 + timedelta(minutes=140))
    assert d.anchor == update and d.window == 0


def test_status_update_recognition(default_config):
    points = default_config.status_update_points
    assert is_status_update(STATUS_UPDATE, points)
    assert is_status_update(
        "## Current risk\nlow\n## Users impacted\nsome\n## Timeline of events\n- 09:00 found\n"
        "## Mitigation steps taken\n## Current status of the incident\ncontained\n",
        points,
    )
    # Five headings but only two with content: not an update (most points must say something).
    assert not is_status_update(
        "## Current risk\nlow\n## Users impacted\nsome\n## Timeline of events\n"
        "## Mitigation steps taken\n## Current status of the incident\n",
        points,
    )
    assert not is_status_update("Current risk is low, users impacted: some.", points)
    assert not is_status_update("LGTM", points)


def test_rotation_fills_roles_at_declaration_and_never_changes_them_mid_incident(default_config, clock):
    """Weekly hand-over on Monday 09:00 Amsterdam: an incident declared before it keeps its SEOC after it."""
    from bot.config import Role

    rotation = {"timezone": "Europe/Amsterdam", "weekday": "monday", "at": "09:00", "start": "2026-11-23"}
    roles = dict(default_config.roles)
    roles["seoc"] = Role(name="SEOC", roster=["sec-oncall", "secops-oncall"], rotation=rotation)
    cfg = default_config.model_copy(update={"roles": roles})
    with SimulatedGitLab(now=clock) as sim:
        w = world(sim, cfg)
        clock.set(datetime(2026, 11, 30, 7, 30, tzinfo=UTC))  # Monday 08:30 in Amsterdam: week 1 still
        first = w.incident("severity::1")
        look(w, clock, first)
        clock.set(datetime(2026, 11, 30, 8, 30, tzinfo=UTC))  # 09:30 in Amsterdam: the rotation has moved on
        second = w.incident("severity::1")
        look(w, clock, second)
        look(w, clock, first)

        def seoc(iid: int) -> list[str]:
            return [a["username"] for a in sim.state.get_issue(w.project, iid)["assignees"]]

        assert seoc(first) == ["sec-oncall"] and seoc(second) == ["secops-oncall"]
        checklist = next(n["body"] for n in w.bot_notes(first) if "incident-bot:checklist" in n["body"])
        assert "**SEOC:** @sec-oncall" in checklist


def test_every_write_is_in_what_the_reconcile_says_it_did(w: World, clock) -> None:
    """The job's log line is ``report.changes``: a checklist edit (a status update recorded, a closed child
    ticked) is a change with what changed, and a reconcile that wrote nothing says nothing."""
    iid = w.incident("severity::1", "data-breach", "comms-email")
    first = look(w, clock, iid).changes
    assert "posted the engagement checklist" in first
    assert any(line.startswith("create confidential child issue") for line in first)
    clock.advance(minutes=20)
    w.sim.state.add_note(w.project, iid, STATUS_UPDATE, author="sec-incident-manager")
    assert look(w, clock, iid).changes == [
        "checklist: Last update: 2026-11-30 09:20 UTC by @sec-incident-manager; Next due: 2026-11-30 10:20 UTC"
    ]
    w.sim.state.close_issue(w.project, w.children()[0]["iid"])
    assert look(w, clock, iid).changes == [
        "checklist: [x] #2 Incident response customer email · DRI @mpm-oncall · closed"
    ]
    assert look(w, clock, iid).changes == []
