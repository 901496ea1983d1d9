"""The webhook receiver as GitLab and an attacker see it: status codes, what is stored, what is counted."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from websupport import HOOK_HEADERS, SECRET, FakeClock, event_header_for, metric_value

from bot.config import Config
from bot.metrics import Metrics
from bot.store import DeliveryStore, JobState, RecordResult, StoreError
from bot.web.app import WebSettings, create_app
from bot.web.auth import sign, token_matches
from tests import store_inspect as peek

INCIDENT_KEY = "42#12"
SIGNING_KEY = bytes(range(32))
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()


def post(client: FlaskClient, payload: Any, **headers: str) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhook", data=body, headers={**HOOK_HEADERS, **headers})


def signed_headers(body: bytes, when: datetime, msg_id: str = "msg-1", key: bytes = SIGNING_KEY) -> dict[str, str]:
    ts = str(int(when.timestamp()))
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": "v1," + sign(key, msg_id, ts, body)}


def stored_ids(store: DeliveryStore) -> int:
    return store.stats().deliveries


# ---------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "token",
    [None, "", "wrong", SECRET + "x", SECRET[:-1], "sëcret-tökén", "\u2603" * 12, SECRET.upper()],
    ids=["missing", "empty", "wrong", "longer", "shorter", "non-ascii", "snowmen", "case"],
)
def test_wrong_or_missing_token_is_401_and_nothing_is_stored(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any], token: str | None, metrics: Metrics
) -> None:
    headers = {k: v for k, v in HOOK_HEADERS.items() if k != "X-Gitlab-Token"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    response = client.post("/webhook", data=json.dumps(incident_payload), headers=headers)
    assert response.status_code == 401
    assert stored_ids(store) == 0
    assert peek.depth(store)["pending"] == 0
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event="Issue Hook", outcome="unauthorized")


def test_token_is_checked_before_the_body_is_read(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    body_reads: list[int] = []

    class CountingStream:
        def read(self, *args: Any) -> bytes:
            body_reads.append(1)
            return b"{}"

    environ = {"wsgi.input": CountingStream(), "CONTENT_LENGTH": "2"}
    with app.test_request_context("/webhook", method="POST", headers={"X-Gitlab-Token": "nope"}, environ_base=environ):
        response = app.full_dispatch_request()
    assert response.status_code == 401
    assert body_reads == []


def test_a_non_ascii_secret_matches_its_utf8_bytes_as_a_wsgi_server_passes_them() -> None:
    secret = "pässwörd"
    as_wsgi_header = secret.encode("utf-8").decode("latin-1")  # what gunicorn puts in the environ
    assert token_matches(as_wsgi_header, secret.encode("utf-8"))
    assert not token_matches("passwort", secret.encode("utf-8"))
    assert not token_matches("\udcff\u2603", secret.encode("utf-8"))  # never raises


# ---------------------------------------------------------------------------- signatures


def test_valid_signature_is_accepted(
    make_app: Callable[..., Flask], clock: FakeClock, incident_payload: dict[str, Any], store: DeliveryStore
) -> None:
    client = make_app(signing_token=SIGNING_TOKEN).test_client()
    body = json.dumps(incident_payload).encode()
    response = post(client, body, **signed_headers(body, clock()))
    assert response.status_code == 202
    assert peek.active_job(store, INCIDENT_KEY) is not None


def test_one_of_several_signatures_may_match(
    make_app: Callable[..., Flask], clock: FakeClock, incident_payload: dict[str, Any]
) -> None:
    """Key rotation: GitLab may send several space-separated ``v1,<sig>`` entries."""
    client = make_app(signing_token=SIGNING_TOKEN).test_client()
    body = json.dumps(incident_payload).encode()
    headers = signed_headers(body, clock())
    old = signed_headers(body, clock(), key=b"k" * 32)["webhook-signature"]
    headers["webhook-signature"] = f"{old} v2,abc {headers['webhook-signature']}"
    assert post(client, body, **headers).status_code == 202


@pytest.mark.parametrize("problem", ["tampered body", "wrong key", "missing", "stale", "future", "garbage timestamp"])
def test_invalid_or_stale_signature_is_401_and_nothing_is_stored(
    make_app: Callable[..., Flask],
    clock: FakeClock,
    incident_payload: dict[str, Any],
    store: DeliveryStore,
    problem: str,
) -> None:
    client = make_app(signing_token=SIGNING_TOKEN).test_client()
    body = json.dumps(incident_payload).encode()
    headers = signed_headers(body, clock())
    if problem == "tampered body":
        body = body.replace(b"Customer", b"Kustomer")
    elif problem == "wrong key":
        headers = signed_headers(body, clock(), key=b"x" * 32)
    elif problem == "missing":
        headers = {}
    elif problem == "stale":
        clock.advance(5 * 60 + 1)
    elif problem == "future":
        clock.advance(-(5 * 60 + 1))
    else:
        headers["webhook-timestamp"] = "yesterday"
    assert post(client, body, **headers).status_code == 401
    assert stored_ids(store) == 0


def test_signature_within_tolerance_is_accepted(
    make_app: Callable[..., Flask], clock: FakeClock, incident_payload: dict[str, Any]
) -> None:
    client = make_app(signing_token=SIGNING_TOKEN).test_client()
    body = json.dumps(incident_payload).encode()
    headers = signed_headers(body, clock())
    clock.advance(4 * 60)
    assert post(client, body, **headers).status_code == 202


def test_signature_does_not_replace_the_secret_token(
    make_app: Callable[..., Flask], clock: FakeClock, incident_payload: dict[str, Any]
) -> None:
    client = make_app(signing_token=SIGNING_TOKEN).test_client()
    body = json.dumps(incident_payload).encode()
    assert post(client, body, **signed_headers(body, clock()), **{"X-Gitlab-Token": "wrong"}).status_code == 401


def test_malformed_signing_token_is_refused_at_startup(make_app: Callable[..., Flask]) -> None:
    for bad in ("secret", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match="GITLAB_WEBHOOK_SIGNING_TOKEN"):
            make_app(signing_token=bad)


def test_an_empty_secret_is_refused_at_startup(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ValueError, match="GITLAB_WEBHOOK_SECRET"):
        make_app(secret="")


# ---------------------------------------------------------------------------- body limits


def test_chunked_body_is_411(client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any]) -> None:
    body = json.dumps(incident_payload).encode()
    response = client.post(
        "/webhook", input_stream=io.BytesIO(body), headers={**HOOK_HEADERS, "Transfer-Encoding": "chunked"}
    )
    assert response.status_code == 411
    assert stored_ids(store) == 0


def test_missing_content_length_is_411(make_app: Callable[..., Flask], store: DeliveryStore) -> None:
    app = make_app()
    with app.test_request_context("/webhook", method="POST", headers=HOOK_HEADERS, data=b"{}") as ctx:
        ctx.request.environ.pop("CONTENT_LENGTH", None)
        response = app.full_dispatch_request()
    assert response.status_code == 411
    assert stored_ids(store) == 0


def test_oversize_body_is_413_without_being_stored(
    make_app: Callable[..., Flask], store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    client = make_app(max_body_bytes=1024).test_client()
    small = json.dumps({**incident_payload, "object_attributes": {"iid": 1}}).encode()[:1024]
    big = json.dumps({**incident_payload, "pad": "x" * 2000}).encode()
    assert post(client, big).status_code == 413
    assert stored_ids(store) == 0
    assert post(client, small).status_code in (200, 202)


def test_default_limit_is_gitlabs_25_mb(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    too_big = str(25 * 1024 * 1024 + 1)
    response = client.post("/webhook", data=b"", headers=HOOK_HEADERS, environ_overrides={"CONTENT_LENGTH": too_big})
    assert response.status_code == 413


# ---------------------------------------------------------------------------- what is accepted


def test_every_real_gitlab_payload_gets_a_2xx(
    client: FlaskClient, shared_payloads: dict[str, bytes], store: DeliveryStore, metrics: Metrics
) -> None:
    for i, (name, body) in enumerate(shared_payloads.items()):
        header = event_header_for(json.loads(body))
        response = post(client, body, **{"X-Gitlab-Event": header, "Idempotency-Key": f"real-{i}"})
        assert response.status_code in (200, 202), name
        assert peek.get_delivery(store, f"real-{i}") is not None, name
    assert stored_ids(store) == len(shared_payloads)


@pytest.mark.parametrize(
    "case",
    ["unknown event", "note on a commit", "not an incident", "the bot's own change", "system hook", "json list"],
)
def test_valid_deliveries_the_bot_does_not_act_on_get_a_2xx_and_are_counted(
    client: FlaskClient,
    store: DeliveryStore,
    metrics: Metrics,
    incident_payload: dict[str, Any],
    shared_payloads: dict[str, bytes],
    case: str,
) -> None:
    header = "Issue Hook"
    payload: Any = incident_payload
    if case == "unknown event":
        header = "Pipeline Hook"
    elif case == "note on a commit":
        header, payload = "Note Hook", json.loads(shared_payloads["note_on_commit.json"])
    elif case == "not an incident":
        payload = json.loads(shared_payloads["issue_open.json"])
    elif case == "the bot's own change":
        payload = {**incident_payload, "user": {"username": "incident-bot"}}
    elif case == "system hook":
        header = "System Hook"
    else:
        payload = [1, 2, 3]
    response = post(client, payload, **{"X-Gitlab-Event": header, "Idempotency-Key": "k1"})
    assert response.status_code == 202
    assert response.get_json()["status"] == "ignored"
    assert peek.depth(store)["pending"] == 0
    assert peek.get_delivery(store, "k1") is not None
    assert peek.get_delivery(store, "k1").incident_key is None
    label = header if header != "System Hook" else "System Hook"
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event=label, outcome="ignored") == 1


def test_an_incident_delivery_is_queued_for_its_incident(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any], metrics: Metrics
) -> None:
    response = post(client, incident_payload, **{"Idempotency-Key": "d1", "X-Gitlab-Event-UUID": "uuid-1"})
    assert response.status_code == 202
    # The answer names the incident by path, as the logs and people do (GitLab shows it in Recent events).
    assert response.get_json() == {"status": "accepted", "delivery": "d1", "incident": "acme/security-incidents#12"}
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.state is JobState.PENDING
    assert job.event_uuid == "uuid-1"
    delivery = peek.get_delivery(store, "d1")
    assert delivery is not None and delivery.payload == json.dumps(incident_payload).encode()
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event="Issue Hook", outcome="accepted") == 1


def test_a_header_that_is_not_a_uuid_is_not_forwarded(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    post(client, incident_payload, **{"Idempotency-Key": "d1", "X-Gitlab-Event-UUID": "not a uuid; rm -rf"})
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.event_uuid is None


def test_duplicate_idempotency_key_is_stored_once(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any], metrics: Metrics
) -> None:
    first = post(client, incident_payload, **{"Idempotency-Key": "same"})
    again = post(client, incident_payload, **{"Idempotency-Key": "same"})
    assert first.status_code == 202
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert stored_ids(store) == 1
    job = peek.active_job(store, INCIDENT_KEY)
    assert job is not None and job.deliveries == 1
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event="Issue Hook", outcome="duplicate") == 1


def test_without_idempotency_key_a_resend_is_still_recognised(
    client: FlaskClient, store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    """Older GitLab: the event UUID, object id and ``updated_at`` identify the change."""
    headers = {"X-Gitlab-Event-UUID": "e-1"}
    assert post(client, incident_payload, **headers).status_code == 202
    assert post(client, incident_payload, **headers).get_json()["status"] == "duplicate"
    changed = {**incident_payload}
    changed["object_attributes"] = {**incident_payload["object_attributes"], "updated_at": "2026-11-28T09:06:00Z"}
    assert post(client, changed, **headers).get_json()["status"] == "accepted"
    assert stored_ids(store) == 2


def test_without_any_identifying_field_the_body_is_the_key(client: FlaskClient, store: DeliveryStore) -> None:
    assert post(client, {"object_kind": "push"}).status_code == 202
    assert post(client, {"object_kind": "push"}).get_json()["status"] == "duplicate"
    assert post(client, {"object_kind": "push", "n": 2}).status_code == 202
    assert stored_ids(store) == 2


def test_malformed_json_with_a_valid_token_is_answered_2xx_and_not_stored(
    client: FlaskClient, store: DeliveryStore, metrics: Metrics
) -> None:
    for body in (b"{not json", b"\xff\xfe\x00garbage", b" ", b"[" * 100_000):
        response = post(client, body)
        assert response.status_code == 200, body[:10]
        assert response.get_json()["status"] == "rejected"
    assert stored_ids(store) == 0
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event="Issue Hook", outcome="rejected") == 4


# ---------------------------------------------------------------------------- durability first


class BlockingStore:
    """Delegates to a real store, but ``record_delivery`` waits until the test lets it finish."""

    def __init__(self, inner: DeliveryStore) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.proceed = threading.Event()

    def record_delivery(self, *args: Any, **kwargs: Any) -> RecordResult:
        self.entered.set()
        assert self.proceed.wait(10)
        return self.inner.record_delivery(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_delivery_is_durable_before_the_2xx(
    make_app: Callable[..., Flask], store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    blocking = BlockingStore(store)
    client = make_app(store_=blocking).test_client()
    answers: list[int] = []
    sender = threading.Thread(target=lambda: answers.append(post(client, incident_payload).status_code))
    sender.start()
    assert blocking.entered.wait(10)
    time.sleep(0.05)  # give a premature answer the chance to arrive
    assert answers == []
    blocking.proceed.set()
    sender.join(10)
    assert answers == [202]
    assert peek.active_job(store, INCIDENT_KEY) is not None


class FailingStore(BlockingStore):
    def record_delivery(self, *args: Any) -> RecordResult:
        raise StoreError("database is locked")

    def ping(self) -> None:
        raise StoreError("disk I/O error")


def test_a_store_failure_is_503_the_only_5xx(
    make_app: Callable[..., Flask], store: DeliveryStore, incident_payload: dict[str, Any], metrics: Metrics
) -> None:
    client = make_app(store_=FailingStore(store)).test_client()
    response = post(client, incident_payload)
    assert response.status_code == 503
    outcome = "unavailable"
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event="Issue Hook", outcome=outcome) == 1


# ---------------------------------------------------------------------------- health, readiness, metrics


def test_health_and_readiness(make_app: Callable[..., Flask], store: DeliveryStore) -> None:
    ok = make_app().test_client()
    assert ok.get("/healthz").status_code == 200
    assert ok.get("/readyz").status_code == 200
    broken = make_app(store_=FailingStore(store)).test_client()
    assert broken.get("/healthz").status_code == 200
    response = broken.get("/readyz", headers={"X-Gitlab-Token": SECRET})
    assert response.status_code == 503
    assert "disk I/O error" in response.get_json()["reason"]


def test_metrics_show_deliveries_and_queue_depth(
    client: FlaskClient, incident_payload: dict[str, Any], store: DeliveryStore
) -> None:
    post(client, incident_payload, **{"Idempotency-Key": "a"})
    post(client, incident_payload, **{"X-Gitlab-Token": "wrong"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'incident_bot_webhook_deliveries_total{event="Issue Hook",outcome="accepted"} 1.0' in text
    assert 'incident_bot_webhook_deliveries_total{event="Issue Hook",outcome="unauthorized"} 1.0' in text
    assert 'incident_bot_queue_jobs{state="pending"} 1.0' in text
    assert 'incident_bot_queue_jobs{state="dead"} 0.0' in text
    assert "incident_bot_store_up 1.0" in text


def test_attacker_chosen_event_names_do_not_become_metric_labels(client: FlaskClient, metrics: Metrics) -> None:
    for i in range(50):
        post(client, {}, **{"X-Gitlab-Event": f"Evil {i}", "X-Gitlab-Token": "wrong"})
    assert metric_value(metrics, "incident_bot_webhook_deliveries_total", event="other", outcome="unauthorized") == 50


def test_two_apps_in_one_process_count_separately(
    make_app: Callable[..., Flask], store: DeliveryStore, default_config: Config
) -> None:
    first = make_app().test_client()
    other = Metrics()
    second = create_app(WebSettings(secret=SECRET), store=store, config=default_config, metrics=other).test_client()
    post(second, {}, **{"X-Gitlab-Token": "wrong"})
    assert metric_value(other, "incident_bot_webhook_deliveries_total", event="Issue Hook", outcome="unauthorized") == 1
    assert "unauthorized" not in first.get("/metrics").get_data(as_text=True)
