"""The exact request the sender makes, and how it reads each answer, with PagerDuty's client on a mock transport.

PagerDuty's client (``pagerduty`` 7.x) is built on ``httpx2``, which ``responses`` (a ``requests`` mock) cannot
intercept; ``httpx2.MockTransport`` plays the same part. Answers as documented in PagerDuty/api-schema
``reference/events-v2/openapiv3.json`` (202 Success body; Error body with ``errors[]``) and the Events API v2
overview's "Response Codes & Retry Logic" (400: do not retry; 429, 5xx, network error: retry).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from bot.integrations.pagerduty.adapter import PagerDutySender, Refused, Sent, Unavailable, one_shot_client
from bot.integrations.pagerduty.plan import plan_pages
from tests.pagerduty.conftest import KEY
from tests.pagerduty.facts import TARGETS, incident

Handler = Callable[[httpx2.Request], httpx2.Response]


def sender(handler: Handler, requests: list[httpx2.Request]) -> PagerDutySender:
    def record(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return handler(request)

    return PagerDutySender({"support-manager": KEY}, transport=httpx2.MockTransport(record))


def accepted(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    return httpx2.Response(202, json={"status": "success", "message": "Event processed",
                                      "dedup_key": body["dedup_key"]})


def trigger_page():
    [page] = plan_pages(TARGETS, incident(), {})
    return page


def test_a_trigger_is_one_post_to_enqueue_with_the_plans_event_and_the_routing_key() -> None:
    requests: list[httpx2.Request] = []
    page = trigger_page()
    assert sender(accepted, requests).send(page) == Sent(page.dedup_key)
    [request] = requests
    assert request.method == "POST"
    assert str(request.url) == "https://events.pagerduty.com/v2/enqueue"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers  # the Events API authenticates by the body's routing_key
    assert json.loads(request.content) == {"routing_key": KEY, **page.event()}


def test_a_resolve_carries_only_the_key() -> None:
    requests: list[httpx2.Request] = []
    [page] = plan_pages(TARGETS, incident(state="all-clear"), {"7/12/support-manager/0": "triggered"})
    assert sender(accepted, requests).send(page) == Sent(page.dedup_key)
    assert json.loads(requests[0].content) == {"routing_key": KEY, "event_action": "resolve",
                                               "dedup_key": page.dedup_key}


def test_the_base_url_comes_from_the_setting() -> None:
    requests: list[httpx2.Request] = []
    pd = PagerDutySender({"support-manager": KEY}, base_url="https://events.eu.pagerduty.com/",
                         transport=httpx2.MockTransport(lambda r: (requests.append(r), accepted(r))[1]))
    pd.send(trigger_page())
    assert str(requests[0].url) == "https://events.eu.pagerduty.com/v2/enqueue"


def test_a_400_is_refused_with_pagerdutys_errors_in_one_line() -> None:
    requests: list[httpx2.Request] = []

    def invalid(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json={"status": "invalid event", "message": "Event object is invalid",
                                          "errors": ["'payload.summary' is missing or blank",
                                                     "'payload.severity' is invalid\n(must be ...)"]})

    outcome = sender(invalid, requests).send(trigger_page())
    assert outcome == Refused("PagerDuty refused the event (400): Event object is invalid: 'payload.summary' is "
                              "missing or blank; 'payload.severity' is invalid (must be ...)")
    assert len(requests) == 1


@pytest.mark.parametrize(("status", "headers", "retry_after"), [(429, {"Retry-After": "30"}, 30.0), (429, {}, None),
                                                                 (500, {}, None), (502, {}, None), (503, {}, None),
                                                                 (504, {}, None)])
def test_429_and_5xx_are_unavailable_after_one_request(status, headers, retry_after) -> None:
    requests: list[httpx2.Request] = []
    outcome = sender(lambda r: httpx2.Response(status, headers=headers, json={"status": "error", "message": "busy"}),
                     requests).send(trigger_page())
    assert outcome == Unavailable(f"PagerDuty answered {status}: busy", retry_after)
    assert len(requests) == 1


def test_an_html_error_page_is_read_too() -> None:
    requests: list[httpx2.Request] = []
    outcome = sender(lambda r: httpx2.Response(502, text="<html>Bad Gateway</html>"), requests).send(trigger_page())
    assert outcome == Unavailable("PagerDuty answered 502: <html>Bad Gateway</html>")


@pytest.mark.parametrize("error", [httpx2.ConnectError("connection refused"), httpx2.ReadTimeout("timed out")])
def test_a_network_error_is_unavailable_after_one_attempt(error) -> None:
    requests: list[httpx2.Request] = []

    def fail(request: httpx2.Request) -> httpx2.Response:
        raise error

    outcome = sender(fail, requests).send(trigger_page())
    assert isinstance(outcome, Unavailable) and outcome.reason.startswith("PagerDuty unreachable:")
    assert len(requests) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_other_client_errors_are_refused(status) -> None:
    requests: list[httpx2.Request] = []
    outcome = sender(lambda r: httpx2.Response(status, json={"status": "no", "message": "nope"}),
                     requests).send(trigger_page())
    assert isinstance(outcome, Refused) and f"({status})" in outcome.reason
    assert len(requests) == 1


def test_the_routing_key_is_masked_in_every_reason() -> None:
    requests: list[httpx2.Request] = []

    def echo(request: httpx2.Request) -> httpx2.Response:
        key = json.loads(request.content)["routing_key"]
        return httpx2.Response(400, json={"status": "invalid event", "message": f"unknown routing key {key}",
                                          "errors": [f"{key} is disabled"]})

    outcome = sender(echo, requests).send(trigger_page())
    assert isinstance(outcome, Refused)
    assert KEY not in outcome.reason and "***" in outcome.reason


def test_a_target_without_a_key_is_refused_without_a_request() -> None:
    requests: list[httpx2.Request] = []
    [page] = plan_pages(TARGETS, incident(channels=frozenset({"comms-distribution-list"})), {})
    assert sender(accepted, requests).send(page) == Refused("paging target marketing-ops is off (no routing key)")
    assert requests == []


def test_the_clients_own_retries_are_off() -> None:
    client = one_shot_client(KEY)
    assert client.max_network_attempts == 0
    assert client.max_http_attempts < 0
    assert all(client.retry[status] == 1 for status in (429, 500, 502, 503, 504))
