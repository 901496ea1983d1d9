"""``POST /pagerduty``: PagerDuty's V3 webhooks, recorded as the acknowledgement (or resolve) of a page.

Signed with ``PAGERDUTY_WEBHOOK_SECRET`` (401 for unsigned or stale: nothing recorded); the body is bounded
(413) and never echoed. The delivery's dedup key finds the page's outbox row (``store.by_remote``); the
acknowledgement is recorded as the row ``<page key>|acknowledged`` (``|resolved``), offered once: a
redelivery (the same ``X-Webhook-Id``) or a second acknowledgement of the same page changes nothing. The
incident's GitLab job is queued so that its checklist shows it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from bot.clock import utcnow
from bot.integrations.pagerduty.config import webhook_secrets
from bot.integrations.pagerduty.facts import ACKNOWLEDGED, NAME, RESOLVED, split
from bot.integrations.pagerduty.job import Row
from bot.integrations.pagerduty.webhook import WEBHOOK_ID_HEADER, Rejected, receive
from bot.redact import redact

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
"""PagerDuty's V3 webhook bodies are a few kilobytes; anything larger is refused unread."""


def record(store: Any, delivery: Any, webhook_id: str, now: Any) -> bool:
    """Record a verified delivery against its page; whether anything new was recorded."""
    items = store.by_remote(NAME, delivery.dedup_key)
    trigger = next((i for i in items if split(i.key)[1] == ""), None)
    if trigger is None:
        return False  # an alert no page of the bot opened
    suffix = ACKNOWLEDGED if delivery.event_type == "incident.acknowledged" else RESOLVED
    key = f"{trigger.key}|{suffix}"
    if any(i.key == key for i in store.items(NAME, trigger.incident_key)):
        return False
    text = json.dumps({"by": delivery.agent, "at": delivery.occurred_at.isoformat(), "webhook": webhook_id})
    store.offer(NAME, trigger.incident_key, [Row(key, trigger.target, text)], now)
    store.mark_sent(NAME, key, delivery.dedup_key, text, now)
    store.enqueue(trigger.incident_key, now, f"pagerduty {suffix}")
    return True


def view(settings: Any, cfg: Any, store: Any, *, clock: Callable[[], Any] | None = None) -> Callable[..., Any]:
    """The Flask view of ``POST /pagerduty`` (``clock``: the bot's, by default ``bot.clock.utcnow``)."""
    from flask import request

    secrets = webhook_secrets(settings.variables)
    if settings.pagerduty_webhook_secret and settings.pagerduty_webhook_secret not in secrets:
        secrets.insert(0, settings.pagerduty_webhook_secret)

    def pagerduty() -> tuple[str, int]:
        length = request.content_length
        if length is None:
            return "", 411
        if length > MAX_BODY:
            return "", 413
        body = request.stream.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return "", 413
        headers = {k: v for k, v in request.headers.items()}
        now = (clock or utcnow)()
        try:
            delivery = receive(body, headers, secrets, now)
        except Rejected as exc:
            log.info("POST /pagerduty refused (%d): %s", exc.status, exc.reason)
            return "", exc.status
        if delivery is None:
            return "", 204
        try:
            record(store, delivery, request.headers.get(WEBHOOK_ID_HEADER, ""), now)
        except Exception as exc:  # the store is away: PagerDuty redelivers on a 5xx
            log.warning("POST /pagerduty: cannot record it: %s", redact(str(exc)))
            return "", 503
        return "", 204

    return pagerduty
