"""A quiet incident: the status log is one thread, a command is answered in its own thread, and only what
must be seen (the checklist, the log's thread, reminders, the final comms, the communications review) is a
top-level comment."""

from __future__ import annotations

import re
from typing import Any

from bot.commands.world import World
from bot.core import bodies
from tests.conftest import at, look
from tests.security.gitlab_render import read, references
from tests.security.test_maintainer import as_written_by_the_earlier_version

BOT = "incident-bot"


def add_labels(w: World, iid: int, *labels: str) -> None:
    current = w.sim.state.get_issue(w.project, iid)["labels"]
    w.sim.state.set_labels(w.project, iid, [*current, *labels])


def threads(w: World, iid: int) -> list[dict[str, Any]]:
    """The incident's discussions without system notes, as a person scrolls them."""
    found = []
    for d in w.sim.state.discussions(w.project, iid):
        notes = [n for n in d["notes"] if not n["system"]]
        if notes:
            found.append({**d, "notes": notes})
    return found


def started_by_bot(w: World, iid: int) -> list[dict[str, Any]]:
    return [d for d in threads(w, iid) if d["notes"][0]["author"]["username"] == BOT]


def kind(discussion: dict[str, Any]) -> str:
    body = discussion["notes"][0]["body"]
    if bodies.find_checklist_marker(body):
        return "checklist"
    if bodies.is_log_thread_note(body):
        return "status log"
    if "Status update due" in body:
        return "reminder"
    if "All clear" in body:
        return "final comms"
    if "### Communications review" in body:
        return "communications review"
    return body[:60]


def thread_of(w: World, iid: int, note_id: int) -> dict[str, Any]:
    return next(d for d in threads(w, iid) if note_id in {n["id"] for n in d["notes"]})


def log_lines(w: World, iid: int) -> list[str]:
    """Every entry of the status log thread, as rendered text, one per bullet."""
    (log,) = [d for d in started_by_bot(w, iid) if kind(d) == "status log"]
    lines: list[str] = []
    for note in log["notes"]:
        assert note["author"]["username"] == BOT  # nobody else writes in it
        lines += [ln[2:] for ln in note["body"].splitlines() if ln.startswith("- ")]
    return lines


def test_an_s1_incident_through_all_clear_keeps_five_top_level_bot_comments(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    at(clock, "09:05")
    add_labels(w, iid, "comms-email")  # label change 1
    look(w, clock, iid)
    at(clock, "09:10")
    add_labels(w, iid, "comms-faq")  # label change 2
    look(w, clock, iid)

    at(clock, "09:15")  # command 1: top-level
    status = w.sim.state.add_note(w.project, iid, "@incident-bot status", author="sec-incident-manager")
    look(w, clock, iid)
    at(clock, "09:20")  # command 2: a reply in a person's thread
    question = w.sim.state.add_note(w.project, iid, "Who takes comms tonight?", author="sec-oncall")
    handoff = w.sim.state.add_note(
        w.project, iid, "@incident-bot handoff cmoc @pr-manager", author="comms-oncall", reply_to=question["id"]
    )
    look(w, clock, iid)
    at(clock, "09:25")  # command 3: an internal note
    helpme = w.sim.state.add_note(w.project, iid, "@incident-bot help", author="sec-oncall", internal=True)
    look(w, clock, iid)

    at(clock, "10:00")  # a status update is due: one reminder
    look(w, clock, iid)
    at(clock, "10:05")
    add_labels(w, iid, "comms::all-clear")
    look(w, clock, iid)
    look(w, clock, iid)  # and a look with nothing new

    assert [kind(d) for d in started_by_bot(w, iid)] == [
        "checklist", "status log", "reminder", "final comms", "communications review"
    ]

    # Each command is answered in its own thread, right under it; the internal one internally.
    for command in (status, handoff, helpme):
        replies = [n for n in thread_of(w, iid, command["id"])["notes"] if n["author"]["username"] == BOT]
        assert len(replies) == 1, command["body"]
        assert replies[0]["internal"] == (command is helpme)
    assert [n["id"] for n in thread_of(w, iid, question["id"])["notes"]][:2] == [question["id"], handoff["id"]]

    lines = log_lines(w, iid)
    linked = {ref for line in lines for ref in references(line)}
    for child in w.children():  # each child and each person is named by a reference GitLab links
        assert ("issue", f"#{child['iid']}") in linked, child["title"]
    assert ("mention", "@pr-manager") in linked
    assert any("CMOC handed over to @pr-manager" in read(line)[1] for line in lines)
    for line in lines:  # one line each, that reads as it was written: no stray backslash
        text = read(line)[1]
        assert "\n" not in text.strip() and "\\" not in text, line


def test_a_log_made_of_separate_comments_is_left_alone_and_continued_in_a_thread(w, clock):
    """An incident from before the log was a thread (and its keys were signed): its comments stay as they
    are, nothing is logged twice, and the next change continues the thread the re-signing started."""
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    (log,) = [d for d in started_by_bot(w, iid) if kind(d) == "status log"]
    old = log["notes"][0]
    as_written_by_the_earlier_version(w, iid)
    # What an older version wrote: a plain top-level comment whose (unsigned) marker does not name the thread.
    record = w.sim.state.notes_by_id[old["id"]]
    record.threaded = False
    record.body = re.sub(r',?"thread":true', "", record.body)
    before = record.body
    assert not bodies.is_log_thread_note(before) and bodies.logged_keys(before)

    look(w, clock, iid)
    look(w, clock, iid)
    assert record.body == before  # nothing edited
    assert len(log_lines(w, iid)) == 1 and log_lines(w, iid)[0].startswith("re-signed ")  # nothing re-logged

    at(clock, "09:05")
    add_labels(w, iid, "comms-email")
    look(w, clock, iid)
    top = [d["notes"][0]["id"] for d in started_by_bot(w, iid)]
    assert old["id"] in top and [kind(d) for d in started_by_bot(w, iid)].count("status log") == 1
    assert record.body == before
    lines = log_lines(w, iid)  # only the new change: what the old comment logged is not logged again
    assert len(lines) == 2 and lines[1].startswith("opened #")


def test_a_deleted_log_thread_is_started_again_and_a_deleted_command_thread_gets_a_top_level_reply(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    (log,) = [d for d in started_by_bot(w, iid) if kind(d) == "status log"]
    for note in log["notes"]:  # a Maintainer deletes the whole log thread
        w.sim.state.delete_note(w.sim.state.notes_by_id[note["id"]])
    at(clock, "09:05")
    add_labels(w, iid, "comms-email")
    look(w, clock, iid)
    assert [kind(d) for d in started_by_bot(w, iid)].count("status log") == 1
    assert any(line.startswith("opened #") for line in log_lines(w, iid))
