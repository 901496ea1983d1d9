"""The Atlassian Statuspage adapter (API v1): create, update and resolve the bot's incident, found again by
its metadata, paced to one request a second per key.

The API (developer.statuspage.io, "Incidents"; the generated clients' models, e.g.
``PostPagesPageIdIncidentsIncident``): ``Authorization: OAuth <key>``; ``POST pages/{page_id}/incidents`` with
``{"incident": {name, status, body, component_ids, components, metadata, deliver_notifications}}``;
``PATCH pages/{page_id}/incidents/{incident_id}``; ``GET pages/{page_id}/incidents/unresolved``;
``GET pages/{page_id}/incidents?q=...&limit=...`` ("search for
the text query string in the incidents' name, status, postmortem_body, and incident_updates fields"; "The
default and maximum limit is 100"). ``metadata``: "Top level values must be objects". Rate limit: one request
a second per key; beyond it 420, announced to become 429, with ``Retry-After`` (Atlassian Community, "Upcoming
rate limiting changes to Statuspage REST API").
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import requests

from bot.integrations.statuspage.config import StatusPagePolicy, StatuspageSettings
from bot.integrations.statuspage.http import Answer, request
from bot.integrations.statuspage.plan import METADATA_NAMESPACE, Action
from bot.integrations.statuspage.result import Ambiguous, Refused, Result, Sent, Unavailable

INTERVAL = 1.0
"""Seconds between two requests with one key."""
MAX_WAIT = 5.0
"""The longest a request waits for its slot; beyond it (a long ``Retry-After``) the call is Unavailable at once,
so the job loop retries it later instead of a worker sleeping."""


class Pacer:
    """At most one request per ``interval`` seconds per key, across every adapter in this process.

    ``clock`` and ``sleep`` are injectable: a test moves a fake clock instead of sleeping.
    """

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _next: ClassVar[dict[str, float]] = {}

    def __init__(self, key: str, *, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = MAX_WAIT) -> None:
        self.key = hashlib.sha256(key.encode()).hexdigest()
        self.interval = interval
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self.waited = 0.0
        """Seconds this pacer has waited in all."""

    def wait(self) -> float | None:
        """Claim this key's next slot and wait for it; None when the request may go. When the slot is more
        than ``max_wait`` away, claim nothing and answer the seconds to wait instead."""
        with Pacer._lock:
            now = self.clock()
            slot = max(now, Pacer._next.get(self.key, now))
            if slot - now > self.max_wait:
                return slot - now
            Pacer._next[self.key] = slot + self.interval
        if slot > now:
            self.waited += slot - now
            self.sleep(slot - now)
        return None

    def defer(self, seconds: float) -> None:
        """The provider asked to wait (``Retry-After``): no request with this key before then."""
        with Pacer._lock:
            Pacer._next[self.key] = max(Pacer._next.get(self.key, 0.0), self.clock() + seconds)

    @classmethod
    def forget(cls) -> None:
        """Forget every key's next slot (tests that start a fresh clock)."""
        with cls._lock:
            cls._next.clear()


