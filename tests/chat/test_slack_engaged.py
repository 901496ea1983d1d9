"""Engagements the bot carried out itself in Slack show as engaged in the incident's checklist: ticked, with
when and where, one checklist edit per batch of Slack messages (the real ``slack_sdk`` over HTTP to the
simulated Slack, the simulated GitLab, the GitLab and Slack workers on one injected clock)."""

from __future__ import annotations

from typing import Any

from bot.core import bodies
from bot.store import JobState
from bot.text.markers import parse_markers
from tests import store_inspect as peek
from tests.chat import test_slack_acceptance as acceptance
from tests.chat.test_slack_acceptance import Incident

make, slack_sim = acceptance.make, acceptance.slack_sim  # the acceptance test's fixtures


def checklist(inc: Incident, iid: int) -> str:
    (note,) = [n for n in inc.w.bot_notes(iid) if bodies.find_checklist_marker(n["body"])]
    return str(note["body"])


def row(body: str, engagement: str) -> str:
    """The checklist line of an engagement, found by its item marker."""
    (line,) = [ln for ln in body.splitlines()
               if any(m.fields.get("id") == f"engagement:{engagement}" for m in parse_markers(ln))]
    return line


def queued_now(inc: Incident, iid: int) -> bool:
    """Whether the incident's GitLab job is ready now (not just its next reminder's look, later)."""
    job = peek.active_job(inc.store, f"{inc.w.project_id}#{iid}")
    return job is not None and job.state is JobState.PENDING and job.not_before <= inc.clock()


def checklist_edits(inc: Incident) -> int:
    return len([r for r in inc.w.sim.writes() if r.method == "PUT" and "/notes/" in r.path])


def test_an_engagement_the_bot_sent_in_slack_is_ticked_with_when_and_where(make: Any) -> None:
    inc: Incident = make()
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    before = checklist(inc, iid)
    assert row(before, "e-group").startswith("- [ ] "), "nothing sent yet: not engaged"
    sent_at = inc.clock()
    inc.send()
    assert queued_now(inc, iid), "the Slack worker queued the incident's GitLab job"
    edits = checklist_edits(inc)
    inc.reconcile()  # the queued job only
    after = checklist(inc, iid)
    egroup = row(after, "e-group")
    assert egroup.startswith("- [x] "), egroup
    assert f"engaged {sent_at:%Y-%m-%d %H:%M} UTC via Slack ` #e-group `" in egroup
    director = row(after, "sr-director-security")
    assert director.startswith("- [x] ") and "via Slack ` email:sec-director@example.com `" in director
    legal = row(after, "legal")
    assert legal.startswith("- [ ] ") and "via Slack" not in legal, "its route is the incident channel: none yet"
    assert checklist_edits(inc) == edits + 1, "one checklist edit for the batch of Slack messages"
    # Quiet afterwards: nothing new was sent, nothing is queued, a look changes nothing.
    assert not queued_now(inc, iid)
    inc.reconcile(iid)
    assert checklist_edits(inc) == edits + 1 and checklist(inc, iid) == after


def test_only_engagement_messages_queue_the_gitlab_job(make: Any) -> None:
    """A summary edit or a forwarded update is no engagement: the checklist is not touched for it."""
    inc: Incident = make()
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    inc.send()
    inc.reconcile()
    inc.labels(iid, "comms-email")  # the summary is edited, a team is pinged: no engagement
    inc.clock.advance(60)
    inc.reconcile(iid)
    assert inc.send() == ["done"]
    assert not queued_now(inc, iid), "no GitLab job for messages that engage nobody"


def test_a_persons_own_tick_stays_and_an_unsent_engagement_stays_unticked(make: Any) -> None:
    """Slack refuses #e-group: its row is not ticked by the bot; the Legal row a person ticked stays ticked."""
    inc: Incident = make()
    inc.slack.state.channels.pop(inc.channels["#e-group"])  # deleted in Slack: channel_not_found
    iid = inc.w.incident("severity::1", "data-breach")
    inc.reconcile(iid)
    body = checklist(inc, iid)
    legal = row(body, "legal")
    ticked = body.replace(legal, legal.replace("- [ ] ", "- [x] ", 1))
    (note,) = [n for n in inc.w.bot_notes(iid) if bodies.find_checklist_marker(n["body"])]
    inc.w.sim.state.edit_note_body(inc.w.project, iid, note["id"], ticked, actor="sec-incident-manager")
    inc.send()
    inc.reconcile()
    after = checklist(inc, iid)
    assert row(after, "e-group").startswith("- [ ] ") and "via Slack" not in row(after, "e-group")
    assert row(after, "legal").startswith("- [x] "), "a person's tick stays"
    assert row(after, "sr-director-security").startswith("- [x] ")
