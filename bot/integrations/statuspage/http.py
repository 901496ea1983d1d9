"""One HTTP request to a status page provider, answered as JSON or as a :mod:`.result` failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from bot.integrations.statuspage.result import Refused, Unavailable, scrub

RATE_LIMITED = (420, 429)
"""Statuspage answered 420 for its rate limit and announced 429 instead (Atlassian Community, "Upcoming rate
limiting changes to Statuspage REST API", 2020: "Rate limit response code change from 420 to 429")."""


@dataclass
class Answer:
    status: int
    body: Any


def request(session: requests.Session, method: str, url: str, *, provider: str, secrets: tuple[str, ...],
            timeout: float, before: Callable[[], float | None] | None = None,
            **kwargs: Any) -> Answer | Refused | Unavailable:
    """``method url`` as JSON; a network failure, a 5xx, a rate limit or an unreadable answer is
    :class:`Unavailable`, any other 4xx is :class:`Refused`. Reasons are scrubbed of ``secrets``.

    ``before`` runs first (a pacer): when it answers seconds, nothing is sent and the call is Unavailable.
    """
    what = f"{provider} {method} {_path(url)}"
    wait = before() if before is not None else None
    if wait is not None:
        return Unavailable(f"{what}: not sent, the provider's pace allows the next request in {wait:.0f}s",
                           retry_after=wait)
    try:
        # Never follow a redirect: requests drops only ``Authorization`` on another host, not status.io's
        # ``x-api-key``, and a create must not be replayed somewhere else.
        response = session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout:
        return Unavailable(scrub(f"{what}: no answer within {timeout:g}s", secrets), calls=1)
    except requests.RequestException as exc:
        return Unavailable(scrub(f"{what}: {exc.__class__.__name__}: {exc}", secrets), calls=1)
    status = response.status_code
    if status in RATE_LIMITED:
        return Unavailable(f"{what}: rate limited (HTTP {status})", retry_after=_retry_after(response), calls=1)
    try:
        body = response.json() if response.content else None
    except (ValueError, json.JSONDecodeError):
        body = None
        if status < 300:
            return Unavailable(f"{what}: HTTP {status} with an answer that is not JSON", calls=1)
    if status >= 500 or status == 408:
        return Unavailable(scrub(f"{what}: HTTP {status}{_message(body)}", secrets), _retry_after(response), calls=1)
    if 300 <= status < 400:
        where = response.headers.get("Location", "?")
        return Refused(scrub(f"{what}: HTTP {status} redirects to {where}; set the API URL to where it points",
                             secrets), calls=1)
    if status >= 400:
        return Refused(scrub(f"{what}: HTTP {status}{_message(body)}", secrets), calls=1)
    return Answer(status, body)


def _path(url: str) -> str:
    """The URL's path, without scheme, host and query."""
    return url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error", "message", "errors"):
            if body.get(key):
                return f": {body[key]}"
        status = body.get("status")
        if isinstance(status, dict) and status.get("message"):
            return f": {status['message']}"
    return ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
