"""PagerDuty V3 webhooks: verify a delivery and read what the bot records (acknowledged / resolved).

Signature (PagerDuty developer docs, webhooks "Verifying Signatures"): ``X-PagerDuty-Signature`` holds one or
more comma-separated ``v1=<hex>`` values, each an HMAC-SHA256 of the raw body with one of the subscription's
secrets (several during a secret rotation); at least one must match, compared in constant time.

Payload (webhooks "v3 Overview", "Webhook Payload"): ``event.event_type``, ``event.occurred_at``,
``event.agent.summary`` (who acted; ``agent`` may be null) and ``event.data`` of type ``incident`` whose
``incident_key`` is the incident's de-duplication key (the REST API's Incident schema in PagerDuty/api-schema
``reference/REST/openapiv3.json``: "The incident's de-duplication key."). For an incident opened by an Events
API trigger it is the trigger's ``dedup_key``, which is how a delivery maps back to the bot's page.

Stale deliveries (``occurred_at`` more than 10 minutes ago or more than 5 minutes ahead) and unsigned ones are
rejected (the receiver answers 401 and records nothing). A redelivery is harmless: the receiver records an
acknowledgement once per page (``bot.integrations.pagerduty.receiver``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SIGNATURE_HEADER = "X-PagerDuty-Signature"
WEBHOOK_ID_HEADER = "X-Webhook-Id"
EVENT_TYPES = frozenset({"incident.acknowledged", "incident.resolved"})
MAX_AGE = timedelta(minutes=10)
MAX_AHEAD = timedelta(minutes=5)


class Rejected(Exception):
    """A delivery not to trust or not to read; ``status`` is what the receiver answers."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class Delivery:
    """One verified delivery the bot records."""

    event_id: str
    event_type: str
    """``incident.acknowledged`` or ``incident.resolved``."""
    occurred_at: datetime
    agent: str | None
    """Who acted (``event.agent.summary``); ``None`` when PagerDuty did it (automation, a timeout)."""
    dedup_key: str
    """The incident's ``incident_key``: the ``dedup_key`` of the page that opened it."""
    incident_url: str | None


def sign(body: bytes, secret: str) -> str:
    """The ``v1=<hex>`` value PagerDuty puts in ``X-PagerDuty-Signature`` for ``body``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether one ``v1=`` signature in ``header`` is the HMAC of ``body`` with one of ``secrets``."""
    if not header:
        return False
    given = [part.strip() for part in header.split(",") if part.strip().startswith("v1=")]
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = sign(body, secret)
        for candidate in given:  # no early exit: the time does not tell which one matched
            matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, in any case."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def receive(body: bytes, headers: Mapping[str, str], secrets: Sequence[str], now: datetime) -> Delivery | None:
    """Verify and parse one delivery: the :class:`Delivery` to record, ``None`` for a trusted delivery the bot
    does not record (another event type, an incident no page opened), or :class:`Rejected`."""
    if not any(secrets):
        raise Rejected("no webhook secret is configured", 401)
    if not signature_valid(body, header(headers, SIGNATURE_HEADER), secrets):
        raise Rejected(f"{SIGNATURE_HEADER} is missing or does not match", 401)
    return parse(body, now)


def parse(body: bytes, now: datetime) -> Delivery | None:
    """Read a (verified) body; :class:`Rejected` when it is malformed (400) or stale (401)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("the body is not JSON", 400) from None
    event = data.get("event") if isinstance(data, dict) else None
    if not isinstance(event, dict):
        raise Rejected("no event object in the body", 400)
    occurred_at = _time(event.get("occurred_at"))
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if occurred_at < now - MAX_AGE or occurred_at > now + MAX_AHEAD:
        raise Rejected(f"stale delivery: occurred_at {occurred_at.isoformat()} is outside the accepted window", 401)
    event_type = event.get("event_type")
    if event_type not in EVENT_TYPES:
        return None
    incident = event.get("data")
    if not isinstance(incident, dict) or incident.get("type") != "incident":
        raise Rejected(f"{event_type} without incident data", 400)
    key = incident.get("incident_key")
    if not isinstance(key, str) or not key:
        return None
    agent = event.get("agent")
    name = agent.get("summary") if isinstance(agent, dict) else None
    url = incident.get("html_url")
    return Delivery(
        event_id=str(event.get("id") or ""),
        event_type=str(event_type),
        occurred_at=occurred_at,
        agent=name if isinstance(name, str) and name.strip() else None,
        dedup_key=key,
        incident_url=url if isinstance(url, str) else None,
    )


def _time(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise Rejected("event.occurred_at is missing", 400)
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"event.occurred_at {raw[:40]!r} is not an ISO 8601 time", 400) from None
    if value.tzinfo is None:
        raise Rejected(f"event.occurred_at {raw[:40]!r} has no time zone", 400)
    return value
