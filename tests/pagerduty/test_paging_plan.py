"""The paging plan: which events an incident wants, from GitLab's state and what the outbox recorded.

PagerDuty behaviour the rules rest on (PagerDuty/developer-docs ``docs/events-API-v2/02-Trigger-Events.md``,
"Alert De-Duplication"): a trigger with the key of an open alert is de-duplicated into it; once the alert is
resolved, a trigger with the same key opens a NEW alert. Hence: after a recorded resolve, never trigger that
generation again.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.integrations.pagerduty.plan import (
    SUMMARY_LIMIT,
    Facts,
    Page,
    dedup_key,
    parse_item_key,
    pending,
    plan_pages,
)
from tests.pagerduty.facts import INSTANCE, SECRET_TITLE, TARGETS, incident, request


def actions(pages: tuple[Page, ...]) -> list[tuple[str, int, str]]:
    return [(p.target, p.generation, p.action) for p in pages]


@pytest.mark.parametrize(("facts", "expected"), [
    (incident(), [("support-manager", 0, "trigger")]),
    (incident(channels=frozenset({"comms-faq"})), [("support-manager", 0, "trigger")]),
    (incident(channels=frozenset({"comms-distribution-list"})), [("marketing-ops", 0, "trigger")]),
    (incident(channels=frozenset({"comms-email", "comms-distribution-list"})),
     [("marketing-ops", 0, "trigger"), ("support-manager", 0, "trigger")]),
    (incident(severity="high"), []),
    (incident(severity=None), []),
    (incident(channels=frozenset()), []),
    (incident(channels=frozenset({"comms-blog"})), []),
    (incident(state="all-clear"), []),
    (incident(state="closed"), []),
    (incident(severity="low", requests=(request("support-manager"),)), [("support-manager", 901, "trigger")]),
    (incident(requests=(request("support-manager"),)),
     [("support-manager", 0, "trigger"), ("support-manager", 901, "trigger")]),
    (incident(severity="low", requests=(request("nobody"),)), []),
])
def test_what_an_open_incident_pages(facts: Facts, expected) -> None:
    assert actions(plan_pages(TARGETS, facts, {})) == expected


def test_a_target_that_is_off_is_not_paged() -> None:
    assert plan_pages([t for t in TARGETS if t.id != "support-manager"], incident(), {}) == ()


def test_all_clear_or_close_resolves_every_page_that_may_have_been_triggered() -> None:
    recorded = {"7/12/support-manager/0": "triggered", "7/12/support-manager/901": "trying",
                "7/12/marketing-ops/0": "resolved", "7/13/support-manager/0": "triggered", "junk": "triggered"}
    for state in ("all-clear", "closed"):
        pages = plan_pages(TARGETS, incident(state=state), recorded)
        assert actions(pages) == [("support-manager", 0, "resolve"), ("support-manager", 901, "resolve")]
        assert actions(pending(pages, recorded)) == actions(pages)
        assert pages[0].event() == {"event_action": "resolve", "dedup_key": pages[0].dedup_key}


def test_a_resolved_page_is_never_triggered_again_only_a_new_generation_pages() -> None:
    recorded = {"7/12/support-manager/0": "resolved"}
    assert plan_pages(TARGETS, incident(), recorded) == ()  # reopened, still critical + comms-email
    again = plan_pages(TARGETS, incident(requests=(request("support-manager", generation=950),)), recorded)
    assert actions(again) == [("support-manager", 950, "trigger")]


def test_pending_leaves_out_what_the_outbox_already_sent() -> None:
    pages = plan_pages(TARGETS, incident(), {})
    assert pending(pages, {}) == pages
    assert pending(pages, {pages[0].key: "trying"}) == ()  # a retry of the same send is the job loop's
    assert pending(pages, {pages[0].key: "triggered"}) == ()


def test_the_event_of_a_confidential_incident() -> None:
    [page] = plan_pages(TARGETS, incident(), {})
    assert page.key == "7/12/support-manager/0"
    assert parse_item_key(page.key) == (7, 12, "support-manager", 0)
    assert page.event() == {
        "event_action": "trigger",
        "dedup_key": dedup_key(INSTANCE, 7, 12, "support-manager", 0),
        "payload": {
            "summary": "Security incident group/project#12 (critical): Support Manager on call needed",
            "source": "gitlab.example.com",
            "severity": "critical",
            "custom_details": {"link": "https://gitlab.example.com/group/project/-/issues/12",
                               "reason": "policy: critical incident; channel comms-email",
                               "role_holders": {"seoc": "sec-oncall", "simoc": "sim-oncall"}},
        },
        "links": [{"href": "https://gitlab.example.com/group/project/-/issues/12", "text": "group/project#12"}],
    }


def test_a_page_by_hand_carries_its_reason_and_who_asked() -> None:
    [page] = plan_pages(TARGETS, incident(severity="medium", requests=(
        request("marketing-ops", "need a new\n distribution list", by="alice"),)), {})
    assert page.custom_details["reason"] == "paged by @alice: need a new distribution list"
    assert page.severity == "warning"
    assert page.summary == "Security incident group/project#12 (medium): Marketing Ops on call needed"


@pytest.mark.parametrize(("severity", "mapped"), [("critical", "critical"), ("high", "error"), ("medium", "warning"),
                                                  ("low", "info"), (None, "error")])
def test_severity_maps_to_pagerdutys(severity, mapped) -> None:
    facts = incident(severity=severity, channels=frozenset(), requests=(request("support-manager"),))
    [page] = plan_pages(TARGETS, facts, {})
    assert page.severity == mapped


def test_dedup_keys_differ_by_instance_project_incident_target_and_generation_and_are_short() -> None:
    base = (INSTANCE, 7, 12, "support-manager", 0)
    variants = [("https://other.example.com", 7, 12, "support-manager", 0), (INSTANCE, 8, 12, "support-manager", 0),
                (INSTANCE, 7, 13, "support-manager", 0), (INSTANCE, 7, 12, "marketing-ops", 0),
                (INSTANCE, 7, 12, "support-manager", 1)]
    keys = {dedup_key(*base)} | {dedup_key(*v) for v in variants}
    assert len(keys) == 6
    assert all(len(k) <= 255 for k in keys)
    assert dedup_key(INSTANCE + "/", *base[1:]) == dedup_key(*base)  # the same instance however spelled


def test_a_very_long_project_path_keeps_the_summary_within_pagerdutys_limit() -> None:
    [page] = plan_pages(TARGETS, incident(project_path="g/" * 700 + "p"), {})
    assert len(page.summary) <= SUMMARY_LIMIT


TEXT = st.text(min_size=4, max_size=80).filter(lambda s: s.strip() and len(s.strip()) >= 4)


@settings(deadline=None)
@given(title=TEXT, severity=st.sampled_from(["critical", "high", "medium", "low", None]),
       state=st.sampled_from(["open", "closed", "all-clear"]),
       channels=st.sets(st.sampled_from(["comms-email", "comms-faq", "comms-distribution-list", "comms-blog"])))
def test_no_title_text_in_any_event(title: str, severity, state, channels) -> None:
    facts = incident(title=title, severity=severity, state=state, channels=frozenset(channels),
                     requests=(request("support-manager", reason=""),))
    recorded = {"7/12/support-manager/0": "triggered", "7/12/marketing-ops/0": "triggered"}
    neutral = json.dumps([p.event() for p in plan_pages(TARGETS, incident(title="", severity=severity, state=state,
                          channels=frozenset(channels), requests=facts.requests), recorded)])
    events = json.dumps([p.event() for p in plan_pages(TARGETS, facts, recorded)])
    assert events == neutral  # the title changes nothing in any event
    assert title.strip() not in events or title.strip() in neutral


def test_the_secret_title_is_in_no_event() -> None:
    pages = plan_pages(TARGETS, incident(channels=frozenset({"comms-email", "comms-distribution-list"}),
                                         requests=(request("support-manager"),)), {})
    assert len(pages) == 3
    sent = json.dumps([p.event() for p in pages])
    assert [word for word in ("Leaked", "database", "ACME", "CVE-2026-0001") if word in sent] == []
    assert "Leaked" in SECRET_TITLE
