"""Bad input: thousands of malformed requests never cause a 5xx, never store an unauthenticated delivery,
and whatever was stored is then processed by the worker without a crash."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websupport import INCIDENT_PAYLOAD, SECRET, FakeClock, FakeReconciler, event_header_for

from bot.store import DeliveryStore, JobState
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.hypothesis_profiles import examples

LIMIT = 64 * 1024
EVENTS = ["Issue Hook", "Confidential Issue Hook", "Note Hook", "Confidential Note Hook", "Push Hook", "", "Ünïcode"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 3) -> Iterator[tuple[Any, ...]]:
    """Every key path into a JSON document, down to ``depth``."""
    if depth == 0:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key), depth - 1)


def mutate(doc: Any, path: tuple[Any, ...], replacement: Any = ..., remove: bool = False) -> Any:
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


@pytest.fixture
def receiver(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(max_body_bytes=LIMIT).test_client()


@pytest.fixture(scope="module")
def payloads(shared_payloads: dict[str, bytes]) -> list[Any]:
    return [json.loads(b) for b in shared_payloads.values()] + [json.loads(INCIDENT_PAYLOAD.read_bytes())]


class Sender:
    """Posts a request and checks the two properties every request must keep."""

    def __init__(self, client: FlaskClient, store: DeliveryStore) -> None:
        self.client = client
        self.store = store
        self.statuses: dict[int, int] = {}

    def __call__(self, body: bytes, headers: dict[str, str], authenticated: bool) -> int:
        before = self.store.stats().deliveries
        response = self.client.post("/webhook", data=body, headers=headers)
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        assert status < 500, (status, body[:200], headers)
        if not authenticated:
            assert status == 401
            assert self.store.stats().deliveries == before
        return status


def headers_for(authenticated: bool, event: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"X-Gitlab-Event": event, "Content-Type": "application/json", **(extra or {})}
    headers["X-Gitlab-Token"] = SECRET if authenticated else "not-the-secret"
    return headers


def drain(store: DeliveryStore, clock: FakeClock) -> list[Any]:
    """The worker processes everything stored, with a fake reconciler, and never raises.

    Time is moved on whenever only back-off keeps jobs waiting, so every job reaches an end state.
    """
    worker = Worker(store, FakeReconciler(), worker_id="drain:1", clock=clock, settle=timedelta(0))
    results = []
    for _ in range(10_000):
        result = worker.run_once()
        if result is not None:
            results.append(result)
        elif peek.depth(store)["pending"]:
            clock.advance(3600)
        else:
            break
    assert peek.depth(store) == {"pending": 0, "running": 0, "dead": len(store.dead_jobs())}
    # Only a payload naming an impossible issue (e.g. iid -1) can fail, and it is dead-lettered.
    for job in store.dead_jobs():
        assert "bad incident key" in (job.last_error or ""), job
    return results


def test_every_real_payload_with_any_field_removed_or_retyped(
    receiver: FlaskClient, store: DeliveryStore, clock: FakeClock, payloads: list[Any]
) -> None:
    send = Sender(receiver, store)
    weird: list[Any] = [None, 0, -1, 2**70, "", "x" * 300, [], {}, [None], {"title": 5}, True, 1.5]
    n = 0
    for payload in payloads:
        event = event_header_for(payload)
        for path in paths(payload):
            variants = [mutate(payload, path, remove=True)] + [mutate(payload, path, w) for w in weird[n % 3 :: 3]]
            for variant in variants:
                n += 1
                body = json.dumps(variant).encode()
                authenticated = n % 4 != 0
                send(body, headers_for(authenticated, event, {"Idempotency-Key": f"k{n}"}), authenticated)
    assert n > 1000
    assert send.statuses.get(401, 0) >= n // 4
    drain(store, clock)


def test_malformed_requests_never_cause_a_5xx_or_an_unauthenticated_record_and_the_worker_survives_them(
    receiver: FlaskClient, store: DeliveryStore, clock: FakeClock, payloads: list[Any]
) -> None:
    send = Sender(receiver, store)
    storm_size = examples(1500, at_least=100)  # enough to see both 202 and 401 below

    @settings(max_examples=storm_size, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def storm(data: st.DataObject) -> None:
        authenticated = data.draw(st.booleans(), "authenticated")
        kind = data.draw(st.sampled_from(["garbage", "json", "retyped", "invalid utf-8", "huge", "nested"]), "kind")
        if kind == "garbage":
            body = data.draw(st.binary(max_size=512))
        elif kind == "json":
            body = json.dumps(data.draw(json_values)).encode()
        elif kind == "retyped":
            payload = data.draw(st.sampled_from(payloads))
            path = data.draw(st.sampled_from(list(paths(payload))))
            body = json.dumps(mutate(payload, path, data.draw(json_values))).encode()
        elif kind == "invalid utf-8":
            payload = data.draw(st.sampled_from(payloads))
            text = json.dumps(payload).encode()
            cut = data.draw(st.integers(0, len(text)))
            body = (
                text[:cut] + data.draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])) + text[cut:]
            )
        elif kind == "huge":
            body = b'{"object_kind": "issue", "pad": "' + b"x" * data.draw(st.integers(LIMIT - 40, LIMIT + 10)) + b'"}'
        else:
            depth = data.draw(st.integers(1, 3000))
            body = b'{"object_kind": "issue", "object_attributes": ' + b"[" * depth + b"]" * depth + b"}"
        headers = headers_for(authenticated, data.draw(st.sampled_from(EVENTS)))
        if data.draw(st.booleans(), "odd headers"):
            headers["Content-Type"] = data.draw(
                st.sampled_from(["text/plain", "application/x-www-form-urlencoded", ""])
            )
            headers["Idempotency-Key"] = data.draw(
                st.text(max_size=300).filter(lambda s: "\n" not in s and "\r" not in s)
            )
            headers["X-Gitlab-Event-UUID"] = data.draw(
                st.text(max_size=50).filter(lambda s: "\n" not in s and "\r" not in s)
            )
        status = send(body, headers, authenticated)
        if kind == "huge" and len(body) > LIMIT:
            assert status == (413 if authenticated else 401)

    storm()
    assert sum(send.statuses.values()) == storm_size
    assert send.statuses.get(202, 0) > 0 and send.statuses.get(401, 0) > 0
    drain(store, clock)


def test_after_the_storm_the_worker_processes_all_that_was_stored(
    receiver: FlaskClient, store: DeliveryStore, clock: FakeClock, payloads: list[Any]
) -> None:
    """Jobs keyed by whatever a mangled payload named still reach the worker and end done or retried."""
    send = Sender(receiver, store)
    for i, payload in enumerate(payloads):
        for j, path in enumerate(paths(payload, depth=2)):
            variant = mutate(payload, path, f"#{i}-{j}")
            send(json.dumps(variant).encode(), headers_for(True, event_header_for(payload)), True)
    results = drain(store, clock)
    assert any(r.outcome is Outcome.OK for r in results), "some mangled incident payloads still name an incident"
    assert all(j.state in (JobState.DONE, JobState.DEAD) for j in peek.jobs(store))
