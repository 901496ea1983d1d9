"""``SimulatedPagerDuty``: :class:`~bot.simpagerduty.state.PagerDutyState` served over real HTTP on loopback.

``POST /v2/enqueue`` answers like the Events API v2 (202 / 400 / 429 / 5xx); PagerDuty's own Python client
talks to it unchanged (its base URL set to :attr:`SimulatedPagerDuty.url`). A person acknowledging or resolving
an alert (:meth:`SimulatedPagerDuty.acknowledge`, :meth:`SimulatedPagerDuty.resolve`) sends a signed V3 webhook
to :attr:`SimulatedPagerDuty.webhook_url`, shaped as in PagerDuty's webhooks "v3 Overview" and signed as in
"Verifying Signatures". Time comes from ``clock`` (seconds since the epoch), so tests move it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.simhttp import Loopback, LoopbackHandler, LoopbackServer
from bot.simpagerduty.state import Alert, Invalid, PagerDutyState


@dataclass(frozen=True)
class Received:
    """One request to ``/v2/enqueue``: its answer and the event, the routing key left out."""

    status: int
    event: dict[str, Any]
    error: str | None = None
    """``invalid``, ``fault-429``, ``fault-500`` or ``fail-after-commit``."""
    applied: bool = False
    raw: str = field(default="", compare=False)
    """The body as received, the routing key masked (to search for leaked text)."""


@dataclass(frozen=True)
class WebhookDelivery:
    webhook_id: str
    body: bytes
    headers: dict[str, str]


class _Handler(LoopbackHandler):
    server: LoopbackServer[SimulatedPagerDuty]

    def do_POST(self) -> None:
        body = self.read_body()
        status, answer = self.server.sim.handle(self.path.split("?", 1)[0], body)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class SimulatedPagerDuty(Loopback):
    """A fake Events API v2 on ``http://127.0.0.1:<port>``.

    Faults, off by default: ``random_faults(rate, seed)`` answers that fraction of events 429 or 500 before
    doing anything; ``fail_after_commit(n)`` applies the next ``n`` events and answers 500 (the answer lost).
    """

    handler = _Handler
    thread_name = "simpagerduty"

    def __init__(self, *, clock: Callable[[], float] | None = None, seed: int = 0, host: str = "127.0.0.1",
                 port: int = 0, webhook_url: str | None = None, webhook_secrets: Sequence[str] = ()) -> None:
        self.clock = clock or time.time
        self.state = PagerDutyState(self.clock)
        self.received: list[Received] = []
        self.fail_rate = 0.0
        self.webhook_url = webhook_url
        self.webhook_secrets = list(webhook_secrets)
        self.deliveries: list[WebhookDelivery] = []
        self._random = random.Random(seed)
        self._after_commit = 0
        self._lock = threading.Lock()
        super().__init__(host=host, port=port)

    # ---------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The Events API base URL, for ``PAGERDUTY_EVENTS_URL``."""
        return super().url

    # ------------------------------------------------------------- faults

    def random_faults(self, rate: float, seed: int) -> None:
        """Answer ``rate`` of the events with a 429 or a 500, drawn from ``random.Random(seed)``."""
        with self._lock:
            self.fail_rate, self._random = rate, random.Random(seed)

    def fail_after_commit(self, count: int = 1) -> None:
        with self._lock:
            self._after_commit = count

    # ------------------------------------------------------------- record

    def open_alerts(self, dedup_key: str | None = None) -> list[Alert]:
        with self._lock:
            return [a for a in self.state.alerts
                    if a.status != "resolved" and (dedup_key is None or a.dedup_key == dedup_key)]

    def count(self, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.received if status is None or r.status == status)

    # ------------------------------------------------------------ serving

    def handle(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """One request: HTTP status and JSON body."""
        try:
            event = json.loads(body) if body else None
        except ValueError:
            event = None
        routing_key = event.get("routing_key") if isinstance(event, dict) else None
        raw = body.decode("utf-8", "replace")
        if isinstance(routing_key, str) and routing_key:
            raw = raw.replace(routing_key, "***")
        kept = {k: v for k, v in event.items() if k != "routing_key"} if isinstance(event, dict) else {}
        if path.rstrip("/") != "/v2/enqueue":
            return self._answer(404, {"status": "not found", "message": "Not found"}, kept, raw, "not-found")
        if event is None:
            answer = {"status": "invalid event", "message": "Event object format is unrecognized",
                      "errors": ["JSON parse error"]}
            return self._answer(400, answer, kept, raw, "invalid")
        with self._lock:
            fault = self.fail_rate > 0 and self._random.random() < self.fail_rate
            throttle = fault and self._random.random() < 0.5
        if fault:
            if throttle:
                answer = {"status": "throttle event", "message": "Requests for this service are arriving too "
                          "quickly. Please retry later."}
                return self._answer(429, answer, kept, raw, "fault-429")
            return self._answer(500, {"status": "error", "message": "Internal Server Error"}, kept, raw, "fault-500")
        with self._lock:
            try:
                key = self.state.enqueue(event)
            except Invalid as invalid:
                answer = {"status": "invalid event", "message": "Event object is invalid",
                          "errors": list(invalid.errors)}
                self.received.append(Received(400, kept, "invalid", False, raw))
                return 400, answer
            lost = self._after_commit > 0
            self._after_commit -= 1 if lost else 0
        if lost:
            return self._answer(500, {"status": "error", "message": "Internal Server Error"}, kept, raw,
                                "fail-after-commit", applied=True)
        return self._answer(202, {"status": "success", "message": "Event processed", "dedup_key": key}, kept, raw,
                            None, applied=True)

    def _answer(self, status: int, answer: dict[str, Any], event: dict[str, Any], raw: str, error: str | None,
                applied: bool = False) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.received.append(Received(status, event, error, applied, raw))
        return status, answer

    # ------------------------------------------------------------ people and webhooks

    def acknowledge(self, dedup_key: str, by: str) -> int | None:
        """``by`` acknowledges the open alert; the V3 webhook's HTTP status (``None``: no webhook URL)."""
        with self._lock:
            alert = self.state.act(dedup_key, "acknowledged", by)
        return self._notify("incident.acknowledged", alert, by)

    def resolve(self, dedup_key: str, by: str) -> int | None:
        """``by`` resolves the open alert in PagerDuty; the V3 webhook's HTTP status."""
        with self._lock:
            alert = self.state.act(dedup_key, "resolved", by)
        return self._notify("incident.resolved", alert, by)

    def webhook_body(self, event_type: str, alert: Alert, by: str | None) -> bytes:
        """A V3 webhook body (webhooks "v3 Overview", "Webhook Payload"; ``incident_key`` is the alert's key)."""
        occurred = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
        agent = None if by is None else {"id": "PUSER01", "type": "user_reference", "summary": by,
                                         "html_url": "https://acme.pagerduty.com/users/PUSER01"}
        event = {"event": {
            "id": str(uuid.uuid4()),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred.replace("+00:00", "Z"),
            "agent": agent,
            "client": None,
            "data": {"id": alert.id, "type": "incident", "number": int(alert.id[1:]),
                     "html_url": f"https://acme.pagerduty.com/incidents/{alert.id}",
                     "status": alert.status, "incident_key": alert.dedup_key, "title": alert.summary,
                     "urgency": "high"},
        }}
        return json.dumps(event).encode()

    def deliver(self, delivery: WebhookDelivery) -> int:
        """POST one webhook delivery (again, for a redelivery); the receiver's HTTP status."""
        if not self.webhook_url:
            raise RuntimeError("no webhook_url configured")
        request = urllib.request.Request(self.webhook_url, data=delivery.body, headers=delivery.headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def _notify(self, event_type: str, alert: Alert, by: str) -> int | None:
        if not self.webhook_url:
            return None
        body = self.webhook_body(event_type, alert, by)
        webhook_id = str(uuid.uuid4())
        headers = {"Content-Type": "application/json", "X-Webhook-Id": webhook_id,
                   "User-Agent": "PagerDuty-Webhook/V3.0"}
        if self.webhook_secrets:
            headers["X-PagerDuty-Signature"] = ",".join(signature(body, s) for s in self.webhook_secrets)
        delivery = WebhookDelivery(webhook_id, body, headers)
        self.deliveries.append(delivery)
        return self.deliver(delivery)


def signature(body: bytes, secret: str) -> str:
    """One ``X-PagerDuty-Signature`` entry for ``body``: ``v1=`` and the hex HMAC-SHA256 of the raw body keyed
    with the subscription's secret; several secrets (a rotation) give several entries joined by commas
    (PagerDuty developer docs, Webhooks, "Verifying Signatures": PagerDuty/developer-docs
    docs/webhooks/04-Signatures.md)."""
    return "v1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
