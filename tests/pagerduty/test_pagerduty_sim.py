"""The sender against the simulated PagerDuty over real HTTP, and the simulator's own PagerDuty behaviour.

Behaviour modelled, from PagerDuty/developer-docs:
* ``docs/events-API-v2/02-Trigger-Events.md`` (field table): 32 character ``routing_key``; ``event_action``
  one of trigger / acknowledge / resolve; ``payload.summary`` at most 1024 characters; ``payload.severity`` one
  of critical / error / warning / info; ``dedup_key`` at most 255 characters.
* the same page, "Alert De-Duplication": a trigger with an open alert's key is de-duplicated into it; after
  a resolve, a trigger with the same key opens a new alert; a resolve without an open alert is dropped.
* ``docs/events-API-v2/01-Overview.md``, "Response Codes & Retry Logic": 202 / 400 / 429 / 5xx.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.integrations.pagerduty.adapter import PagerDutySender, Refused, Sent, Unavailable
from bot.integrations.pagerduty.plan import Page, Recorded, pending, plan_pages
from bot.simpagerduty import SimulatedPagerDuty
from tests.pagerduty.conftest import KEY
from tests.pagerduty.facts import SECRET_TITLE, TARGETS, incident, request

MARKETING_KEY = "m" * 32


def sender_for(sim: SimulatedPagerDuty) -> PagerDutySender:
    return PagerDutySender({"support-manager": KEY, "marketing-ops": MARKETING_KEY}, base_url=sim.url)


def page() -> Page:
    [one] = plan_pages(TARGETS, incident(), {})
    return one


def test_a_trigger_opens_one_alert_and_a_repeat_is_de_duplicated(simpd: SimulatedPagerDuty) -> None:
    pd = sender_for(simpd)
    assert pd.send(page()) == Sent(page().dedup_key)
    assert pd.send(page()) == Sent(page().dedup_key)
    [alert] = simpd.open_alerts()
    assert (alert.dedup_key, alert.triggers, alert.severity) == (page().dedup_key, 2, "critical")
    assert alert.summary == "Security incident group/project#12 (critical): Support Manager on call needed"
    assert simpd.count() == 2


def test_a_resolve_closes_it_and_a_later_trigger_opens_a_new_alert(simpd: SimulatedPagerDuty) -> None:
    pd = sender_for(simpd)
    pd.send(page())
    assert pd.send(replace(page(), action="resolve")) == Sent(page().dedup_key)
    assert simpd.open_alerts() == []
    assert pd.send(replace(page(), action="resolve")) == Sent(page().dedup_key)  # dropped: nothing open
    pd.send(page())
    assert [a.status for a in simpd.state.alerts_for(page().dedup_key)] == ["resolved", "triggered"]


@pytest.mark.parametrize(("change", "error"), [
    ({"severity": "fatal"}, "'payload.severity' is invalid"),
    ({"summary": "x" * 1025}, "'payload.summary' is too long"),
    ({"summary": "  "}, "'payload.summary' is missing or blank"),
    ({"dedup_key": "k" * 256}, "'dedup_key' is invalid"),
])
def test_a_400_is_refused_after_one_request(simpd: SimulatedPagerDuty, change, error) -> None:
    outcome = sender_for(simpd).send(replace(page(), **change))
    assert isinstance(outcome, Refused) and error in outcome.reason
    assert outcome.reason.startswith("PagerDuty refused the event (400): Event object is invalid: ")
    assert simpd.count() == 1 and simpd.open_alerts() == []


def test_a_short_routing_key_is_refused_and_not_echoed(simpd: SimulatedPagerDuty) -> None:
    short = "s" * 31
    outcome = PagerDutySender({"support-manager": short}, base_url=simpd.url).send(page())
    assert outcome == Refused("PagerDuty refused the event (400): Event object is invalid: Length of 'routing_key' "
                              "is incorrect (should be 32 characters)")
    assert short not in simpd.received[0].raw


def test_429_and_500_are_unavailable_with_one_request_per_send(simpd: SimulatedPagerDuty) -> None:
    simpd.random_faults(1.0, seed=3)
    pd = sender_for(simpd)
    outcomes = [pd.send(page()) for _ in range(8)]
    assert all(isinstance(o, Unavailable) for o in outcomes)
    assert {r.status for r in simpd.received} == {429, 500}
    assert simpd.count() == 8 and simpd.open_alerts() == []


def test_unreachable_is_unavailable(simpd: SimulatedPagerDuty) -> None:
    url = simpd.url
    simpd.stop()
    outcome = PagerDutySender({"support-manager": KEY}, base_url=url).send(page())
    assert isinstance(outcome, Unavailable) and outcome.reason.startswith("PagerDuty unreachable: ConnectError")


def test_an_answer_lost_after_the_alert_opened_is_sent_again_into_the_same_alert(simpd: SimulatedPagerDuty) -> None:
    simpd.fail_after_commit(1)
    pd = sender_for(simpd)
    assert isinstance(pd.send(page()), Unavailable)
    assert pd.send(page()) == Sent(page().dedup_key)
    assert len(simpd.open_alerts()) == 1


def drive(sim: SimulatedPagerDuty, pd: PagerDutySender, facts, recorded: dict[str, Recorded],
          rounds: int = 60) -> None:
    """What the job loop will do: record the intent, send each pending page until PagerDuty answers 202, record
    the answer."""
    for _ in range(rounds):
        todo = pending(plan_pages(TARGETS, facts, recorded), recorded)
        if not todo:
            return
        for one in todo:
            if one.action == "trigger":
                recorded.setdefault(one.key, "trying")
            for _attempt in range(20):  # the job loop's retries with back-off
                if isinstance(pd.send(one), Sent):
                    recorded[one.key] = "triggered" if one.action == "trigger" else "resolved"
                    break
    raise AssertionError("pages still pending")


def test_with_20_percent_faults_one_alert_per_target_then_all_clear_resolves_every_one(
        simpd: SimulatedPagerDuty) -> None:
    simpd.random_faults(0.2, seed=21)
    pd = sender_for(simpd)
    recorded: dict[str, Recorded] = {}
    facts = incident(channels=frozenset({"comms-email", "comms-distribution-list"}))
    for _ in range(3):  # duplicate deliveries of the same incident
        drive(simpd, pd, facts, recorded)
    assert sorted(a.routing_key for a in simpd.open_alerts()) == [KEY, MARKETING_KEY]
    drive(simpd, pd, facts, {})  # an empty database: the same keys, de-duplicated into the open alerts
    assert len(simpd.state.alerts) == 2
    drive(simpd, pd, replace(facts, state="all-clear"), recorded)
    assert simpd.open_alerts() == []
    drive(simpd, pd, facts, recorded)  # a later delivery (reopened, still critical) pages no one
    assert simpd.open_alerts() == [] and len(simpd.state.alerts) == 2
    drive(simpd, pd, replace(facts, requests=(request("support-manager", generation=977),)), recorded)
    assert len(simpd.open_alerts()) == 1 and len(simpd.state.alerts) == 3
    assert any(r.error in ("fault-429", "fault-500") for r in simpd.received)


def test_no_incident_text_in_any_event_received(simpd: SimulatedPagerDuty) -> None:
    pd = sender_for(simpd)
    facts = incident(channels=frozenset({"comms-email", "comms-distribution-list"}),
                     requests=(request("support-manager"),))
    drive(simpd, pd, facts, {})
    assert len(simpd.received) == 3
    raw = " ".join(r.raw for r in simpd.received)
    assert [w for w in ("Leaked", "database", "ACME", "CVE-2026-0001") if w in raw] == []
    assert SECRET_TITLE.split()[0] == "Leaked"
    assert KEY not in raw and all("routing_key" not in r.event for r in simpd.received)
    assert json.loads(simpd.received[0].raw)["routing_key"] == "***"
