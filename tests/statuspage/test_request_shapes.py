"""The exact requests each adapter sends, pinned with ``responses`` (no network).

status.io request fields and headers as its clients send them (statusio/statusio-go ``statusio.go``,
``incidents_types.go``: ``x-api-id``, ``x-api-key``, ``infrastructure_affected`` as ``component-container``
pairs; statusio/statusio-python ``statusio/api.py``); Statuspage's ``{"incident": {...}}`` bodies and
``Authorization: OAuth`` (developer.statuspage.io, "Incidents" and "Authentication").
"""

from __future__ import annotations

import responses
from responses import matchers

from bot.integrations.statuspage.atlassian import Pacer, Statuspage
from bot.integrations.statuspage.config import StatusIoSettings, StatuspageSettings, parse_policy
from bot.integrations.statuspage.plan import Recorded
from bot.integrations.statuspage.result import Refused, Sent, Unavailable
from bot.integrations.statuspage.statusio import StatusIo
from tests.statuspage.conftest import KEY, FakeClock, action

IO = "https://api.status.io/v2/"
SP = "https://api.statuspage.io/v1/"
NAME = f"Security incident update (ref {KEY})"
OK: dict[str, object] = {"status": {"error": "no", "message": "OK"}}


def statusio(notify: bool = True) -> StatusIo:
    policy = parse_policy({"provider": "statusio", "components": ["c1", "c2"], "containers": ["k1"],
                           "notify": notify})
    assert policy is not None
    return StatusIo(StatusIoSettings(IO, "the-api-id", "the-api-key-123", "sp1"), policy)


def statuspage(clock: FakeClock | None = None) -> Statuspage:
    policy = parse_policy({"provider": "statuspage", "components": ["cw1"], "component_status": "major_outage"})
    assert policy is not None
    clock = clock or FakeClock()
    return Statuspage(StatuspageSettings(SP, "the-sp-key-456", "pg1"), policy,
                      pacer=Pacer("the-sp-key-456-" + str(id(clock)), clock=clock, sleep=clock.sleep))


@responses.activate
def test_status_io_create() -> None:
    headers = matchers.header_matcher({"x-api-id": "the-api-id", "x-api-key": "the-api-key-123"})
    responses.get(f"{IO}incident/list/sp1", match=[headers],
                  json={**OK, "result": {"active_incidents": [], "resolved_incidents": []}})
    responses.post(f"{IO}incident/create", json={**OK, "result": "inc-1"},
                   match=[headers, matchers.json_params_matcher({
        "statuspage_id": "sp1", "infrastructure_affected": ["c1-k1", "c2-k1"], "incident_name": NAME,
        "incident_details": "Investigating.", "current_status": 600, "current_state": 100,
        "message_subject": NAME, "all_infrastructure_affected": "0", "notify_email": "1", "notify_sms": "1",
        "notify_webhook": "1", "social": "0", "irc": "0", "hipchat": "0", "slack": "0"})])
    assert statusio().publish(action("Investigating.")) == Sent("inc-1", calls=2)


@responses.activate
def test_status_io_update_and_resolve_without_notifications() -> None:
    common = {"statuspage_id": "sp1", "incident_id": "inc-1", "current_state": 100, "message_subject": NAME,
              "notify_email": "0", "notify_sms": "0", "notify_webhook": "0", "social": "0", "irc": "0",
              "hipchat": "0", "slack": "0"}
    responses.post(f"{IO}incident/update", json={**OK, "result": True}, match=[matchers.json_params_matcher(
        {**common, "incident_details": "Fixed.", "current_status": 600})])
    responses.post(f"{IO}incident/resolve", json={**OK, "result": True}, match=[matchers.json_params_matcher(
        {**common, "incident_details": "Resolved.", "current_status": 100})])
    adapter = statusio(notify=False)
    assert adapter.publish(action("Fixed.", "bbbb2222", recorded=Recorded("inc-1", "aaaa1111"))) == Sent("inc-1",
                                                                                                          calls=1)
    assert adapter.publish(action("Resolved.", "cccc3333", all_clear=True,
                                  recorded=Recorded("inc-1", "bbbb2222"))) == Sent("inc-1", calls=1)


@responses.activate
def test_status_io_error_inside_a_200_is_a_failure_not_a_send() -> None:
    responses.post(f"{IO}incident/update", json={"status": {"error": "yes", "message": "Invalid incident_id"}})
    result = statusio().publish(action("Fixed.", "bbbb2222", recorded=Recorded("inc-1", "aaaa1111")))
    assert result == Refused("status.io incident/update: Invalid incident_id", calls=1)


