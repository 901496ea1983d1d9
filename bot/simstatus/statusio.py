"""A simulated status.io API v2: incidents of one status page, its components and containers.

Shapes as status.io's own clients read them (statusio/statusio-go ``incidents.go``, ``incidents_types.go``,
``statusio.go``; statusio/statusio-python ``statusio/api.py``): ``x-api-id``/``x-api-key`` headers; every
answer ``{"status": {"error": "no"|"yes", "message": ...}, "result": ...}``; ``incident/create`` answers the new
id as ``result``; ``incident/list/{id}`` answers ``active_incidents`` and ``resolved_incidents``, each with
``_id``, ``name``, ``messages`` (``details``, ``state``, ``status``, ``datetime``). Errors (a wrong key, an
unknown component, container or incident, a missing field) come inside an HTTP 200 with ``error: "yes"``, as
the issue describes status.io and as the clients handle it (they test ``status.error`` after a 2xx).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.simstatus.server import LOST, Simulator

STATES = {100, 200, 300}
STATUSES = {100, 300, 400, 500, 600}
"""``current_state`` and ``current_status`` codes (statusio-go ``statusio.go``)."""


class SimulatedStatusIo(Simulator):
    """status.io on ``http://127.0.0.1:<port>/v2/``.

    ``components`` maps each component id to its container ids. ``incidents`` holds what the page shows, by id.
    ``in_band_error`` (a message) makes every request answer ``error: "yes"`` with it until cleared.
    """

    prefix = "/v2/"

    def __init__(self, *, api_id: str = "sim-api-id", api_key: str = "sim-api-key-0123456789",
                 statuspage_id: str = "sp0000000000000000000001",
                 components: dict[str, list[str]] | None = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__(clock=clock)
        self.api_id, self.api_key, self.statuspage_id = api_id, api_key, statuspage_id
        self.components = components if components is not None else {"cmp-web": ["ctr-global"]}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.component_status: dict[str, int] = {f"{c}-{k}": 100 for c, ks in self.components.items() for k in ks}
        self.in_band_error: str | None = None
        self._ids = itertools.count(1)

    # ------------------------------------------------------------- views

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [i for i in self.incidents.values() if i["name"] == name]

    def add_incident(self, name: str, details: str = "Existing", *, resolved: bool = False) -> str:
        """An incident created by someone else (e.g. a person by hand, with the bot's name)."""
        with self.lock:
            incident_id = self._new_id()
            self.incidents[incident_id] = {"_id": incident_id, "name": name, "resolved": resolved,
                                           "messages": [self._message(incident_id, details, 100, 100)],
                                           "infrastructure": []}
            return incident_id

    # ------------------------------------------------------------ serving

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        if headers.get("x-api-id") != self.api_id or headers.get("x-api-key") != self.api_key:
            return _fail("Unauthorized: check the API ID and API key")
        if self.in_band_error:
            return _fail(self.in_band_error)
        parts = path.split("/")
        if method == "GET" and parts[:2] == ["incident", "list"] and len(parts) == 3:
            return self._list(parts[2])
        if method == "GET" and parts[:2] == ["component", "list"] and len(parts) == 3:
            if parts[2] != self.statuspage_id:
                return _fail("Invalid statuspage_id")
            return _ok([{"_id": c, "name": c, "containers": [{"_id": k, "name": k} for k in ks]}
                        for c, ks in self.components.items()])
        if method == "POST" and parts[0] == "incident" and len(parts) == 2 and parts[1] in ("create", "update",
                                                                                              "resolve"):
            if not isinstance(body, dict):
                return _fail("Request body must be JSON")
            if body.get("statuspage_id") != self.statuspage_id:
                return _fail("Invalid statuspage_id")
            answer = getattr(self, f"_{parts[1]}")(body)
            if answer[1]["status"]["error"] == "no" and self._lost(parts[1]):
                return LOST, None, {}
            return answer
        return 404, {"status": {"error": "yes", "message": "Not found"}}, {}

    def _list(self, statuspage_id: str) -> tuple[int, Any, dict[str, str]]:
        if statuspage_id != self.statuspage_id:
            return _fail("Invalid statuspage_id")
        active = [_public(i) for i in self.incidents.values() if not i["resolved"]]
        resolved = [_public(i) for i in self.incidents.values() if i["resolved"]]
        return _ok({"active_incidents": active, "resolved_incidents": resolved})

    def _create(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        for key in ("incident_name", "incident_details", "current_status", "current_state"):
            if body.get(key) in (None, ""):
                return _fail(f"Missing {key}")
        affected = body.get("infrastructure_affected") or []
        if not isinstance(affected, list) or not affected:
            return _fail("infrastructure_affected: at least one component-container pair")
        for pair in affected:
            if pair not in self.component_status:
                return _fail(f"Invalid component-container combination: {pair}")
        bad = self._codes(body)
        if bad:
            return _fail(bad)
        incident_id = self._new_id()
        self.incidents[incident_id] = {
            "_id": incident_id, "name": str(body["incident_name"]), "resolved": False, "infrastructure": affected,
            "messages": [self._message(incident_id, str(body["incident_details"]), int(body["current_state"]),
                                       int(body["current_status"]))]}
        for pair in affected:
            self.component_status[pair] = int(body["current_status"])
        return _ok(incident_id)

    def _update(self, body: dict[str, Any], *, resolve: bool = False) -> tuple[int, Any, dict[str, str]]:
        incident = self.incidents.get(str(body.get("incident_id")))
        if incident is None:
            return _fail("Invalid incident_id")
        if incident["resolved"]:
            return _fail("Incident is already resolved")
        if body.get("incident_details") in (None, ""):
            return _fail("Missing incident_details")
        bad = self._codes(body)
        if bad:
            return _fail(bad)
        status = int(body["current_status"])
        incident["messages"].append(self._message(incident["_id"], str(body["incident_details"]),
                                                  int(body["current_state"]), status))
        for pair in incident["infrastructure"]:
            self.component_status[pair] = 100 if resolve else status
        incident["resolved"] = resolve
        return _ok(True)

    def _resolve(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        return self._update(body, resolve=True)

    @staticmethod
    def _codes(body: dict[str, Any]) -> str | None:
        if body.get("current_status") not in STATUSES:
            return f"Invalid current_status: {body.get('current_status')}"
        if body.get("current_state") not in STATES:
            return f"Invalid current_state: {body.get('current_state')}"
        return None

    def _new_id(self) -> str:
        return f"{next(self._ids):024x}"

    def _message(self, incident_id: str, details: str, state: int, status: int) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        return {"_id": self._new_id(), "incident": incident_id, "statuspage": self.statuspage_id,
                "details": details, "state": state, "status": status, "datetime": stamp}


def _public(incident: dict[str, Any]) -> dict[str, Any]:
    return {"_id": incident["_id"], "name": incident["name"], "messages": list(incident["messages"])}


def _ok(result: Any) -> tuple[int, Any, dict[str, str]]:
    return 200, {"status": {"error": "no", "message": "OK"}, "result": result}, {}


def _fail(message: str) -> tuple[int, Any, dict[str, str]]:
    return 200, {"status": {"error": "yes", "message": message}}, {}
