"""The status.io adapter (API v2): create, update and resolve the bot's incident, and find it again by name.

The API as its clients use it (statusio/statusio-go ``statusio.go``, ``incidents.go``, ``incidents_types.go``;
statusio/statusio-python ``statusio/api.py``): base ``https://api.status.io/v2/``; headers ``x-api-id`` and
``x-api-key``; ``POST incident/create`` (``statuspage_id``, ``infrastructure_affected`` as
``component-container`` pairs, ``incident_name``, ``incident_details``, ``current_status``, ``current_state``,
``message_subject``, the ``notify_*`` flags) answering the new id in ``result``; ``POST incident/update`` and
``POST incident/resolve`` (``incident_id``, ``incident_details``, ...); ``GET incident/list/{statuspage_id}``
answering ``result.active_incidents`` and ``result.resolved_incidents`` with each incident's ``_id``, ``name``
and ``messages``. Every answer carries ``status.error`` (``"no"``, else ``"yes"`` with ``status.message``)
inside an HTTP 200: the clients treat ``error != "no"`` as a failure, so does this adapter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import requests

from bot.integrations.statuspage.config import STATUSIO_STATUS, StatusIoSettings, StatusPagePolicy
from bot.integrations.statuspage.http import Answer, request
from bot.integrations.statuspage.plan import Action
from bot.integrations.statuspage.result import Ambiguous, Refused, Result, Sent, Unavailable, scrub

STATE_INVESTIGATING = 100
"""``current_state``: 100 investigating, 200 identified, 300 monitoring (statusio-go ``statusio.go``)."""
OPERATIONAL = STATUSIO_STATUS["operational"]


class StatusIo:
    """Publishes the bot's approved drafts to one status.io status page."""

    provider = "status.io"

    def __init__(self, settings: StatusIoSettings, policy: StatusPagePolicy, *,
                 session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.settings = settings
        self.policy = policy
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.update({"x-api-id": settings.api_id, "x-api-key": settings.api_key,
                                     "Accept": "application/json"})
        self._secrets = (settings.api_key, settings.api_id)

    # ----------------------------------------------------------- public

    def publish(self, action: Action, *, resumed: bool = False) -> Result:
        """Carry out ``action``. ``resumed``: an earlier attempt of this item may have landed (its answer was
        lost), so look before posting again. A create always looks first (one ``incident/list``)."""
        if action.kind == "nothing":
            return Refused(f"nothing to publish: {action.reason}")
        calls = 0
        remote_id = action.remote_id
        if action.kind == "create" or remote_id is None or resumed:
            found = self.find(action.name)
            if not isinstance(found, _Found):
                return found
            calls += found.calls
            if found.incident is not None:
                remote_id = str(found.incident.get("_id"))
                if _last_details(found.incident) == action.text.strip() and (action.kind != "resolve"
                                                                             or found.resolved):
                    return Sent(remote_id, found_again=True, calls=calls)
                if found.resolved:
                    return Refused(f"status.io incident {remote_id} is already resolved; a later draft cannot be "
                                   "posted to it", calls=calls)
            elif action.kind == "create":
                return _add(self._create(action), calls)
            elif remote_id is None:
                return Refused(f"status.io has no incident named {action.name!r} to {action.kind}", calls=calls)
            # else: renamed by a person; the recorded id still holds
        endpoint = "incident/resolve" if action.kind == "resolve" else "incident/update"
        status = OPERATIONAL if action.kind == "resolve" else STATUSIO_STATUS[self.policy.component_status]
        body = {"statuspage_id": self.settings.statuspage_id, "incident_id": remote_id,
                "incident_details": action.text, "current_status": status, "current_state": STATE_INVESTIGATING,
                "message_subject": action.name, **self._notify()}
        answer = self._post(endpoint, body)
        if not isinstance(answer, Answer):
            return _add(answer, calls)
        return Sent(remote_id, calls=calls + 1)

    def find(self, name: str) -> _Found | Result:
        """The incident with exactly this name, active or resolved; two or more: :class:`Ambiguous`."""
        answer = self._call("GET", f"incident/list/{self.settings.statuspage_id}")
        if not isinstance(answer, Answer):
            return answer
        result = answer.body.get("result") if isinstance(answer.body, dict) else None
        if not isinstance(result, dict):
            return Refused("status.io incident/list: the answer has no result", calls=1)
        active = [i for i in result.get("active_incidents") or [] if isinstance(i, dict) and i.get("name") == name]
        resolved = [i for i in result.get("resolved_incidents") or [] if isinstance(i, dict) and i.get("name") == name]
        if len(active) + len(resolved) > 1:
            ids = ", ".join(str(i.get("_id")) for i in active + resolved)
            return Ambiguous(f"status.io has {len(active) + len(resolved)} incidents named {name!r} ({ids}); "
                             "remove the extra ones, then publish again", calls=1)
        if active:
            return _Found(active[0], resolved=False, calls=1)
        return _Found(resolved[0] if resolved else None, resolved=bool(resolved), calls=1)

    def check(self) -> list[str]:
        """Live target check: the key works and every configured component and container exists."""
        answer = self._call("GET", f"component/list/{self.settings.statuspage_id}")
        if not isinstance(answer, Answer):
            return [answer.reason]
        result = answer.body.get("result") if isinstance(answer.body, dict) else None
        components = {str(c.get("_id")): {str(k.get("_id")) for k in c.get("containers") or []}
                      for c in result or [] if isinstance(c, dict)}
        problems = [f"status_page.components: status.io page {self.settings.statuspage_id} has no component {c}"
                    for c in self.policy.components if c not in components]
        for container in self.policy.containers:
            if not any(container in held for held in components.values()):
                problems.append(f"status_page.containers: status.io page {self.settings.statuspage_id} has no "
                                f"container {container}")
        return problems

    # ---------------------------------------------------------- private

    def _create(self, action: Action) -> Result:
        body = {"statuspage_id": self.settings.statuspage_id, "infrastructure_affected": self.policy.infrastructure,
                "incident_name": action.name, "incident_details": action.text,
                "current_status": STATUSIO_STATUS[self.policy.component_status],
                "current_state": STATE_INVESTIGATING, "message_subject": action.name,
                "all_infrastructure_affected": "0", **self._notify()}
        answer = self._post("incident/create", body)
        if not isinstance(answer, Answer):
            return answer
        remote_id = answer.body.get("result") if isinstance(answer.body, dict) else None
        if not isinstance(remote_id, str) or not remote_id:
            return Refused("status.io incident/create: the answer has no incident id", calls=1)
        return Sent(remote_id, calls=1)

    def _notify(self) -> dict[str, str]:
        flag = "1" if self.policy.notify else "0"
        return {"notify_email": flag, "notify_sms": flag, "notify_webhook": flag, "social": "0", "irc": "0",
                "hipchat": "0", "slack": "0"}

    def _post(self, endpoint: str, body: dict[str, Any]) -> Answer | Refused | Unavailable:
        return self._call("POST", endpoint, json=body)

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> Answer | Refused | Unavailable:
        answer = request(self.session, method, self.settings.api_url + endpoint, provider=self.provider,
                         secrets=self._secrets, timeout=self.timeout, **kwargs)
        if not isinstance(answer, Answer):
            return answer
        status = answer.body.get("status") if isinstance(answer.body, dict) else None
        if not isinstance(status, dict) or status.get("error") != "no":
            message = status.get("message") if isinstance(status, dict) else None
            return Refused(scrub(f"status.io {endpoint.split('/')[0]}/{endpoint.split('/')[1]}: "
                                 f"{message or 'the answer is not a status.io answer'}", self._secrets), calls=1)
        return answer


class _Found:
    def __init__(self, incident: dict[str, Any] | None, *, resolved: bool, calls: int) -> None:
        self.incident = incident
        self.resolved = resolved
        self.calls = calls


def _last_details(incident: dict[str, Any]) -> str | None:
    messages = [m for m in incident.get("messages") or [] if isinstance(m, dict)]
    if not messages:
        return None
    latest = max(enumerate(messages), key=lambda im: (str(im[1].get("datetime") or ""), im[0]))[1]
    details = latest.get("details")
    return details.strip() if isinstance(details, str) else None


def _add(result: Result, calls: int) -> Result:
    """``result`` with ``calls`` more requests counted."""
    return replace(result, calls=result.calls + calls)
