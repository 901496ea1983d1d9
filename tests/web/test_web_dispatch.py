"""``POST /webhook`` reaches the receiver by two paths: the WSGI route in front of Flask (what gunicorn and
the test client call) and the Flask route behind it. Both must answer alike and keep every check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from websupport import HOOK_HEADERS, SECRET

from bot.store import DeliveryStore, SQLiteStore

LIMIT = 16 * 1024


def via_wsgi(app: Flask, body: bytes, headers: dict[str, str], environ: dict[str, Any]) -> tuple[int, Any]:
    response = app.test_client().post("/webhook", data=body, headers=headers, environ_overrides=environ)
    return response.status_code, response.get_json()


def via_flask(app: Flask, body: bytes, headers: dict[str, str], environ: dict[str, Any]) -> tuple[int, Any]:
    with app.test_request_context("/webhook", method="POST", data=body, headers=headers) as ctx:
        ctx.request.environ.update(environ)
        for key in [k for k, v in environ.items() if v is None]:
            del ctx.request.environ[key]
        response = app.full_dispatch_request()
    return response.status_code, response.get_json()


CASES: dict[str, tuple[Any, dict[str, str], dict[str, Any]]] = {
    "accepted": ("incident", {"Idempotency-Key": "d1"}, {}),
    "ignored": ({"object_kind": "push"}, {"X-Gitlab-Event": "Push Hook", "Idempotency-Key": "d2"}, {}),
    "wrong token": ("incident", {"X-Gitlab-Token": "nope"}, {}),
    "no Content-Length": ("incident", {}, {"CONTENT_LENGTH": None}),
    "too large": ({"pad": "x" * LIMIT}, {}, {}),
    "not JSON": (b"{nope", {}, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_the_wsgi_route_and_the_flask_route_answer_alike(
    make_app: Callable[..., Flask], tmp_path: Path, incident_payload: dict[str, Any], case: str
) -> None:
    payload, extra, environ = CASES[case]
    if payload == "incident":
        payload = incident_payload
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {**HOOK_HEADERS, **extra}
    answers = []
    for name, send in (("wsgi", via_wsgi), ("flask", via_flask)):
        store = SQLiteStore(tmp_path / f"{name}.sqlite3", durability="normal")
        try:
            answers.append(send(make_app(store, max_body_bytes=LIMIT), body, headers, environ))
        finally:
            store.close()
    assert answers[0] == answers[1]
    expected = {"accepted": 202, "ignored": 202, "wrong token": 401, "no Content-Length": 411, "too large": 413}
    assert answers[0][0] == expected.get(case, 200)


def test_the_wsgi_route_checks_the_token_before_reading_the_body(make_app: Callable[..., Flask]) -> None:
    reads: list[int] = []

    class CountingStream:
        def read(self, *args: Any) -> bytes:
            reads.append(1)
            return b"{}"

    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhook",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": CountingStream(),
        "CONTENT_LENGTH": "2",
        "HTTP_X_GITLAB_TOKEN": "nope",
    }
    body = b"".join(make_app().wsgi_app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["401 UNAUTHORIZED"]
    assert json.loads(body)["status"] == "unauthorized"
    assert reads == []


def test_the_wsgi_route_takes_only_post_webhook(
    make_app: Callable[..., Flask], store: DeliveryStore, incident_payload: dict[str, Any]
) -> None:
    client = make_app().test_client()
    assert client.get("/webhook").status_code == 405
    assert client.put("/webhook", data=b"{}", headers=HOOK_HEADERS).status_code == 405
    assert client.post("/webhook/", data=json.dumps(incident_payload), headers=HOOK_HEADERS).status_code == 404
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert store.stats().deliveries == 0


def test_the_answer_names_the_delivery_in_compact_json(
    make_app: Callable[..., Flask], incident_payload: dict[str, Any]
) -> None:
    """``bench/bench_intake.py`` finds the acknowledged deliveries with ``"delivery":"<id>"``."""
    headers = {**HOOK_HEADERS, "Idempotency-Key": "d-7", "X-Gitlab-Token": SECRET}
    response = make_app().test_client().post("/webhook", data=json.dumps(incident_payload), headers=headers)
    assert response.status_code == 202
    assert response.content_type == "application/json"
    assert b'"delivery":"d-7"' in response.get_data()
