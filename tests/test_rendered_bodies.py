"""Every body the bot writes, read as GitLab renders it (comrak, soft line breaks), not as its source.

GitLab joins the lines of a paragraph with a space and turns a paragraph followed by a lone ``-`` into a heading
(``tests/rendered.py`` says where that comes from). These tests read the rendered lines a responder sees, for
every template and reply kind, against the simulated GitLab with the clock moved by hand.
"""

from __future__ import annotations

import re

import pytest

from bot.commands.world import World
from bot.text.markers import strip_markers
from tests.conftest import at, look
from tests.rendered import Line, headings, rendered_lines, rendered_text

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
COMMANDS = ("help", "status", "handoff", "snooze", "cadence", "channel", "add", "refresh")


def say(w: World, iid: int, who: str, text: str) -> None:
    w.sim.state.add_note(w.project, iid, text, author=who)


def bot_bodies(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid)]


def reply_to(w: World, iid: int, command: str) -> list[Line]:
    """The rendered reply to ``command`` (its text after ``@incident-bot``)."""
    for body in bot_bodies(w, iid):
        lines = rendered_lines(body)
        if lines and re.search(r"[✓✗] " + re.escape(command) + "$", lines[0].text):
            return lines
    raise AssertionError(f"no reply to {command!r}")


@pytest.fixture
def lived(w: World, clock) -> tuple[World, int]:
    """One incident through its life: declared with a channel proposed, every command kind (the proposed channel
    added), a refused one, a reminder, a child closed out of the plan's order, all clear, closed with children
    open; and an incident below the plan's threshold."""
    iid = w.incident("severity::1", "data-breach", "comms-email", "comms-blog")
    look(w, clock, iid)
    for text in (
        "help",
        "status",
        "handoff seoc @secops-oncall",
        "snooze 2h",
        "cadence e-group 30m",
        "add faq",
        "bogus",
        "refresh",
    ):
        say(w, iid, "sec-oncall", f"@incident-bot {text}")
        look(w, clock, iid)
    at(clock, "13:30")
    look(w, clock, iid)  # a reminder
    blog = next(c for c in w.children() if "comms-blog" in c["labels"])
    w.sim.state.close_issue(w.project, blog["iid"])  # before the customer email: against the plan's order
    look(w, clock, iid)
    labels = w.sim.state.get_issue(w.project, iid)["labels"]
    w.sim.state.set_labels(w.project, iid, [*labels, "comms::all-clear"])
    look(w, clock, iid)
    w.sim.state.close_issue(w.project, iid)
    look(w, clock, iid)
    low = w.incident("severity::4")
    look(w, clock, low)
    return w, iid


def every_body(w: World, iid: int) -> list[str]:
    """The bot's comments on every issue, and its children's descriptions."""
    notes = [
        n["body"]
        for issue in w.sim.state.issues(w.project)
        for n in w.sim.state.notes(w.project, issue["iid"], include_system=False)
        if n["author"]["username"] == w.cfg.bot.username
    ]
    return notes + [c["description"] for c in w.all_children()]


def test_no_body_renders_a_heading_it_did_not_write(lived: tuple[World, int]) -> None:
    """A paragraph over a lone ``-`` is a setext heading in GitLab: the bot's bodies have none (it writes only
    ``###`` and ``####`` headings)."""
    w, iid = lived
    bodies = every_body(w, iid)
    kinds = (
        "checklist",
        "status log",
        "Status update due",
        "All clear",
        "was closed while",
        "against the plan's order",
    )
    for kind in kinds:
        assert any(kind in body for body in bodies), f"no {kind!r} body"
    assert any("does not apply to this issue yet" in body for body in bodies), "no out-of-scope body"
    for body in bodies:
        for line in headings(body):
            assert line.block in ("h3", "h4"), f"{line.block} {line.text!r} in:\n{body}"


