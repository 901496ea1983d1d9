"""The simulated PagerDuty's alert rules, each from PagerDuty/developer-docs
``docs/events-API-v2/02-Trigger-Events.md`` ("Alert De-Duplication" and the field table)."""

from __future__ import annotations

import pytest

from bot.simpagerduty import Invalid, PagerDutyState

KEY_A, KEY_B = "a" * 32, "b" * 32


def trigger(key: str | None = "k1", routing_key: str = KEY_A) -> dict:
    event = {"routing_key": routing_key, "event_action": "trigger",
             "payload": {"summary": "s", "source": "gitlab.example.com", "severity": "info"}}
    if key is not None:
        event["dedup_key"] = key
    return event


def test_a_trigger_without_a_key_always_opens_a_new_alert_with_a_generated_key() -> None:
    state = PagerDutyState(lambda: 0.0)
    first, second = state.enqueue(trigger(None)), state.enqueue(trigger(None))
    assert first != second and len(state.alerts) == 2


def test_follow_ups_apply_only_through_the_routing_key_of_the_trigger() -> None:
    # "Subsequent acknowledge or resolve events sent via a different routing_key from the original will be dropped."
    state = PagerDutyState(lambda: 0.0)
    state.enqueue(trigger())
    state.enqueue({"routing_key": KEY_B, "event_action": "resolve", "dedup_key": "k1"})
    assert state.alerts[0].status == "triggered"
    state.enqueue({"routing_key": KEY_A, "event_action": "acknowledge", "dedup_key": "k1"})
    assert state.alerts[0].status == "acknowledged"
    state.enqueue(trigger())  # de-duplicated into the acknowledged (still open) alert
    assert len(state.alerts) == 1 and state.alerts[0].triggers == 2


def test_a_resolve_without_an_open_alert_creates_nothing() -> None:
    state = PagerDutyState(lambda: 0.0)
    state.enqueue({"routing_key": KEY_A, "event_action": "resolve", "dedup_key": "never"})
    assert state.alerts == []


@pytest.mark.parametrize(("event", "error"), [
    ({"routing_key": KEY_A, "event_action": "resolve"}, "'dedup_key' is missing or blank"),
    ({"routing_key": KEY_A, "event_action": "page"}, "'event_action' is invalid"),
    ({"routing_key": KEY_A}, "'event_action' is missing or blank"),
    ({**trigger(), "payload": None}, "'payload' is missing or blank"),
    ({**trigger(), "links": [{"text": "no href"}]}, "'links' must be a list of objects with an 'href'"),
    ({**trigger(), "payload": {"summary": "s", "severity": "info"}}, "'payload.source' is missing or blank"),
])
def test_invalid_events(event, error) -> None:
    with pytest.raises(Invalid) as caught:
        PagerDutyState(lambda: 0.0).enqueue(event)
    assert any(e.startswith(error) for e in caught.value.errors)