class Statuspage:
    """Publishes the bot's approved drafts to one Atlassian Statuspage page."""

    provider = "Statuspage"

    def __init__(self, settings: StatuspageSettings, policy: StatusPagePolicy, *,
                 session: requests.Session | None = None, timeout: float = 10.0, pacer: Pacer | None = None) -> None:
        self.settings = settings
        self.policy = policy
        self.timeout = timeout
        self.pacer = pacer or Pacer(settings.api_key)
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"OAuth {settings.api_key}", "Accept": "application/json"})
        self._secrets = (settings.api_key,)
        self._base = f"{settings.api_url}pages/{settings.page_id}/"

    # ----------------------------------------------------------- public

    def publish(self, action: Action, *, resumed: bool = False) -> Result:
        """Carry out ``action``. ``resumed``: an earlier attempt may have landed, so look before posting again.
        A create always looks first (one list request)."""
        if action.kind == "nothing":
            return Refused(f"nothing to publish: {action.reason}")
        calls = 0
        remote_id = action.remote_id
        if action.kind == "create" or remote_id is None or resumed:
            found = self.find(action.incident_key)
            if not isinstance(found, _Found):
                return found
            calls += found.calls
            incident = found.incident
            if incident is not None:
                remote_id = str(incident.get("id"))
                resolved = incident.get("status") in ("resolved", "postmortem")
                if _last_body(incident) == action.text.strip() and (action.kind != "resolve" or resolved):
                    return Sent(remote_id, found_again=True, calls=calls)
                if resolved:
                    return Refused(f"Statuspage incident {remote_id} is already resolved; a later draft cannot be "
                                   "posted to it", calls=calls)
            elif action.kind == "create":
                return _add(self._create(action), calls)
            elif remote_id is None:
                return Refused(f"Statuspage has no incident with the bot's key {action.incident_key} to "
                               f"{action.kind}", calls=calls)
            # else: its metadata was edited by a person; the recorded id still holds
        fields: dict[str, Any] = {"body": action.text, "deliver_notifications": self.policy.notify}
        if action.kind == "resolve":
            fields.update(status="resolved", components=dict.fromkeys(self.policy.components, "operational"))
        else:
            fields.update(components=dict.fromkeys(self.policy.components, self.policy.component_status))
        answer = self._call("PATCH", f"incidents/{remote_id}", json={"incident": fields})
        if not isinstance(answer, Answer):
            return _add(answer, calls)
        return Sent(remote_id, calls=calls + 1)

    def find(self, key: str) -> _Found | Result:
        """The incident whose metadata holds ``key``; two or more: :class:`Ambiguous`.

        First the unresolved incidents (where the bot's live incident is, whatever a person renamed it to),
        then, only when none is the bot's, a search for the key (it is in the name) that also finds resolved
        ones. Both are checked on the metadata itself, never on the name alone.
        """
        mine: dict[str, dict[str, Any]] = {}
        calls = 0
        for path, params in (("incidents/unresolved", {"page": 1, "per_page": 100}),
                             ("incidents", {"q": key, "limit": 100})):
            answer = self._call("GET", path, params=params)
            calls += 1
            if not isinstance(answer, Answer):
                return _add(answer, calls - 1)
            if not isinstance(answer.body, list):
                return Refused(f"Statuspage {path}: the answer is not a list", calls=calls)
            mine.update((str(i.get("id")), i) for i in answer.body if isinstance(i, dict) and _key(i) == key)
            if mine:
                break
        if len(mine) > 1:
            return Ambiguous(f"Statuspage has {len(mine)} incidents with the bot's key {key} ({', '.join(mine)}); "
                             "remove the extra ones, then publish again", calls=calls)
        return _Found(next(iter(mine.values()), None), calls)

    def check(self) -> list[str]:
        """Live target check: the key works and every configured component exists on the page (paginated:
        unpaginated component lists are limited to one a minute)."""
        answer = self._call("GET", "components", params={"page": 1, "per_page": 100})
        if not isinstance(answer, Answer):
            return [answer.reason]
        known = {str(c.get("id")) for c in answer.body or [] if isinstance(c, dict)}
        return [f"status_page.components: Statuspage page {self.settings.page_id} has no component {c}"
                for c in self.policy.components if c not in known]

    # ---------------------------------------------------------- private

    def _create(self, action: Action) -> Result:
        incident = {"name": action.name, "status": "investigating", "body": action.text,
                    "component_ids": list(self.policy.components),
                    "components": dict.fromkeys(self.policy.components, self.policy.component_status),
                    "metadata": action.metadata, "deliver_notifications": self.policy.notify}
        answer = self._call("POST", "incidents", json={"incident": incident})
        if not isinstance(answer, Answer):
            return answer
        remote_id = answer.body.get("id") if isinstance(answer.body, dict) else None
        if not isinstance(remote_id, str) or not remote_id:
            return Refused("Statuspage incidents: the answer has no incident id", calls=1)
        return Sent(remote_id, calls=1)

    def _call(self, method: str, path: str, **kwargs: Any) -> Answer | Refused | Unavailable:
        answer = request(self.session, method, self._base + path, provider=self.provider, secrets=self._secrets,
                         timeout=self.timeout, before=self.pacer.wait, **kwargs)
        if isinstance(answer, Unavailable) and answer.retry_after:
            self.pacer.defer(answer.retry_after)
        return answer


class _Found:
    def __init__(self, incident: dict[str, Any] | None, calls: int) -> None:
        self.incident = incident
        self.calls = calls


def _key(incident: dict[str, Any]) -> str | None:
    metadata = incident.get("metadata")
    space = metadata.get(METADATA_NAMESPACE) if isinstance(metadata, dict) else None
    value = space.get("key") if isinstance(space, dict) else None
    return value if isinstance(value, str) else None


def _last_body(incident: dict[str, Any]) -> str | None:
    """The newest incident update's body (Statuspage lists ``incident_updates`` newest first)."""
    updates = [u for u in incident.get("incident_updates") or [] if isinstance(u, dict)]
    if not updates:
        return None
    newest = max(enumerate(updates), key=lambda iu: (str(iu[1].get("created_at") or ""), -iu[0]))[1]
    body = newest.get("body")
    return body.strip() if isinstance(body, str) else None


def _add(result: Result, calls: int) -> Result:
    return replace(result, calls=result.calls + calls)