def test_lines_the_bot_writes_as_lines_are_lines_in_gitlab(lived: tuple[World, int]) -> None:
    """A source line that starts with a bold label (``**Impact:**``) or a reply's verdict starts its own
    rendered line: it is never run into the line before it."""
    w, iid = lived
    for body in every_body(w, iid):
        shown = rendered_text(body)
        for source in strip_markers(body).splitlines():
            start = source.strip()
            if re.match(r"\*\*[^*]+:\*\*", start):
                label = re.sub(r"\\(.)", r"\1", re.match(r"\*\*([^*]+:)\*\*", start).group(1))
                assert any(line.startswith(label) for line in shown), f"{label!r} runs into a line in:\n{body}"


def test_checklist_shows_severity_and_impact_on_their_own_lines(lived: tuple[World, int]) -> None:
    w, iid = lived
    checklist = next(b for b in bot_bodies(w, iid) if "incident-bot:checklist" in b)
    shown = rendered_text(checklist)
    assert any(line.startswith("Severity: critical") and "Impact" not in line for line in shown), shown
    assert "Impact: data-breach" in shown


def test_help_lists_each_command_as_its_own_item(lived: tuple[World, int]) -> None:
    w, iid = lived
    lines = reply_to(w, iid, "help")
    items = [line.text for line in lines if line.block == "li"]
    assert [re.match(r"@incident-bot (\w+)", item).group(1) for item in items] == [
        "status",
        "handoff",
        "snooze",
        "cadence",
        "add",
        "channel",
        "done",
        "refresh",
        "report",
        "clock",
        "approve",
        "help",
    ], items


def test_an_added_channel_is_listed_and_no_longer_proposed(lived: tuple[World, int]) -> None:
    w, iid = lived
    checklist = next(b for b in bot_bodies(w, iid) if "incident-bot:checklist" in b)
    shown = rendered_text(checklist)
    assert not any(line.startswith("Proposed:") for line in shown), "added: no longer proposed"
    assert any(re.match(r"\[ \] #\d+ Customer FAQ · DRI", line) for line in shown), shown
    assert reply_to(w, iid, "add faq")[1].text.startswith("added comms-faq to the incident")


def test_status_prefill_shows_six_points_alike(lived: tuple[World, int]) -> None:
    """Each of the six points is the same kind of line (bold, in a paragraph), empty or not."""
    w, iid = lived
    lines = reply_to(w, iid, "status")
    points = [line for line in lines if re.match(r"\d\. ", line.text)]
    assert [p.text.split(".")[0] for p in points] == ["1", "2", "3", "4", "5", "6"], [line.text for line in lines]
    assert {p.block for p in points} == {"p"}, points


@pytest.mark.parametrize(
    "command", ["handoff seoc @secops-oncall", "snooze 2h", "cadence e-group 30m", "add faq", "bogus"]
)
def test_a_replys_verdict_and_its_message_are_two_lines(lived: tuple[World, int], command: str) -> None:
    w, iid = lived
    lines = reply_to(w, iid, command)
    assert len(lines) >= 2, lines
    assert lines[0].text.startswith("@sec-oncall ")
    assert lines[0].text.endswith(command)
    assert lines[1].text, lines


def test_a_filled_in_prefill_counts_as_a_status_update(w: World, clock) -> None:
    """What a responder does with the pre-fill: copy it, write under each point, post it."""
    iid = w.incident(*S1)
    look(w, clock, iid)
    say(w, iid, "sec-oncall", "@incident-bot status")
    look(w, clock, iid)
    prefill = next(b for b in bot_bodies(w, iid) if "Status update ·" in b)
    template = strip_markers(prefill).split("post it:", 1)[1]
    filled = re.sub(r"^- $", "- written by the SIMOC", template, flags=re.M)
    at(clock, "09:40")
    say(w, iid, "sec-incident-manager", filled)
    look(w, clock, iid)
    checklist = next(b for b in bot_bodies(w, iid) if "incident-bot:checklist" in b)
    assert "Last update: 2026-11-30 09:40 UTC by @sec-incident-manager" in rendered_text(checklist)
