"""The receiver queues each delivery's work with the priority of what it is (bot.core.urgency.intake_priority)."""

from __future__ import annotations

import copy
import json
from typing import Any

from flask.testing import FlaskClient
from websupport import HOOK_HEADERS, ROOT

from bot.core.urgency import Priority
from bot.store import DeliveryStore
from tests import store_inspect as peek

INCIDENT_KEY = "42#12"
COMMAND = json.loads((ROOT / "tests" / "payloads" / "note_command.json").read_text())
COMMAND["project"]["path_with_namespace"] = "acme/security-incidents"  # inside the incident scope


def post(client: FlaskClient, payload: Any, event: str = "Issue Hook", did: str = "d-1") -> int:
    headers = {**HOOK_HEADERS, "X-Gitlab-Event": event, "Idempotency-Key": did}
    return client.post("/webhook", data=json.dumps(payload).encode(), headers=headers).status_code


def labelled(payload: dict[str, Any], *labels: str, action: str = "update") -> dict[str, Any]:
    out = copy.deepcopy(payload)
    out["labels"] = [{"title": t} for t in ("security-incident", *labels)]
    out["object_attributes"]["labels"] = out["labels"]
    out["object_attributes"]["action"] = action
    out["object_attributes"]["severity"] = "unknown"  # the labels alone say how severe it is
    out.pop("changes", None)
    return out


def test_a_new_critical_incident_is_queued_urgent_and_an_edit_of_it_high(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    assert post(client, labelled(incident_payload, "severity::1", action="open"), did="open") == 202
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.priority == Priority.URGENT
    assert post(client, labelled(incident_payload, "severity::1"), did="edit") == 202
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.priority == Priority.URGENT, "the queued job keeps the more urgent priority"


def test_an_edit_of_a_medium_incident_is_normal_work(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    assert post(client, labelled(incident_payload, "severity::3")) == 202
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.priority == Priority.NORMAL


def test_a_command_is_urgent_a_person_waits_for_the_reply(client: FlaskClient, store: DeliveryStore) -> None:
    assert post(client, COMMAND, event="Note Hook") == 202
    [job] = peek.jobs(store)
    assert job.priority == Priority.URGENT


def test_the_bundled_example_of_a_critical_incident_is_high(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    """examples/payloads/s1-incident.json: channels added to an incident that was already critical."""
    assert post(client, incident_payload) == 202
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.priority == Priority.HIGH

