"""The cadence command and the comms order against the simulated GitLab, with the clock moved (never slept)."""

from __future__ import annotations

import pytest

from bot.commands.world import World, world
from bot.core import bodies
from bot.gitlab.errors import GitLabCallError
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.text.markers import strip_markers
from tests.conftest import T0, at, look
from tests.security.gitlab_render import read
from tests.test_reconciler import fast_policy

S1 = ("severity::1", "data-breach", "comms-email", "comms-blog")


@pytest.fixture
def w(w: World) -> World:
    for name, level in (("guest-gus", 10), ("reporter-rae", 20)):
        w.sim.state.add_user(name)
        w.sim.state.add_member(w.project, name, level)
    return w


def say(w: World, iid: int, who: str, text: str) -> None:
    w.sim.state.add_note(w.project, iid, text, author=who)


def reminders(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid) if "Status update due" in n["body"]]


def checklist(w: World, iid: int) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])


def replies(w: World, iid: int) -> list[str]:
    return [strip_markers(n["body"]).replace("\\", "") for n in w.bot_notes(iid) if '"cmd' in n["body"]]


def line_of(body: str, needle: str) -> str:
    return next(line for line in read(body)[1].splitlines() if needle in line)


# ---- cadence -------------------------------------------------------------------------------------------


def test_a_developer_changes_the_e_group_cadence_and_reminders_follow(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:50")
    say(w, iid, "reporter-rae", "@incident-bot cadence e-group 30m")
    say(w, iid, "guest-gus", "@incident-bot cadence e-group 15m")
    look(w, clock, iid)
    assert all("refused" in r for r in replies(w, iid)), "Reporters and Guests may not"
    assert "every 1h" in line_of(checklist(w, iid), "Broader e-group")
    say(w, iid, "sec-oncall", "@incident-bot cadence e-group 30m")
    look(w, clock, iid)
    assert "Broader e-group: status updates every 30m, requested by ` sec-oncall `" in replies(w, iid)[-1]
    row = line_of(checklist(w, iid), "Broader e-group")
    assert "every 30m (requested by @sec-oncall)" in row, row

    at(clock, "10:00")  # the Sr. Director's hourly window; e-group now counts from 09:50
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 1
    first = read(reminders(w, iid)[0])[1]
    assert "Sr. Director of Security" in first and "Broader e-group" not in first
    at(clock, "10:20")
    look(w, clock, iid)
    assert len(reminders(w, iid)) == 2 and "Broader e-group" in read(reminders(w, iid)[1])[1]
    for hhmm in ("10:25", "10:49"):
        at(clock, hhmm)
        look(w, clock, iid)
    assert len(reminders(w, iid)) == 2, "one per window, on every run"

    w.sim.reset_log()
    look(w, clock, iid)
    assert w.sim.writes() == [] and len(w.sim.requests) == 3, "a no-op run is still three reads"

    at(clock, "10:55")
    say(w, iid, "sec-oncall", "@incident-bot cadence e-group default")
    look(w, clock, iid)
    assert "every 1h" in line_of(checklist(w, iid), "Broader e-group")
    at(clock, "11:00")  # the Sr. Director's second window; e-group back to 1h from 10:55
    look(w, clock, iid)
    assert "Broader e-group" not in read(reminders(w, iid)[-1])[1]
    at(clock, "11:55")
    look(w, clock, iid)
    assert "Broader e-group" in read(reminders(w, iid)[-1])[1]


def test_help_lists_the_cadence_command_and_a_typo_gets_a_suggestion(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "sec-oncall", "@incident-bot help")
    say(w, iid, "sec-oncall", "@incident-bot cadence egroup 30m")
    say(w, iid, "sec-oncall", "@incident-bot cadence e-group 5m")
    look(w, clock, iid)
    answers = replies(w, iid)  # posted in one round, in any order

    def reply_to(command: str) -> str:
        return next(a for a in answers if f"` {command} `" in a)

    help_, typo, short = (reply_to(c) for c in ("help", "cadence egroup 30m", "cadence e-group 5m"))
    assert "@incident-bot cadence ENGAGEMENT 30m" in help_ and "sr-director-security" in help_
    assert "did you mean e-group?" in typo
    assert "between 15m and 4h" in short


# ---- comms in the plan's order --------------------------------------------------------------------------


def child_of(w: World, label: str) -> int:
    return next(c["iid"] for c in w.children() if label in c["labels"])


def order_lines(w: World, iid: int) -> list[str]:
    return [line for n in w.bot_notes(iid) for line in read(n["body"])[1].splitlines() if "against the plan" in line]


def test_the_blog_closed_before_the_customer_email_is_said_once_on_the_incident_and_on_the_child(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    blog, email = child_of(w, "comms-blog"), child_of(w, "comms-email")
    at(clock, "10:10")
    w.sim.state.close_issue(w.project, blog, actor="sec-oncall")
    w.sim.reset_log()
    look(w, clock, iid)
    child_reads = w.sim.count("GET", rf"/issues/{blog}/discussions")
    assert child_reads == 1, "one read of the child's comments, only because something is to be said"
    on_child = w.bot_notes(blog)
    assert len(on_child) == 1
    text = read(on_child[0]["body"])[1]
    assert "rule customers-first" in text and "@sec-oncall" in text and f"#{email}" in text
    assert len(order_lines(w, iid)) == 1
    assert "⚠ closed before comms-email (rule: customers-first)" in line_of(checklist(w, iid), f"#{blog}")

    w.sim.reset_log()
    look(w, clock, iid)
    assert w.sim.writes() == [] and len(w.sim.requests) == 3, "settled: the order check costs no call"

    at(clock, "10:30")  # reopened and closed again: still once
    w.sim.state.reopen_issue(w.project, blog, actor="sec-oncall")
    look(w, clock, iid)
    assert "⚠" not in line_of(checklist(w, iid), f"#{blog}")
    w.sim.state.close_issue(w.project, blog, actor="sec-oncall")
    look(w, clock, iid)
    assert len(w.bot_notes(blog)) == 1 and len(order_lines(w, iid)) == 1
    assert "⚠ closed before comms-email" in line_of(checklist(w, iid), f"#{blog}")

    say(w, iid, "sec-incident-manager", "@incident-bot status")
    look(w, clock, iid)
    status = replies(w, iid)[-1]
    assert f"#{email} Incident response customer email: opened, assigned to @mpm-oncall" in status
    assert f"#{blog} Mitigation and response blog post: closed, assigned to @sec-oncall" in status
    assert "Comms in the plan's order: not kept" in status


def test_in_order_there_is_nothing_to_say(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "10:10")
    w.sim.state.close_issue(w.project, child_of(w, "comms-email"), actor="mpm-oncall")
    at(clock, "10:20")
    w.sim.state.close_issue(w.project, child_of(w, "comms-blog"), actor="sec-oncall")
    w.sim.reset_log()
    look(w, clock, iid)
    assert w.sim.count("GET", r"/issues/\d+/discussions") == 1, "the incident's comments only"
    assert order_lines(w, iid) == [] and w.bot_notes(child_of(w, "comms-blog")) == []


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_crash_after_each_write_and_an_empty_database_still_say_it_once(default_config, k):
    clock = ManualClock(T0)
    with SimulatedGitLab(now=clock) as sim:
        w = world(sim, default_config)
        iid = w.incident(*S1)
        look(w, clock, iid)
        blog = child_of(w, "comms-blog")
        at(clock, "10:10")
        sim.state.close_issue(w.project, blog, actor="sec-oncall")
        sim.crash_after_writes(k)  # the comment on the child, the checklist, the status log line
        r = w.reconciler(clock=clock, policy=fast_policy(max_attempts=1))
        try:
            with pytest.raises(GitLabCallError):
                r.reconcile(bodies_ref(w, iid))
        finally:
            r.close()
        sim.recover()
        look(w, clock, iid)  # a fresh process: new client, new caches, empty database
        look(w, clock, iid)
        assert len(w.bot_notes(blog)) == 1, f"crash after write {k}"
        assert len(order_lines(w, iid)) == 1, f"crash after write {k}"


def bodies_ref(w: World, iid: int):
    from bot.core.model import IncidentRef

    return IncidentRef(w.project, iid)


def test_child_comment_has_no_stray_escapes(w, clock):
    iid = w.incident(*S1, "comms-faq", "comms-social")
    look(w, clock, iid)
    social = child_of(w, "comms-social")
    at(clock, "10:10")
    w.sim.state.close_issue(w.project, social, actor="comms-oncall")
    look(w, clock, iid)
    notes = w.bot_notes(social)
    assert len(notes) == 2, "two rules broken: customers first, advocates before public material"
    for n in notes:
        text = read(n["body"])[1]
        assert "\\" not in text and "@comms-oncall" in text
    assert bodies.logged_keys(notes[0]["body"]) != bodies.logged_keys(notes[1]["body"])
    assert len(order_lines(w, iid)) == 2
