"""PagerDuty V3 webhooks: who can get an acknowledgement recorded, and what is read from it.

Signatures as in PagerDuty/developer-docs ``docs/webhooks/04-Signatures.md`` ("Verifying Signatures": one or
more comma-separated ``v1=`` HMAC-SHA256 hex digests of the raw body, several during a secret rotation, at
least one must match, compared in constant time); payload as in ``docs/webhooks/01-Overview.md`` ("Webhook
Payload": ``event.event_type``, ``occurred_at``, ``agent`` (a reference or null), ``data.incident_key``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.integrations.pagerduty.adapter import PagerDutySender
from bot.integrations.pagerduty.plan import plan_pages
from bot.integrations.pagerduty.webhook import (
    Delivery,
    Rejected,
    parse,
    receive,
    sign,
    signature_valid,
)
from bot.simpagerduty import SimulatedPagerDuty
from tests.pagerduty.conftest import KEY
from tests.pagerduty.facts import TARGETS, incident

SECRET = "whsec-current-0123456789"
OLD_SECRET = "whsec-previous-9876543210"
NOW = datetime(2026, 12, 7, 10, 5, tzinfo=UTC)


def body(event_type: str = "incident.acknowledged", occurred_at: str = "2026-12-07T10:05:00.123Z",
         agent: object = None, key: str | None = "incident-bot-abc") -> bytes:
    agent = {"id": "PLH1HKV", "type": "user_reference", "summary": "Dana Support"} if agent is None else agent
    data = {"id": "PGR0VU2", "type": "incident", "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "status": "acknowledged", "title": "Security incident group/project#12 (critical): ..."}
    if key is not None:
        data["incident_key"] = key
    return json.dumps({"event": {"id": "5ac64822", "event_type": event_type, "resource_type": "incident",
                                 "occurred_at": occurred_at, "agent": agent, "client": None, "data": data}}).encode()


def signed(raw: bytes, *secrets: str) -> dict[str, str]:
    return {"x-pagerduty-signature": ",".join(sign(raw, s) for s in secrets), "X-Webhook-Id": "w-1"}


def test_a_signed_acknowledgement_is_read() -> None:
    raw = body()
    assert receive(raw, signed(raw, SECRET), [SECRET], NOW) == Delivery(
        event_id="5ac64822", event_type="incident.acknowledged",
        occurred_at=datetime(2026, 12, 7, 10, 5, 0, 123000, tzinfo=UTC), agent="Dana Support",
        dedup_key="incident-bot-abc", incident_url="https://acme.pagerduty.com/incidents/PGR0VU2")


def test_the_docs_example_signature() -> None:
    # the documented Python verifier: v1= + hexdigest(HMAC-SHA256(secret, body))
    import hashlib
    import hmac
    raw = b'{"event":{}}'
    expected = "v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert sign(raw, SECRET) == expected
    assert signature_valid(raw, expected, [SECRET])


@pytest.mark.parametrize("header", [
    None, "", "v1=", "v1=" + "0" * 64, "v0=whatever", "sha256=abc",
])
def test_a_missing_or_wrong_signature_is_401(header) -> None:
    raw = body()
    headers = {} if header is None else {"X-PagerDuty-Signature": header}
    with pytest.raises(Rejected) as caught:
        receive(raw, headers, [SECRET], NOW)
    assert caught.value.status == 401


def test_a_signature_by_another_secret_or_of_another_body_is_401() -> None:
    raw = body()
    for headers, raw_sent in ((signed(raw, "someone-else"), raw), (signed(body(agent={}), SECRET), raw)):
        with pytest.raises(Rejected, match="does not match"):
            receive(raw_sent, headers, [SECRET], NOW)


def test_any_one_of_several_signatures_may_match_during_a_rotation() -> None:
    raw = body()
    assert receive(raw, signed(raw, OLD_SECRET, SECRET), [SECRET], NOW) is not None
    assert receive(raw, signed(raw, "unknown", OLD_SECRET), [SECRET, OLD_SECRET], NOW) is not None
    spaced = {"X-PagerDuty-Signature": f"{sign(raw, 'x')}, {sign(raw, SECRET)}"}
    assert receive(raw, spaced, [SECRET], NOW) is not None


def test_no_secret_configured_trusts_nothing() -> None:
    raw = body()
    with pytest.raises(Rejected, match="no webhook secret"):
        receive(raw, signed(raw, ""), [""], NOW)


@pytest.mark.parametrize(("occurred_at", "ok"), [
    ("2026-12-07T09:55:00Z", True), ("2026-12-07T09:54:59Z", False),
    ("2026-12-07T10:10:00Z", True), ("2026-12-07T10:10:01Z", False),
    ("2026-12-07T11:05:00+01:00", True),
])
def test_a_stale_or_future_delivery_is_401(occurred_at, ok) -> None:
    raw = body(occurred_at=occurred_at)
    if ok:
        assert receive(raw, signed(raw, SECRET), [SECRET], NOW) is not None
    else:
        with pytest.raises(Rejected, match="stale") as caught:
            receive(raw, signed(raw, SECRET), [SECRET], NOW)
        assert caught.value.status == 401


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json", "not JSON"), (b"[]", "no event object"), (b'{"event": {}}', "occurred_at is missing"),
    (body(occurred_at="yesterday"), "not an ISO 8601 time"), (body(occurred_at="2026-12-07T10:05:00"), "no time zone"),
])
def test_a_signed_but_malformed_body_is_400(raw, message) -> None:
    with pytest.raises(Rejected, match=message) as caught:
        receive(raw, signed(raw, SECRET), [SECRET], NOW)
    assert caught.value.status == 400


def test_what_is_not_recorded() -> None:
    assert parse(body(event_type="incident.annotated"), NOW) is None
    assert parse(body(key=None), NOW) is None  # an incident no event opened


def test_the_resolved_event_and_an_automatic_one() -> None:
    data = json.loads(body(event_type="incident.resolved"))
    data["event"]["agent"] = None  # "A null value might indicate an event triggered via automation"
    delivery = parse(json.dumps(data).encode(), NOW)
    assert delivery is not None and (delivery.event_type, delivery.agent) == ("incident.resolved", None)


# ------------------------------------------------------------------ end to end with the simulator


class Receiver:
    """A bare HTTP endpoint that verifies and parses what the simulated PagerDuty sends (the bot's own route,
    with its store, is tested in ``test_pagerduty_acceptance.py``)."""

    def __init__(self, clock: list[datetime]) -> None:
        self.clock = clock
        self.recorded: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    delivery = receive(raw, dict(self.headers.items()), [SECRET], receiver.clock[0])
                except Rejected as rejected:
                    self.send_response(rejected.status)
                else:
                    if delivery is not None:
                        receiver.recorded.append(delivery)
                    self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pagerduty"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([NOW])
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_an_acknowledgement_in_pagerduty_reaches_the_bot_once(receiver: Receiver) -> None:
    with SimulatedPagerDuty(clock=NOW.timestamp, webhook_url=receiver.url, webhook_secrets=[SECRET]) as sim:
        [page] = plan_pages(TARGETS, incident(), {})
        PagerDutySender({"support-manager": KEY}, base_url=sim.url).send(page)
        assert sim.acknowledge(page.dedup_key, by="Dana Support") == 202
        assert sim.deliver(sim.deliveries[-1]) == 202  # PagerDuty delivers again: the same event, signed again
        delivery, again = receiver.recorded
        assert again.event_id == delivery.event_id
        assert (delivery.event_type, delivery.agent, delivery.dedup_key) == (
            "incident.acknowledged", "Dana Support", page.dedup_key)
        receiver.clock[0] = NOW + timedelta(minutes=11)
        assert sim.deliver(sim.deliveries[-1]) == 401  # a replay later on is stale
        assert sim.resolve(page.dedup_key, by="Dana Support") == 401  # sim clock still at NOW: stale too
        receiver.clock[0] = NOW
        assert sim.deliver(sim.deliveries[-1]) == 202
        assert [d.event_type for d in receiver.recorded] == ["incident.acknowledged"] * 2 + ["incident.resolved"]


def test_an_unsigned_delivery_records_nothing(receiver: Receiver) -> None:
    with SimulatedPagerDuty(clock=NOW.timestamp, webhook_url=receiver.url) as sim:
        [page] = plan_pages(TARGETS, incident(), {})
        PagerDutySender({"support-manager": KEY}, base_url=sim.url).send(page)
        assert sim.acknowledge(page.dedup_key, by="Mallory") == 401
        assert receiver.recorded == []
