"""Send one page to PagerDuty's Events API v2 with PagerDuty's own client, its retries off.

The answer is one of three outcomes (Events API v2 overview, "Response Codes & Retry Logic"):
:class:`Sent` (202), :class:`Refused` (400 and other 4xx: never retried, the reason from ``errors[]`` in one
line), :class:`Unavailable` (429, 5xx, network: the durable queue retries with back-off). The client's own
retry loops are switched off so that one :meth:`PagerDutySender.send` is one HTTP request. The routing key
is masked in every reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import pagerduty

from bot.integrations.pagerduty.config import DEFAULT_EVENTS_URL
from bot.integrations.pagerduty.plan import Page
from bot.redact import MASK, redact

TIMEOUT = 10.0
"""Seconds for one request (the client's default is 60)."""
_REASON_LIMIT = 300
_RETRIED_BY_CLIENT = (429, 500, 502, 503, 504)
_CLIENT_LOG = logging.getLogger("bot.integrations.pagerduty.client")
"""The client's own log: its lines about retries it does not make are noise (the outcome says what happened)."""
_CLIENT_LOG.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Sent:
    dedup_key: str


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class Unavailable:
    reason: str
    retry_after: float | None = None
    """Seconds PagerDuty asked to wait (``Retry-After``), if it did."""


Outcome = Sent | Refused | Unavailable


class _EventsClient(pagerduty.EventsApiV2Client):
    """PagerDuty's client, allowed a plain-http loopback base URL (checked by ``config.events_url``)."""

    @property
    def url(self) -> str:
        return str(self._url)

    @url.setter
    def url(self, new_base_url: str) -> None:
        self._url = new_base_url


def one_shot_client(routing_key: str, *, base_url: str = DEFAULT_EVENTS_URL, timeout: float = TIMEOUT,
                    transport: httpx2.BaseTransport | None = None) -> pagerduty.EventsApiV2Client:
    """An ``EventsApiV2Client`` that makes exactly one HTTP request per event.

    ``ApiClient.request`` retries a status listed in ``retry`` until ``max_http_attempts`` (and 429 forever
    when not listed), and a network error ``max_network_attempts`` times, sleeping between. Each status it
    would retry is listed with 1 and ``max_http_attempts`` is below zero, so its limit is reached at the first
    answer; ``max_network_attempts = 0`` raises at the first network error."""
    extra: dict[str, Any] = {"transport": transport} if transport is not None else {}
    client = _EventsClient(routing_key, base_url=base_url, **extra)
    client.retry = dict.fromkeys(_RETRIED_BY_CLIENT, 1)
    client.max_http_attempts = -1
    client.max_network_attempts = 0
    client.sleep_timer = 0
    client.log = _CLIENT_LOG
    client.timeout = timeout  # type: ignore[assignment]  # httpx2 takes seconds as a float
    return client


class PagerDutySender:
    """Sends :class:`~bot.integrations.pagerduty.plan.Page` events; one client per target's routing key."""

    def __init__(self, routing_keys: Mapping[str, str], *, base_url: str = DEFAULT_EVENTS_URL,
                 timeout: float = TIMEOUT, transport: httpx2.BaseTransport | None = None) -> None:
        self._keys = dict(routing_keys)
        self._base_url, self._timeout, self._transport = base_url.rstrip("/"), timeout, transport
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}
        self._lock = threading.Lock()

    def send(self, page: Page) -> Outcome:
        """Send the page's event once (trigger or resolve)."""
        key = self._keys.get(page.target)
        if key is None:
            return Refused(f"paging target {page.target} is off (no routing key)")
        event = page.event()
        action = event.pop("event_action")
        dedup = event.pop("dedup_key")
        try:
            answered = self._client(page.target, key).send_event(action, dedup_key=dedup, **event)
        except pagerduty.HttpError as exc:
            response: httpx2.Response | None = exc.response
            if response is not None:
                return _from_response(response, key)
            return Unavailable(_clean(f"PagerDuty answered nothing usable: {exc}", key))
        except pagerduty.Error as exc:
            cause = exc.__cause__ or exc
            return Unavailable(_clean(f"PagerDuty unreachable: {cause.__class__.__name__}: {cause}", key))
        except (httpx2.HTTPError, pagerduty.UrlError, ValueError) as exc:
            return Unavailable(_clean(f"PagerDuty unreachable: {exc.__class__.__name__}: {exc}", key))
        return Sent(str(answered))

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client(self, target: str, key: str) -> pagerduty.EventsApiV2Client:
        with self._lock:
            client = self._clients.get(target)
            if client is None:
                client = one_shot_client(key, base_url=self._base_url, timeout=self._timeout,
                                         transport=self._transport)
                self._clients[target] = client
            return client


def _from_response(response: httpx2.Response, key: str) -> Outcome:
    status = response.status_code
    detail = _detail(response)
    if status == 429 or status >= 500:
        return Unavailable(_clean(f"PagerDuty answered {status}: {detail}", key), _retry_after(response))
    if status == 202:  # accepted but without a dedup_key: PagerDuty did not answer as documented
        return Unavailable(_clean(f"PagerDuty answered 202 without a dedup_key: {detail}", key))
    return Refused(_clean(f"PagerDuty refused the event ({status}): {detail}", key))


def _detail(response: httpx2.Response) -> str:
    """``message: error; error`` from PagerDuty's error body, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        parts = [str(e) for e in errors] if isinstance(errors, list) else []
        message = str(body.get("message") or body.get("status") or "")
        text = "; ".join(parts)
        return f"{message}: {text}" if message and text else (message or text or "no details")
    return response.text[:120] or "empty body"


def _retry_after(response: httpx2.Response) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _clean(text: str, key: str) -> str:
    """One line, the routing key masked, at most a few hundred characters."""
    line = " ".join(redact(text.replace(key, MASK)).split())
    return line if len(line) <= _REASON_LIMIT else line[: _REASON_LIMIT - 1] + "…"
