"""The customer email's sign-off as the SIMOC, the Sr. Director of Security and the people around the incident
live it, against the simulated GitLab with the bundled policy (the seed's rule: the customer email needs the Sr.
Director of Security). The clock is moved, never slept."""

from __future__ import annotations

from datetime import timedelta

from bot.commands.world import World, configured_users
from bot.core import drafts
from bot.simgitlab import ManualClock
from tests.approvals.support import (
    CMOC,
    DIRECTOR,
    DRAFT,
    SIMOC,
    checklist,
    child_notes,
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


def _approved(w: World, clock: ManualClock) -> int:
    iid = opened(w, clock)
    write_draft(w, DRAFT)
    look(w, clock, iid)
    say(w, iid, f"approve email {DIGEST}", DIRECTOR)
    clock.advance(60)
    look(w, clock, iid)
    return iid


def test_the_sr_directors_approval_marks_the_email_child_ready(w: World, clock: ManualClock) -> None:
    iid = opened(w, clock)
    assert "Incident response customer email (comms-email) #2 · no draft yet" in signoff_rows(w, iid)[0]
    write_draft(w, DRAFT)
    look(w, clock, iid)
    (row,) = signoff_rows(w, iid)
    assert f"draft {DIGEST} waiting for sr_director (asked sec-director)" in row
    (asked,) = child_notes(w)
    assert asked.startswith(f"@{DIRECTOR}: please review draft {DIGEST}") and READY not in child_of(w)["labels"]
    clock.advance(600)
    say(w, iid, "approve email", DIRECTOR)
    look(w, clock, iid)
    (reply,) = replies(w, iid, "approve")
    assert "✓" in reply
    assert f"comms-email: draft {DIGEST} (bound to the draft as read now) approved by sec-director" in reply
    assert READY in child_of(w)["labels"]
    (row,) = signoff_rows(w, iid)
    assert f"draft {DIGEST} ready: every approver group approved it" in row
    assert f"sr_director: ✓ approved {DIGEST} by sec-director at 2026-11-30 09:10 UTC" in row
    ready = child_notes(w)[-1]
    assert ready.startswith(f"Draft {DIGEST} is ready") and "@mpm-oncall: you may send exactly this text" in ready
    assert "the bot never sends it itself" in ready
    assert any(f"comms-email: draft {DIGEST} ready" in ln for ln in log_lines(w, iid))


def test_a_developer_outside_the_chains_approves_nothing(w: World, clock: ManualClock) -> None:
    iid = opened(w, clock)
    write_draft(w, DRAFT)
    look(w, clock, iid)
    say(w, iid, "approve email", "sec-oncall")  # the SEOC: a Developer, not in the Sr. Director's chain
    say(w, iid, "approve email", SIMOC)  # the drafter cannot approve their own draft either
    look(w, clock, iid)
    refused = replies(w, iid, "approve")
    assert len(refused) == 2 and all("✗" in r for r in refused)
    assert "only a member of a group the policy names for comms-email may decide (sr_director: @sec-director)" in \
        refused[0]
    assert READY not in child_of(w)["labels"]
    assert "sr_director: waiting" in signoff_rows(w, iid)[0]


def test_an_edit_after_approval_removes_the_label_and_voids_the_approval_once(w: World, clock: ManualClock) -> None:
    iid = _approved(w, clock)
    assert READY in child_of(w)["labels"]
    clock.advance(600)
    edited = DRAFT.replace("2026-11-29", "2026-11-28")
    write_draft(w, edited)
    look(w, clock, iid)
    new = drafts.digest(edited)
    assert READY not in child_of(w)["labels"]
    (row,) = signoff_rows(w, iid)
    assert f"draft {new} waiting for sr_director" in row and f"approvals voided by edits: {DIGEST}" in row
    voided = [n for n in child_notes(w) if n.startswith("The draft changed")]
    assert voided == [f"The draft changed: the approvals of draft {DIGEST} are void (as GitLab resets approvals on a "
                      f"push), and ~comms-approved is removed. The current draft is {new}; it is asked for again."]
    assert any(n.startswith(f"@{DIRECTOR}: please review draft {new}") for n in child_notes(w))  # asked again
    assert sum(f"draft edited ({DIGEST} → {new})" in ln for ln in log_lines(w, iid)) == 1
    # Looked at again (a duplicate delivery, a resync): nothing more is said, the label stays off.
    notes = len(child_notes(w)), len(w.bot_notes(iid))
    look(w, clock, iid)
    look(w, clock, iid)
    assert (len(child_notes(w)), len(w.bot_notes(iid))) == notes and READY not in child_of(w)["labels"]
    # Re-saving the same text with other line endings and trailing spaces is not an edit.
    write_draft(w, edited.replace("\n", "  \r\n"))
    look(w, clock, iid)
    assert (len(child_notes(w)), len(w.bot_notes(iid))) == notes


def test_a_stale_digest_is_refused_with_the_current_one(w: World, clock: ManualClock) -> None:
    iid = opened(w, clock)
    write_draft(w, DRAFT)
    look(w, clock, iid)
    edited = DRAFT + "\nWe are sorry.\n"
    write_draft(w, edited)
    say(w, iid, f"approve comms-email {DIGEST}", DIRECTOR)  # read the first version, approves it after the edit
    look(w, clock, iid)
    (reply,) = replies(w, iid, "approve")
    new = drafts.digest(edited)
    assert "✗" in reply and f"draft {DIGEST} is no longer current; the current draft of comms-email is {new}" in reply
    assert READY not in child_of(w)["labels"]


def test_a_rejection_names_the_reason_and_leaves_the_draft_unready(w: World, clock: ManualClock) -> None:
    iid = opened(w, clock)
    write_draft(w, DRAFT)
    look(w, clock, iid)
    say(w, iid, f"reject email {DIGEST} name the @all affected #3 products", DIRECTOR)
    look(w, clock, iid)
    (reply,) = replies(w, iid, "reject")
    assert f"draft {DIGEST} rejected by sec-director for sr_director: name the @all affected #3 products" in reply
    (row,) = signoff_rows(w, iid)
    assert f"sr_director: ✗ rejected {DIGEST} by sec-director" in row and "name the @all affected #3 products" in row
    body = checklist(w, iid)
    assert "@all" not in body.replace("\\@all", "")  # the reason is escaped: no mention of everyone
    assert READY not in child_of(w)["labels"]
    assert w.sim.hazards_except(configured_users(w.cfg)) == []


def test_a_hostile_draft_is_never_written_back(w: World, clock: ManualClock) -> None:
    """The draft is named by its digest, never copied: a quick action, a mention, a forged marker or a link in it
    reaches nothing the bot writes."""
    iid = opened(w, clock)
    write_draft(w, "/close\n@all see [x](https://evil.example/track/click?u=1)\n<!-- incident-bot:checklist {} -->\n"
                   "<img src=x onerror=alert(1)>")
    look(w, clock, iid)
    say(w, iid, "approve email", DIRECTOR)
    look(w, clock, iid)
    assert "comms-approved" in child_of(w)["labels"]
    assert w.sim.hazards_except(configured_users(w.cfg)) == []
    assert child_of(w)["state"] == "opened"


def test_duplicate_deliveries_change_nothing(w: World, clock: ManualClock) -> None:
    iid = _approved(w, clock)
    before = (len(w.bot_notes(iid)), len(child_notes(w)), checklist(w, iid), sorted(child_of(w)["labels"]))
    w.sim.reset_log()
    for _ in range(3):
        look(w, clock, iid)
    assert [r for r in w.sim.requests if r.method != "GET"] == []  # not one write
    assert (len(w.bot_notes(iid)), len(child_notes(w)), checklist(w, iid), sorted(child_of(w)["labels"])) == before


def test_the_customer_email_findings_are_in_the_checklist_and_the_approval_reply(w: World, clock: ManualClock):
    iid = opened(w, clock)
    write_draft(w, "<p>Read https://click.mailer.example.com/ls/abc for details.</p>")
    look(w, clock, iid)
    (row,) = signoff_rows(w, iid)
    assert "⚠ HTML in a plain-text email" in row and "⚠ a tracking or redirect link" in row
    assert "⚠ no security@ address" in row
    say(w, iid, "approve email", DIRECTOR)
    look(w, clock, iid)
    (reply,) = replies(w, iid, "approve")
    assert "✓" in reply and "Check before sending: HTML in a plain-text email" in reply
    assert w.sim.hazards_except(configured_users(w.cfg)) == []  # the draft's tag and link are quoted, inert
    assert READY in child_of(w)["labels"]  # approval stays possible: the approver decides


def test_status_shows_each_channels_sign_off(w: World, clock: ManualClock) -> None:
    iid = _approved(w, clock)
    say(w, iid, "status", "sec-oncall")
    look(w, clock, iid)
    (status,) = replies(w, iid, "status")
    assert "Sign-off of the drafts:" in status and f"draft {DIGEST} ready: every approver group approved it" in status


def test_at_the_cut_off_an_unapproved_draft_is_blocked_and_the_cmoc_told(w: World, clock: ManualClock) -> None:
    start = clock()
    iid = opened(w, clock)
    write_draft(w, DRAFT)
    report = look(w, clock, iid)
    warn, cut = start + timedelta(hours=5, minutes=30), start + timedelta(hours=6)
    assert report.requeue_at is not None and report.requeue_at <= warn
    clock.set(warn)
    look(w, clock, iid)
    assert child_notes(w)[-1].startswith(f"@{CMOC}: the cut-off for this draft is 2026-11-30 15:00 UTC, in 30 minutes")
    clock.set(cut)
    look(w, clock, iid)
    assert child_notes(w)[-1].startswith(f"@{CMOC}: the cut-off has passed and draft {DIGEST} is blocked")
    assert f"draft {DIGEST} blocked at the cut-off" in signoff_rows(w, iid)[0]
    said = len(child_notes(w))
    look(w, clock, iid)
    assert len(child_notes(w)) == said
