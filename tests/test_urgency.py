"""How urgent each delivery's work is (bot.core.urgency, pure): a table of what a delivery is against its priority."""

from __future__ import annotations

import pytest

from bot.config import Config, Severity
from bot.core.events import Event, Ignored, IssueEvent, NoteEvent
from bot.core.model import IncidentRef, Issue
from bot.core.urgency import AGING, Priority, clamp, intake_priority, requeue_priority

REF = IncidentRef("42", 12)
TRIGGER = "security-incident"
URGENT, HIGH, ELEVATED, NORMAL, BACKGROUND = tuple(Priority)


def issue(*labels: str, severity_field: str = "unknown", incident: bool = True) -> Issue:
    return Issue(REF, labels=frozenset(((TRIGGER,) if incident else ()) + labels), severity_field=severity_field)


def changed(*labels: str, action: str = "update", added: tuple[str, ...] = (), **kw: object) -> IssueEvent:
    return IssueEvent(issue(*labels, **kw), action, "sec-oncall", labels_added=frozenset(added))  # type: ignore[arg-type]


def note(body: str, *labels: str, author: str = "sec-oncall", system: bool = False, incident: bool = True) -> NoteEvent:
    return NoteEvent(REF, 7, body, author, "create", system, issue(*labels, incident=incident))


CASES: list[tuple[str, Event, Priority]] = [
    # a person waits for the reply
    ("a command on a low incident", note("@incident-bot status", "severity::4"), URGENT),
    ("a command on an issue that is no incident", note("@incident-bot help", incident=False), URGENT),
    ("a command on a later line", note("Thanks.\n  @incident-bot handoff simoc @dana"), URGENT),
    # new incidents, by severity
    ("a new critical incident", changed("severity::1", action="open"), URGENT),
    ("a reopened critical incident", changed("severity::1", action="reopen"), URGENT),
    ("an issue labelled an incident, critical", changed("severity::1", added=(TRIGGER,)), URGENT),
    ("critical by its severity field", changed(action="open", severity_field="critical"), URGENT),
    ("escalated to critical", changed("severity::1", added=("severity::1",)), URGENT),
    ("a new high incident", changed("severity::2", action="open"), HIGH),
    ("a new medium incident", changed("severity::3", action="open"), ELEVATED),
    ("a new incident of no severity", changed(action="open"), ELEVATED),
    # other changes, by severity
    ("an edit of a critical incident", changed("severity::1", added=("comms-email",)), HIGH),
    ("a comment on a critical incident", note("logs attached", "severity::1"), HIGH),
    ("an edit of a high incident", changed("severity::2"), ELEVATED),
    ("lowered from critical to high", changed("severity::2", added=("severity::2",)), HIGH),
    ("an edit of a low incident", changed("severity::4"), NORMAL),
    ("the higher of label and field counts", changed("severity::4", severity_field="high"), ELEVATED),
    ("a comment on a medium incident", note("ok", "severity::3"), NORMAL),
    # no person waits
    ("the bot's own comment addressing itself", note("@incident-bot status", author="incident-bot"), NORMAL),
    ("a system note naming the bot", note("@incident-bot mentioned", "severity::1", system=True), HIGH),
    ("a comment on an issue that is no incident", note("hello", "severity::1", incident=False), NORMAL),
    ("a delivery the bot ignores", Ignored("not an incident"), NORMAL),
]


@pytest.mark.parametrize(("what", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_intake_priority(default_config: Config, what: str, event: Event, expected: Priority) -> None:
    assert intake_priority(event, default_config) == expected


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(Severity.CRITICAL, HIGH), (Severity.HIGH, ELEVATED), (Severity.LOW, ELEVATED), (Severity.UNKNOWN, ELEVATED)],
)
def test_a_reminder_at_its_due_time_goes_before_ordinary_changes(severity: Severity, expected: Priority) -> None:
    assert requeue_priority(severity) == expected


def test_every_priority_waits_longer_than_the_more_urgent_ones_and_nothing_forever() -> None:
    allowances = [AGING[p] for p in Priority]
    assert allowances == sorted(allowances) and len(set(allowances)) == len(allowances)
    assert AGING[URGENT].total_seconds() == 0 and AGING[BACKGROUND].total_seconds() <= 15 * 60


def test_out_of_range_values_are_clamped() -> None:
    assert (clamp(-1), clamp(2), clamp(9)) == (URGENT, ELEVATED, BACKGROUND)
