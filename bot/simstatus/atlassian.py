"""A simulated Atlassian Statuspage API v1: one page's incidents (with metadata) and components.

From Statuspage's API reference (developer.statuspage.io; the generated clients' ``IncidentsApi`` and
``PostPagesPageIdIncidentsIncident`` models): ``Authorization: OAuth <key>``; ``POST pages/{page_id}/incidents``
and ``PATCH pages/{page_id}/incidents/{incident_id}`` with ``{"incident": {...}}``; ``GET
pages/{page_id}/incidents`` with ``q`` ("search for the text query string in the incidents' name, status,
postmortem_body, and incident_updates fields") and ``limit`` ("The default and maximum limit is 100"); incident
``metadata`` ("Top level values must be objects"); ``incident_updates`` newest first; ``GET
pages/{page_id}/incidents/unresolved`` with ``page`` and ``per_page``. Rate limit: one request a
second per key, beyond it 420 (or 429 after the announced change) with ``Retry-After`` (Atlassian Community,
"Upcoming rate limiting changes to Statuspage REST API").
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.simstatus.server import LOST, Simulator

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
MAX_LIMIT = 100


class SimulatedStatuspage(Simulator):
    """Statuspage on ``http://127.0.0.1:<port>/v1/``.

    ``rate_status`` is 420 (the historical code) or 429; ``interval`` the seconds between two requests per key.
    """

    prefix = "/v1/"

    def __init__(self, *, api_key: str = "sim-statuspage-key-0123456789", page_id: str = "page0001",
                 components: list[str] | None = None, clock: Callable[[], float] | None = None,
                 interval: float = 1.0, rate_status: int = 429) -> None:
        super().__init__(clock=clock)
        self.api_key, self.page_id = api_key, page_id
        self.components: dict[str, str] = dict.fromkeys(components or ["cmp0001"], "operational")
        self.incidents: dict[str, dict[str, Any]] = {}
        self.interval, self.rate_status = interval, rate_status
        self._last: dict[str, float] = {}
        self._ids = itertools.count(1)

    def add_incident(self, name: str, body: str = "Existing", *, metadata: dict[str, Any] | None = None) -> str:
        """An incident made by someone else (e.g. by hand, or copied with the bot's metadata)."""
        with self.lock:
            return self._new(name, "investigating", body, metadata or {})

    def with_key(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [i for i in self.incidents.values()
                    if isinstance(i["metadata"].get("incident_bot"), dict)
                    and i["metadata"]["incident_bot"].get("key") == key]

    # ------------------------------------------------------------ serving

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        auth = headers.get("authorization", "")
        if auth != f"OAuth {self.api_key}":
            return 401, {"error": "Could not authenticate"}, {}
        now = self.clock()
        last = self._last.get(auth)
        if last is not None and now - last < self.interval:
            wait = max(1, math.ceil(self.interval - (now - last)))
            return self.rate_status, {"error": "Rate limit exceeded"}, {"Retry-After": str(wait)}
        self._last[auth] = now
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "pages" or parts[1] != self.page_id:
            return 404, {"error": "Page not found"}, {}
        rest = parts[2:]
        if rest == ["incidents"] and method == "GET":
            return self._list(query)
        if rest == ["incidents", "unresolved"] and method == "GET":
            return self._unresolved(query)
        if rest == ["components"] and method == "GET":
            return 200, [{"id": c, "name": c, "status": s} for c, s in self.components.items()], {}
        if rest == ["incidents"] and method == "POST":
            answer = self._create(body)
        elif len(rest) == 2 and rest[0] == "incidents" and method in ("PATCH", "PUT"):
            answer = self._update(rest[1], body)
        else:
            return 404, {"error": "Not found"}, {}
        if answer[0] < 300 and self._lost("create" if method == "POST" else "update"):
            return LOST, None, {}
        return answer

    def _list(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        try:
            limit = int(query.get("limit", MAX_LIMIT))
        except ValueError:
            return 400, {"error": "limit must be a number"}, {}
        text = query.get("q", "").lower()
        found = [i for i in reversed(list(self.incidents.values())) if not text or text in _searchable(i)]
        return 200, found[:max(1, min(limit, MAX_LIMIT))], {}

    def _unresolved(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        try:
            page, per_page = int(query.get("page", 1)), int(query.get("per_page", MAX_LIMIT))
        except ValueError:
            return 400, {"error": "page and per_page must be numbers"}, {}
        per_page = max(1, min(per_page, MAX_LIMIT))
        found = [i for i in reversed(list(self.incidents.values())) if i["status"] not in ("resolved", "postmortem")]
        return 200, found[(max(page, 1) - 1) * per_page:][:per_page], {}

    def _create(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict) or not incident.get("name"):
            return 422, {"error": "incident name can't be blank"}, {}
        status = incident.get("status", "investigating")
        problem = self._check(incident, status)
        if problem:
            return 422, {"error": problem}, {}
        incident_id = self._new(str(incident["name"]), status, str(incident.get("body") or ""),
                                incident.get("metadata") or {})
        self._mark(incident.get("components") or {})
        return 201, self.incidents[incident_id], {}

    def _update(self, incident_id: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        current = self.incidents.get(incident_id)
        if current is None:
            return 404, {"error": "Incident not found"}, {}
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict):
            return 422, {"error": "incident is missing"}, {}
        status = incident.get("status", current["status"])
        problem = self._check(incident, status)
        if problem:
            return 422, {"error": problem}, {}
        if "metadata" in incident:
            current["metadata"] = incident["metadata"]
        current["status"] = status
        if status == "resolved":
            current["resolved_at"] = self._stamp()
        if incident.get("body"):
            current["incident_updates"].insert(0, self._update_row(incident_id, status, str(incident["body"])))
        self._mark(incident.get("components") or {})
        current["updated_at"] = self._stamp()
        return 200, current, {}

    def _check(self, incident: dict[str, Any], status: Any) -> str | None:
        if status not in INCIDENT_STATUSES:
            return f"status is not included in the list: {status}"
        components = incident.get("components") or {}
        ids = list(incident.get("component_ids") or []) + list(components)
        unknown = [c for c in ids if c not in self.components]
        if unknown:
            return f"component not found: {unknown[0]}"
        if any(v not in COMPONENT_STATUSES for v in components.values()):
            return "component status is not included in the list"
        metadata = incident.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict)
                                     or not all(isinstance(v, dict) for v in metadata.values())):
            return "metadata: top level values must be objects"
        return None

    def _mark(self, components: dict[str, str]) -> None:
        for component, status in components.items():
            self.components[component] = status

    def _new(self, name: str, status: str, body: str, metadata: dict[str, Any]) -> str:
        incident_id = f"inc{next(self._ids):09d}"
        self.incidents[incident_id] = {
            "id": incident_id, "page_id": self.page_id, "name": name, "status": status, "metadata": metadata,
            "created_at": self._stamp(), "updated_at": self._stamp(), "resolved_at": None,
            "incident_updates": [self._update_row(incident_id, status, body)] if body else []}
        return incident_id

    def _update_row(self, incident_id: str, status: str, body: str) -> dict[str, Any]:
        return {"id": f"upd{next(self._ids):09d}", "incident_id": incident_id, "status": status, "body": body,
                "created_at": self._stamp()}

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat()


def _searchable(incident: dict[str, Any]) -> str:
    bodies = " ".join(str(u.get("body")) for u in incident["incident_updates"])
    return f"{incident['name']} {incident['status']} {bodies}".lower()
