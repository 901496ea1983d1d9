"""Marking checklist items done: the people around an incident and the bot's checklist boxes.

GitLab lets only a comment's author and Maintainers edit it, task list included (gitlabhq
lib/api/helpers/notes_helpers.rb ``update_note``: ``authorize! :admin_note``; app/policies/note_policy.rb
enables ``admin_note`` for the author, app/policies/project_policy.rb for Maintainers; the simulated GitLab
enforces it, tests/simgitlab/test_simgitlab_conformance.py). So a Developer, most responders, cannot tick
the bot's checklist: ``@incident-bot done ITEM`` marks it done instead, under the same rule as every
command (Developer and up), logged with who and when.
"""

from __future__ import annotations

from typing import Any

import gitlab
import pytest

from bot.commands.world import World
from bot.core.bodies import is_log_thread_note, logged_keys
from bot.text.markers import find_marker
from tests.conftest import at, look

S1 = ("severity::1", "data-breach", "comms-email")
DEVELOPER = "sec-oncall"  # a configured responder: Developer in the incident's project
GUEST, MAINTAINER = "gail-guest", "mallory-maint"
FIRST = "Set up the incident response chat channel"  # first action (1) of the bundled policy


@pytest.fixture
def w(w: World) -> World:
    for name, level in ((GUEST, 10), (MAINTAINER, 40)):
        w.sim.state.add_user(name)
        w.sim.state.add_member(w.project, name, level)
    return w


def checklist(w: World, iid: int) -> dict[str, Any]:
    return next(n for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])


def line(w: World, iid: int, text: str) -> str:
    """The checklist's line holding ``text``, without Markdown escapes."""
    return next(x for x in checklist(w, iid)["body"].replace("\\", "").splitlines() if text in x)


def log_lines(w: World, iid: int) -> list[str]:
    notes = [n["body"] for n in w.bot_notes(iid) if is_log_thread_note(n["body"])]
    return [x for body in notes for x in body.replace("\\", "").splitlines()]


def reply_to(w: World, iid: int, note: dict[str, Any]) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if f"cmd:{note['id']}" in logged_keys(n["body"])).replace("\\", "")


def say(w: World, iid: int, who: str, text: str) -> dict[str, Any]:
    return w.sim.state.add_note(w.project, iid, text, author=who)


def edit_as(w: World, user: str, iid: int, note_id: int, body: str) -> None:
    issue = w.sim.client(user).projects.get(w.project, lazy=True).issues.get(iid, lazy=True)
    issue.notes.update(note_id, {"body": body})


def test_a_developer_cannot_tick_the_checklist_but_marks_an_item_done_by_number_or_name(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    assert line(w, iid, FIRST).startswith("- [ ] (1) ")
    with pytest.raises(gitlab.GitlabUpdateError) as refused:  # GitLab's rule: not the author, not a Maintainer
        edit_as(w, DEVELOPER, iid, checklist(w, iid)["id"], checklist(w, iid)["body"].replace("- [ ]", "- [x]", 1))
    assert refused.value.response_code == 403

    at(clock, "09:10")
    by_number = say(w, iid, DEVELOPER, "@incident-bot done 1")
    by_name = say(w, iid, DEVELOPER, "@incident-bot done E-Group")
    look(w, clock, iid)
    assert line(w, iid, FIRST).startswith("- [x] (1) ") and f"done: @{DEVELOPER} 2026" in line(w, iid, FIRST)
    assert line(w, iid, "Broader e-group").startswith("- [x] (")
    assert "marked done by" in reply_to(w, iid, by_number) and "✓" in reply_to(w, iid, by_name)
    logged = [x for x in log_lines(w, iid) if "marked done" in x]
    assert len(logged) == 2 and all(f"by @{DEVELOPER} at 2026-" in x for x in logged), logged
    state = find_marker(checklist(w, iid)["body"], "checklist")
    assert state is not None and set(state.fields["done"]) == {"first:response-channel", "engagement:e-group"}

    look(w, clock, iid)  # nothing new: no second tick, no second log line
    assert len([x for x in log_lines(w, iid) if "marked done" in x]) == 2

    say(w, iid, DEVELOPER, "@incident-bot undo 1")
    look(w, clock, iid)
    assert line(w, iid, FIRST).startswith("- [ ] (1) ")
    assert any("marked not done" in x for x in log_lines(w, iid))


def test_a_guest_cannot_mark_an_item_done(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    note = say(w, iid, GUEST, "@incident-bot done 1")
    look(w, clock, iid)
    assert "refused" in reply_to(w, iid, note)
    assert line(w, iid, FIRST).startswith("- [ ] (1) ")
    assert not any("marked done" in x for x in log_lines(w, iid))


def test_unknown_items_are_refused_with_the_list(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    note = say(w, iid, DEVELOPER, "@incident-bot done 99")
    look(w, clock, iid)
    reply = reply_to(w, iid, note)
    assert "no checklist item" in reply and "1 response-channel" in reply


def test_a_maintainer_ticks_and_unticks_by_hand_and_the_bot_keeps_what_they_did(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    # The Maintainer ticks (2) by hand: it stays ticked, and undo cannot take a hand tick back.
    note = checklist(w, iid)
    edit_as(w, MAINTAINER, iid, note["id"], note["body"].replace("- [ ] (2)", "- [x] (2)"))
    undo = say(w, iid, DEVELOPER, "@incident-bot undo 2")
    look(w, clock, iid)
    assert line(w, iid, "(2)").startswith("- [x] (2)")
    assert "ticked by hand" in reply_to(w, iid, undo)

    # A Developer marks (1) done; the Maintainer unticks that box by hand: it stays unticked.
    say(w, iid, DEVELOPER, "@incident-bot done 1")
    look(w, clock, iid)
    note = checklist(w, iid)
    assert "- [x] (1)" in note["body"]
    edit_as(w, MAINTAINER, iid, note["id"], note["body"].replace("- [x] (1)", "- [ ] (1)"))
    look(w, clock, iid)
    look(w, clock, iid)
    assert line(w, iid, FIRST).startswith("- [ ] (1) ") and "done:" not in line(w, iid, FIRST)
    assert line(w, iid, "(2)").startswith("- [x] (2)")
    state = find_marker(checklist(w, iid)["body"], "checklist")
    assert state is not None and "first:response-channel" not in (state.fields.get("done") or {})
