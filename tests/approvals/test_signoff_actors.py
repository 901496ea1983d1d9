"""Who may sign off, one test per person around the incident: an outsider, a Guest, a Reporter, a Developer
outside the chains, and a Maintainer who edits what the bot wrote. Bundled policy, simulated GitLab."""

from __future__ import annotations

from bot.commands.world import World
from bot.core import drafts
from bot.simgitlab import ManualClock
from tests.approvals.support import (
    DIRECTOR,
    DRAFT,
    checklist,
    child_of,
    log_lines,
    opened,
    replies,
    say,
    signoff_rows,
    write_draft,
)
from tests.conftest import look

DIGEST = drafts.digest(DRAFT)
READY = "comms-approved"
GUEST, REPORTER, MAINTAINER = 10, 20, 40


def _person(w: World, name: str, level: int | None) -> None:
    w.sim.state.add_user(name)
    if level is not None:
        w.sim.state.add_member(w.project, name, level)


def _drafted(w: World, clock: ManualClock) -> int:
    iid = opened(w, clock)
    write_draft(w, DRAFT)
    look(w, clock, iid)
    return iid


def _refused_and_nothing_recorded(w: World, iid: int) -> str:
    (reply,) = replies(w, iid, "approve")
    assert "✗" in reply
    assert READY not in child_of(w)["labels"] and "sr_director: waiting" in signoff_rows(w, iid)[0]
    return reply


def test_an_outsider_approves_nothing(w: World, clock: ManualClock) -> None:
    iid = _drafted(w, clock)
    _person(w, "olly-outsider", None)
    say(w, iid, f"approve email {DIGEST}", "olly-outsider")
    look(w, clock, iid)
    reply = _refused_and_nothing_recorded(w, iid)
    assert "only project members with at least the Developer role" in reply


def test_a_guest_approves_nothing(w: World, clock: ManualClock) -> None:
    iid = _drafted(w, clock)
    _person(w, "gus-guest", GUEST)
    say(w, iid, f"approve email {DIGEST}", "gus-guest")
    look(w, clock, iid)
    _refused_and_nothing_recorded(w, iid)


def test_a_reporter_in_the_chain_is_refused_as_every_command_of_a_reporter_is(w: World, clock: ManualClock) -> None:
    """The Sr. Director demoted to Reporter: commands need Developer or the allow-list (checked as hand-offs are),
    so the decision does not count and the reply says why."""
    iid = _drafted(w, clock)
    w.sim.state.add_member(w.project, DIRECTOR, REPORTER)
    say(w, iid, f"approve email {DIGEST}", DIRECTOR)
    look(w, clock, iid)
    reply = _refused_and_nothing_recorded(w, iid)
    assert "only project members with at least the Developer role, or people on the bot's allow-list" in reply


def test_a_developer_outside_the_chains_approves_nothing(w: World, clock: ManualClock) -> None:
    iid = _drafted(w, clock)
    say(w, iid, f"approve email {DIGEST}", "sec-oncall")
    look(w, clock, iid)
    reply = _refused_and_nothing_recorded(w, iid)
    assert "only a member of a group the policy names for comms-email may decide" in reply


def test_a_maintainer_labelling_an_unapproved_draft_ready_is_undone_and_logged(w: World, clock: ManualClock) -> None:
    iid = _drafted(w, clock)
    _person(w, "mia-maintainer", MAINTAINER)
    child = child_of(w)
    w.sim.state.update_issue(w.project, child["iid"], actor="mia-maintainer", add_labels=[READY])
    look(w, clock, iid)
    assert READY not in child_of(w)["labels"]
    assert sum("removed ~comms-approved: the current draft is not approved" in ln for ln in log_lines(w, iid)) == 1
    look(w, clock, iid)
    assert sum("removed ~comms-approved" in ln for ln in log_lines(w, iid)) == 1


def test_a_maintainer_editing_the_checklists_sign_off_row_changes_nothing(w: World, clock: ManualClock) -> None:
    iid = _drafted(w, clock)
    _person(w, "mia-maintainer", MAINTAINER)
    note = next(n for n in w.bot_notes(iid) if "communications checklist" in n["body"])
    forged = note["body"].replace("sr_director: waiting", f"sr_director: ✓ approved {DIGEST} by sec-director")
    w.sim.state.edit_note_body(w.project, iid, note["id"], forged, actor="mia-maintainer")
    look(w, clock, iid)
    assert "sr_director: waiting" in signoff_rows(w, iid)[0]  # rewritten from the bot's signed state
    assert READY not in child_of(w)["labels"] and "✓ approved" not in checklist(w, iid)


def test_a_maintainer_removing_the_ready_label_gets_it_back_while_the_draft_is_approved(w: World,
                                                                                        clock: ManualClock) -> None:
    iid = _drafted(w, clock)
    _person(w, "mia-maintainer", MAINTAINER)
    say(w, iid, "approve email", DIRECTOR)
    look(w, clock, iid)
    child = child_of(w)
    w.sim.state.update_issue(w.project, child["iid"], actor="mia-maintainer", remove_labels=[READY])
    look(w, clock, iid)
    assert READY in child_of(w)["labels"]  # the label says what the signed record says
