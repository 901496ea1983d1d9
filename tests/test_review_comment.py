"""The communications review on the incident, as its reviewers see it: one comment, posted at the all clear or
on ``@incident-bot report``, edited in place as late facts arrive, never a second one after a crash."""

from __future__ import annotations

import pytest

from bot.commands.world import World
from bot.gitlab.errors import GitLabCallError
from tests.conftest import at, look
from tests.rendered import rendered_lines

TITLE = "Communications review"


def reviews(w: World, iid: int) -> list[dict]:
    return [n for n in w.bot_notes(iid) if f"### {TITLE}" in n["body"]]


def line(note: dict, name: str) -> str:
    """The metric's line as GitLab shows it."""
    return next(x.text for x in rendered_lines(note["body"]) if x.text.startswith(f"{name}:"))


def labels(w: World, iid: int, *add: str, remove: tuple[str, ...] = ()) -> None:
    current = w.sim.state.get_issue(w.project, iid)["labels"]
    wanted = [lb for lb in current if lb not in remove] + [a for a in add if a not in current]
    w.sim.state.set_labels(w.project, iid, wanted, actor="sec-oncall")


def child_iid(w: World, label: str) -> int:
    return next(c["iid"] for c in w.children() if label in c["labels"])


def to_all_clear(w: World, clock, title: str = "Customer data exposed") -> int:
    """Declared 09:00 with two channels, scoped 09:20, the email sent 10:30, all clear 11:00."""
    at(clock, "09:00")
    iid = w.incident("severity::1", "comms-email", "comms-faq", title=title)
    look(w, clock, iid)
    at(clock, "09:20")
    labels(w, iid, "comms::scoped", remove=("comms::investigating",))
    look(w, clock, iid)
    at(clock, "10:30")
    w.sim.state.close_issue(w.project, child_iid(w, "comms-email"), actor="mpm-oncall")
    look(w, clock, iid)
    at(clock, "11:00")
    labels(w, iid, "comms::all-clear", remove=("comms::scoped",))
    return iid


def test_the_all_clear_posts_one_review_and_a_late_fact_edits_it_in_place(w, clock):
    iid = to_all_clear(w, clock)
    assert reviews(w, iid) == []
    look(w, clock, iid)
    [review] = reviews(w, iid)
    assert line(review, "declared_to_scoped").startswith("declared_to_scoped: 20m")
    assert line(review, "scoped_to_first_external_comms").startswith("scoped_to_first_external_comms: 1h 10m")
    assert line(review, "channel:comms-faq:opened_to_sent").startswith("channel:comms-faq:opened_to_sent: — ·")
    # Nothing new: nothing written, and the review costs one read (the label events).
    w.sim.reset_log()
    look(w, clock, iid)
    assert w.sim.writes() == []
    assert sum(r.path.endswith("/resource_label_events") for r in w.sim.requests) == 1
    # The FAQ goes out after the all clear: the same comment now measures it.
    at(clock, "12:15")
    w.sim.state.close_issue(w.project, child_iid(w, "comms-faq"), actor="comms-oncall")
    look(w, clock, iid)
    [edited] = reviews(w, iid)
    assert edited["id"] == review["id"]
    assert line(edited, "channel:comms-faq:opened_to_sent").startswith("channel:comms-faq:opened_to_sent: 3h 15m")


def test_each_metric_is_its_own_line_in_gitlab(w, clock):
    iid = to_all_clear(w, clock)
    look(w, clock, iid)
    [review] = reviews(w, iid)
    lines = rendered_lines(review["body"])
    items = [line.text for line in lines if line.block == "li"]
    names = ("declared_to_seoc_assigned", "declared_to_roles_named", "declared_to_scoped",
             "scoped_to_first_external_comms", "channel:comms-email:opened_to_sent", "pages:paged_to_acknowledged")
    for name in names:
        assert sum(text.startswith(f"{name}:") for text in items) == 1, (name, items)
    assert lines[0].text == TITLE and lines[0].block == "h3"


def _writes_until_review(w: World, clock) -> int:
    """How many writes the all clear's look makes up to and including the review's comment (a rehearsal
    incident alike in every way, in the same world)."""
    iid = to_all_clear(w, clock, title="Rehearsal")
    w.sim.reset_log()
    look(w, clock, iid)
    writes = w.sim.writes()
    return next(k for k, r in enumerate(writes, 1) if r.method == "POST" and TITLE in str(r.json))


def test_a_lost_answer_after_the_review_was_posted_then_a_rerun_keeps_one_review(w, clock):
    """GitLab saved the review, then the connection died before its answer (and the process with it)."""
    k = _writes_until_review(w, clock)
    iid = to_all_clear(w, clock)
    w.sim.crash_after_writes(k)
    with pytest.raises(GitLabCallError):
        look(w, clock, iid)
    assert len(reviews(w, iid)) == 1  # the lost answer's comment is there
    w.sim.recover()
    at(clock, "11:01")
    look(w, clock, iid)
    look(w, clock, iid)
    [review] = reviews(w, iid)
    assert line(review, "declared_to_scoped").startswith("declared_to_scoped: 20m")


def test_the_report_command_posts_the_review_before_the_all_clear_and_keeps_it_current(w, clock):
    at(clock, "09:00")
    iid = w.incident("severity::1", "comms-email")
    look(w, clock, iid)
    at(clock, "09:30")
    w.sim.state.add_note(w.project, iid, "@incident-bot report", author="sec-oncall")
    look(w, clock, iid)
    [review] = reviews(w, iid)
    assert line(review, "declared_to_scoped").endswith("comms::scoped was never added to the incident")
    at(clock, "09:40")
    labels(w, iid, "comms::scoped", remove=("comms::investigating",))
    look(w, clock, iid)
    [edited] = reviews(w, iid)
    assert edited["id"] == review["id"] and line(edited, "declared_to_scoped").startswith("declared_to_scoped: 40m")


def test_before_the_all_clear_and_without_the_command_there_is_no_review_and_no_extra_read(w, clock):
    iid = w.incident("severity::1", "comms-email")
    w.sim.reset_log()
    look(w, clock, iid)
    assert reviews(w, iid) == []
    assert not any(r.path.endswith("/resource_label_events") for r in w.sim.requests)


def test_a_child_sent_after_the_incident_was_closed_still_reaches_the_review(w, clock):
    iid = to_all_clear(w, clock)
    look(w, clock, iid)
    at(clock, "11:30")
    w.sim.state.close_issue(w.project, iid, actor="secops-oncall")
    look(w, clock, iid)
    [review] = reviews(w, iid)
    at(clock, "13:00")
    w.sim.state.close_issue(w.project, child_iid(w, "comms-faq"), actor="comms-oncall")
    look(w, clock, iid)
    [edited] = reviews(w, iid)
    assert edited["id"] == review["id"]
    assert line(edited, "channel:comms-faq:opened_to_sent").startswith("channel:comms-faq:opened_to_sent: 4h")