@responses.activate
def test_status_io_answers_that_cannot_be_trusted_are_unavailable() -> None:
    responses.post(f"{IO}incident/update", body="<html>gateway</html>", status=200)
    responses.post(f"{IO}incident/resolve", json={"message": "down"}, status=503, headers={"Retry-After": "30"})
    adapter = statusio()
    assert adapter.publish(action("Fixed.", "bbbb2222", recorded=Recorded("inc-1", "aaaa1111"))) == Unavailable(
        "status.io POST v2/incident/update: HTTP 200 with an answer that is not JSON", calls=1)
    assert adapter.publish(action("Bye.", "cccc3333", all_clear=True, recorded=Recorded("inc-1", "x"))) == Unavailable(
        "status.io POST v2/incident/resolve: HTTP 503: down", retry_after=30.0, calls=1)


@responses.activate
def test_statuspage_create() -> None:
    auth = matchers.header_matcher({"Authorization": "OAuth the-sp-key-456"})
    responses.get(f"{SP}pages/pg1/incidents/unresolved", json=[], match=[auth, matchers.query_param_matcher(
        {"page": "1", "per_page": "100"})])
    responses.get(f"{SP}pages/pg1/incidents", json=[], match=[auth, matchers.query_param_matcher(
        {"q": KEY, "limit": "100"})])
    responses.post(f"{SP}pages/pg1/incidents", json={"id": "i1"}, status=201,
                   match=[auth, matchers.json_params_matcher(
        {"incident": {"name": NAME, "status": "investigating", "body": "Investigating.", "component_ids": ["cw1"],
                      "components": {"cw1": "major_outage"}, "metadata": {"incident_bot": {"key": KEY}},
                      "deliver_notifications": True}})])
    assert statuspage().publish(action("Investigating.")) == Sent("i1", calls=3)


@responses.activate
def test_statuspage_update_and_resolve() -> None:
    responses.patch(f"{SP}pages/pg1/incidents/i1", json={"id": "i1"}, match=[matchers.json_params_matcher(
        {"incident": {"body": "Fixed.", "deliver_notifications": True, "components": {"cw1": "major_outage"}}})])
    responses.patch(f"{SP}pages/pg1/incidents/i1", json={"id": "i1"}, match=[matchers.json_params_matcher(
        {"incident": {"body": "Resolved.", "deliver_notifications": True, "status": "resolved",
                      "components": {"cw1": "operational"}}})])
    adapter = statuspage()
    assert adapter.publish(action("Fixed.", "bbbb2222", recorded=Recorded("i1", "aaaa1111"))) == Sent("i1", calls=1)
    assert adapter.publish(action("Resolved.", "cccc3333", all_clear=True,
                                  recorded=Recorded("i1", "bbbb2222"))) == Sent("i1", calls=1)


@responses.activate
def test_statuspage_validation_error_is_refused_and_a_5xx_unavailable() -> None:
    responses.patch(f"{SP}pages/pg1/incidents/i1", json={"error": "component not found: cw1"}, status=422)
    responses.patch(f"{SP}pages/pg1/incidents/i2", json={}, status=502)
    adapter = statuspage()
    assert adapter.publish(action("Fixed.", "b", recorded=Recorded("i1", "a"))) == Refused(
        "Statuspage PATCH v1/pages/pg1/incidents/i1: HTTP 422: component not found: cw1", calls=1)
    assert adapter.publish(action("Fixed.", "b", recorded=Recorded("i2", "a"))) == Unavailable(
        "Statuspage PATCH v1/pages/pg1/incidents/i2: HTTP 502", calls=1)


@responses.activate
def test_a_redirect_is_not_followed_so_the_key_stays_with_the_configured_host() -> None:
    responses.get(f"{IO}incident/list/sp1", status=301, headers={"Location": "https://elsewhere.example/v2/x"})
    responses.get("https://elsewhere.example/v2/x", json={**OK, "result": {}})
    result = statusio().publish(action("Investigating."))
    assert result == Refused("status.io GET v2/incident/list/sp1: HTTP 301 redirects to "
                             "https://elsewhere.example/v2/x; set the API URL to where it points", calls=1)
    assert [c.request.url for c in responses.calls] == [f"{IO}incident/list/sp1"]
