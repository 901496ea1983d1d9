"""The plan, row by row: table-driven tests of ``policy.plan`` against the bundled default policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import Severity
from bot.core.model import BotState, IncidentRef, Issue
from bot.core.policy import plan, severity_of

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def incident(*labels: str, severity_field: str = "unknown", assignees: tuple[str, ...] = (), state: str = "opened"):
    return Issue(
        IncidentRef("42", 7),
        id=9007,
        title="t",
        labels=frozenset(("security-incident", *labels)),
        severity_field=severity_field,
        assignees=assignees,
        state=state,
    )


def engagement_ids(desired) -> set[str]:
    return {e.id for e in desired.engagements}


# ---- severity and scope ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "field", "expected"),
    [
        ((), "unknown", Severity.UNKNOWN),
        (("severity::1",), "unknown", Severity.CRITICAL),
        (("severity::2",), "unknown", Severity.HIGH),
        (("severity::3",), "unknown", Severity.MEDIUM),
        (("severity::4",), "unknown", Severity.LOW),
        ((), "critical", Severity.CRITICAL),
        ((), "HIGH", Severity.HIGH),  # the REST API writes it upper-case
        (("severity::3",), "high", Severity.HIGH),  # the field is higher: it wins
        (("severity::1",), "low", Severity.CRITICAL),  # the label is higher: it wins
        (("severity::4", "severity::2"), "unknown", Severity.HIGH),  # Free tier: several labels, highest wins
        ((), "bogus", Severity.UNKNOWN),
    ],
)
def test_severity_takes_the_higher_of_labels_and_field(default_config, labels, field, expected):
    assert severity_of(incident(*labels, severity_field=field), default_config)[0] == expected


@pytest.mark.parametrize(
    ("labels", "field", "in_scope"),
    [
        (("severity::1",), "unknown", True),
        (("severity::2",), "unknown", True),
        (("severity::3",), "unknown", False),
        (("severity::4",), "unknown", False),
        ((), "unknown", False),
        ((), "high", True),
        ((), "medium", False),
    ],
)
def test_plan_covers_high_or_greater(default_config, labels, field, in_scope):
    desired = plan(incident(*labels, severity_field=field), BotState(), default_config, NOW)
    assert desired.in_scope is in_scope


def test_out_of_scope_incident_gets_nothing_but_a_reason(default_config):
    desired = plan(incident("severity::3", "data-breach", "comms-email"), BotState(), default_config, NOW)
    assert not desired.in_scope
    assert "medium" in desired.scope_reason and "high" in desired.scope_reason
    assert desired.children == () and desired.engagements == () and desired.assign_incident_to is None


def test_issue_without_trigger_label_is_not_handled(default_config):
    issue = Issue(IncidentRef("42", 7), labels=frozenset({"severity::1", "comms-email"}))
    desired = plan(issue, BotState(), default_config, NOW)
    assert not desired.in_scope and "security-incident" in desired.scope_reason


def test_an_engaged_incident_stays_engaged_when_severity_drops(default_config):
    held = BotState({"seoc": "alice", "simoc": "bob", "cmoc": "carol"})
    desired = plan(incident("severity::3", "comms-faq"), held, default_config, NOW)
    assert desired.in_scope
    assert [c.channel for c in desired.children] == ["comms-faq"]


# ---- internal stakeholder engagements: each row's condition true and false -----------------------


@pytest.mark.parametrize(
    ("labels", "engagement", "applies"),
    [
        # Sr. Director of Security: every high-or-greater incident
        (("severity::2",), "sr-director-security", True),
        (("severity::1",), "sr-director-security", True),
        # Broader e-group: data breach or exploited RCE
        (("severity::1", "data-breach"), "e-group", True),
        (("severity::1", "rce-exploited"), "e-group", True),
        (("severity::1", "publicly-reported"), "e-group", False),
        (("severity::1",), "e-group", False),
        # Corporate Marketing and PR: publicly reported or regulatory, else once scoped
        (("severity::1", "publicly-reported"), "corporate-marketing-pr", True),
        (("severity::1", "regulatory-requirement"), "corporate-marketing-pr", True),
        (("severity::1",), "corporate-marketing-pr", False),
        (("severity::1", "comms::investigating"), "corporate-marketing-pr", False),
        (("severity::1", "comms::scoped"), "corporate-marketing-pr", True),
        (("severity::1", "comms::sending"), "corporate-marketing-pr", True),
        (("severity::1", "comms::all-clear"), "corporate-marketing-pr", True),
        # Legal: EE customers impacted or data breach
        (("severity::1", "ee-customers-impacted"), "legal", True),
        (("severity::1", "data-breach"), "legal", True),
        (("severity::1", "rce-exploited"), "legal", False),
        # Status page: live incident on the hosted service
        (("severity::1", "live-incident"), "status-page", True),
        (("severity::1", "data-breach"), "status-page", False),
    ],
)
def test_engagement_conditions(default_config, labels, engagement, applies):
    desired = plan(incident(*labels), BotState(), default_config, NOW)
    assert (engagement in engagement_ids(desired)) is applies


@pytest.mark.parametrize(
    ("engagement", "dri_handle", "cadence_hours", "channel"),
    [
        ("sr-director-security", "sec-incident-manager", 1, "Slack direct message"),
        ("e-group", "sec-director", 1, "#e-group Slack channel"),
        ("corporate-marketing-pr", "comms-oncall", None, "incident response Slack channel"),
        ("legal", "sec-director", None, "incident response Slack channel"),
        ("status-page", "comms-oncall", None, "status page and status social account"),
    ],
)
def test_engagement_dri_cadence_and_channel(default_config, engagement, dri_handle, cadence_hours, channel):
    labels = ("severity::1", "data-breach", "publicly-reported", "live-incident")
    desired = plan(incident(*labels), BotState(), default_config, NOW)
    e = next(e for e in desired.engagements if e.id == engagement)
    assert e.dri.handle == dri_handle
    assert (e.cadence.total_seconds() / 3600 if e.cadence else None) == cadence_hours
    assert e.channel == channel


def test_engagement_reason_names_the_flag(default_config):
    desired = plan(incident("severity::1", "rce-exploited"), BotState(), default_config, NOW)
    e = next(e for e in desired.engagements if e.id == "e-group")
    assert e.reason == "rce-exploited is set"


# ---- external channels: one confidential, assigned child per channel label ------------------------


@pytest.mark.parametrize(
    ("label", "title", "assignee", "engaged"),
    [
        (
            "comms-email",
            "Incident response customer email",
            "mpm-oncall",
            {"sec-incident-manager", "sec-director", "mktg-ops"},
        ),
        ("comms-blog", "Mitigation and response blog post", "sec-oncall", {"sec-incident-manager"}),
        ("comms-security-alert", "Security release alert email", "comms-oncall", set()),
        ("comms-faq", "Customer FAQ", "comms-oncall", {"secops-oncall", "support-manager-oncall", "advocates"}),
        ("comms-social", "Social media post", "comms-oncall", {"advocates"}),
        ("comms-distribution-list", "Custom distribution list", "mktg-ops", {"mpm-oncall"}),
        ("comms-press", "Press statement", "pr-manager", set()),
    ],
)
def test_each_channel_gets_its_child(default_config, label, title, assignee, engaged):
    desired = plan(incident("severity::2", label), BotState(), default_config, NOW)
    [child] = desired.children
    assert child.channel == label and child.title == title
    assert child.assignee.assignee == assignee
    assert child.labels == ("incident-comms", label)
    assert {e.who.handle for e in child.engaged} == engaged
    assert child.rules, "every channel carries the plan's rules as a checklist"


def test_channels_are_independent_and_ordered_as_configured(default_config):
    desired = plan(incident("severity::1", "comms-faq", "comms-email", "comms-blog"), BotState(), default_config, NOW)
    assert [c.channel for c in desired.children] == ["comms-email", "comms-blog", "comms-faq"]


# ---- roles and the incident's own fields -----------------------------------------------------------


def test_roles_come_from_the_roster_and_the_seoc_is_assigned(default_config):
    desired = plan(incident("severity::1"), BotState(), default_config, NOW)
    assert {rid: p.handle for rid, p in desired.roles.items()} == {
        "seoc": "sec-oncall",
        "simoc": "sec-incident-manager",
        "cmoc": "comms-oncall",
    }
    assert desired.assign_incident_to == "sec-oncall"


def test_an_assigned_incident_is_not_reassigned(default_config):
    desired = plan(incident("severity::1", assignees=("dana",)), BotState(), default_config, NOW)
    assert desired.assign_incident_to is None


def test_held_roles_never_change_with_labels_or_roster(default_config):
    held = BotState({"seoc": "alice", "simoc": "bob", "cmoc": "carol"})
    desired = plan(incident("severity::2", "comms-blog", "comms-faq"), held, default_config, NOW)
    assert desired.roles["seoc"].handle == "alice"
    assert [c.assignee.assignee for c in desired.children] == ["alice", "carol"]


def test_phase_label_is_added_only_when_none_is_present(default_config):
    assert plan(incident("severity::1"), BotState(), default_config, NOW).add_labels == ("comms::investigating",)
    desired = plan(incident("severity::1", "comms::scoped"), BotState(), default_config, NOW)
    assert desired.add_labels == () and desired.phase == "comms::scoped"


def test_furthest_phase_wins_when_several_are_present(default_config):
    desired = plan(incident("severity::1", "comms::investigating", "comms::sending"), BotState(), default_config, NOW)
    assert desired.phase == "comms::sending"
