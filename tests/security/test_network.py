"""The network attacker: anyone who can open connections to the receiver, read its unauthenticated
endpoints, or replay a delivery captured on the wire. They must not stall intake, learn why the service is
degraded, or get a delivery processed twice; signing-only hooks authenticate by their signature alone."""

from __future__ import annotations

import base64
import json
import select
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from flask import Flask

from bot.config import Config
from bot.metrics import Metrics
from bot.simgitlab import SimulatedGitLab
from bot.store import DeliveryStore, SQLiteStore, StoreError
from bot.store.spool import Spool, SpoolingStore
from bot.web.app import WebSettings, create_app
from bot.web.auth import sign
from tests import store_inspect as peek
from tests.security.support import (
    HALF_HEADER,
    Serve,
    half_open,
    hook_headers,
    incident_body,
    service_env,
    wait_for,
)

SECRET = "net-webhook-secret"
SIGNING_KEY = bytes(range(32))
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
DB_URL = "postgresql://incident_bot:db-password-77@db.internal:5432/bot"
NOW = 1_764_576_000  # the receivers' clock in the in-process tests
FIXED_NOW = datetime.fromtimestamp(NOW, UTC)


@pytest.fixture(scope="module")
def gitlab() -> Iterator[SimulatedGitLab]:
    with SimulatedGitLab() as sim:
        yield sim


@pytest.fixture(scope="module")
def served(gitlab: SimulatedGitLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``incident-bot serve`` as shipped: default worker class and timeouts."""
    workdir = tmp_path_factory.mktemp("serve")
    env = service_env(gitlab.url, gitlab.token, workdir, GITLAB_WEBHOOK_SECRET=SECRET)
    server = Serve(env, workdir, "--workers", "2").start()
    yield server
    server.stop()


# ------------------------------------------------------------------------------------ slow clients


def test_idle_half_header_connections_do_not_stop_intake(served: Serve) -> None:
    idle = [half_open(served.port) for _ in range(40)]
    try:
        start = time.monotonic()
        answer = requests.post(
            served.url + "/webhook", data=incident_body(), headers=hook_headers(SECRET), timeout=5
        )
        took = time.monotonic() - start
    finally:
        for sock in idle:
            sock.close()
    assert answer.status_code == 202, answer.text
    assert took < 5  # GitLab gives up after 10 s; the requests timeout above bounds it anyway


def test_a_half_sent_header_is_dropped_by_the_read_timeout(served: Serve) -> None:
    sock = half_open(served.port)
    sock.settimeout(15)
    start = time.monotonic()
    try:
        data = sock.recv(4096)  # blocks until the server gives up on the header
    except ConnectionResetError:
        data = b""
    finally:
        sock.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:80]
    assert time.monotonic() - start < 12


def test_a_body_that_stops_arriving_is_answered_or_dropped_by_the_read_timeout(served: Serve) -> None:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=15)
    head = (
        "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Gitlab-Event: Issue Hook\r\nX-Gitlab-Token: {SECRET}\r\nContent-Length: 5000\r\n\r\n"
    )
    start = time.monotonic()
    try:
        sock.sendall(head.encode() + b'{"object_kind": ')
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    finally:
        sock.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:80]
    assert time.monotonic() - start < 12


def _half_open_from(address: str, port: int) -> socket.socket:
    """A connection from ``address`` (any 127.x address is loopback) that sent half a header, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
    sock.sendall(HALF_HEADER)
    return sock


def _dropped(sock: socket.socket) -> bool:
    """Whether the server closed the connection (it never answers a half header before its read timeout)."""
    ready, _, _ = select.select([sock], [], [], 0)
    if not ready:
        return False
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


def test_one_address_cannot_hold_every_connection_and_a_delivery_still_gets_in(
    gitlab: SimulatedGitLab, tmp_path: Path
) -> None:
    """One receiver process serving 20 connections, 4 per client address: of a client at 127.0.0.2 opening
    30 half-open connections, 4 are served and the others held unread outside the pool; a delivery from
    127.0.0.1 is answered at once (without the bound it waits for the 10 s read timeout to free a slot). A
    newer connection from the same client, once the served ones have waited a second for their header,
    replaces the oldest."""
    env = service_env(gitlab.url, gitlab.token, tmp_path, GITLAB_WEBHOOK_SECRET=SECRET)
    server = Serve(
        env, tmp_path, "--workers", "1", "--connections", "20", "--per-client", "4", "--read-timeout", "10"
    ).start()
    held: list[socket.socket] = []
    try:
        held = [_half_open_from("127.0.0.2", server.port) for _ in range(30)]
        start = time.monotonic()
        answer = requests.post(
            server.url + "/webhook", data=incident_body(), headers=hook_headers(SECRET), timeout=8
        )
        took = time.monotonic() - start
        assert answer.status_code == 202, answer.text
        assert took < 3, f"a delivery waited {took:.1f} s behind one client's idle connections"
        time.sleep(1.2)  # the four served ones have now waited longer than the grace for their header
        newer = _half_open_from("127.0.0.2", server.port)
        held.append(newer)
        wait_for(lambda: _dropped(held[0]), 5, "the oldest idle connection to make room")
        assert not any(_dropped(s) for s in held[1:])  # the others are served, or held unread
    finally:
        for sock in held:
            sock.close()
        server.stop()


# ---------------------------------------------------------------------- unauthenticated /readyz


class _Unreachable:
    """A shared store whose every call fails, with the database URL in the error as a driver might put it."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreError(f"cannot connect to {DB_URL}: connection refused")

        return fail


def unreachable_database() -> DeliveryStore:
    return cast(DeliveryStore, _Unreachable())


def _app(store: DeliveryStore, config: Config, **settings: Any) -> Flask:
    settings.setdefault("secret", SECRET)
    return create_app(
        WebSettings(**settings), store=store, config=config, metrics=Metrics(), clock=lambda: FIXED_NOW
    )


def test_readyz_tells_an_unauthenticated_caller_only_the_status(default_config: Config, tmp_path: Path) -> None:
    down = _app(unreachable_database(), default_config).test_client()
    anonymous = down.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.get_json() == {"status": "unavailable"}

    spooling = SpoolingStore(unreachable_database, Spool(tmp_path / "spool.sqlite3"))
    degraded = _app(spooling, default_config).test_client()
    anonymous = degraded.get("/readyz")
    assert anonymous.status_code == 200
    assert anonymous.get_json() == {"status": "degraded"}
    assert "spool" not in anonymous.get_data(as_text=True)

    insider = degraded.get("/readyz", headers={"X-Gitlab-Token": SECRET})
    assert insider.status_code == 200
    reason = insider.get_json()["reason"]
    assert "unreachable" in reason and "db-password-77" not in reason


# --------------------------------------------------------------------- signatures and replays


def _signed(body: bytes, msg_id: str, *, timestamp: int = NOW) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Issue Hook",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + sign(SIGNING_KEY, msg_id, str(timestamp), body),
    }


def test_a_signing_only_hook_authenticates_by_its_signature_alone(default_config: Config, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    client = _app(store, default_config, secret="", signing_token=SIGNING_TOKEN).test_client()
    body = incident_body()

    assert client.post("/webhook", data=body, headers=_signed(body, "msg_1")).status_code == 202
    unsigned = {"Content-Type": "application/json", "X-Gitlab-Event": "Issue Hook"}
    assert client.post("/webhook", data=body, headers=unsigned).status_code == 401
    forged = _signed(body, "msg_2") | {"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    assert client.post("/webhook", data=body, headers=forged).status_code == 401
    stale = _signed(body, "msg_3", timestamp=NOW - 3600)
    assert client.post("/webhook", data=body, headers=stale).status_code == 401
    tampered = json.dumps(json.loads(body) | {"object_kind": "note"}).encode()
    assert client.post("/webhook", data=tampered, headers=_signed(body, "msg_4")).status_code == 401
    assert len(peek.jobs(store)) == 1
    store.close()


def test_a_replayed_signed_delivery_with_a_new_idempotency_key_is_a_duplicate(
    default_config: Config, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "bot.sqlite3")
    client = _app(store, default_config, signing_token=SIGNING_TOKEN).test_client()
    body = incident_body()
    headers = _signed(body, "msg_original") | {"X-Gitlab-Token": SECRET}

    first = client.post("/webhook", data=body, headers=headers | {"Idempotency-Key": "msg_original"})
    replay = client.post("/webhook", data=body, headers=headers | {"Idempotency-Key": "attacker-chosen-1"})
    again = client.post("/webhook", data=body, headers=headers)  # no Idempotency-Key at all

    assert first.status_code == 202
    assert replay.status_code == 200 and replay.get_json()["status"] == "duplicate"
    assert again.get_json()["status"] == "duplicate"
    assert peek.get_delivery(store, "attacker-chosen-1") is None
    store.close()


# ------------------------------------------------------------------ start during a database outage


def test_serve_starts_during_a_database_outage_and_loses_no_delivery(
    gitlab: SimulatedGitLab, tmp_path: Path
) -> None:
    from tests.pg import INSTALL_HINT, PostgresNotInstalled, PostgresServer, postgres_unavailable

    try:
        pg = PostgresServer.start()
    except PostgresNotInstalled:
        postgres_unavailable(INSTALL_HINT)
    server: Serve | None = None
    try:
        url = pg.create_database("outage_start")
        pg.pause()
        env = service_env(
            gitlab.url,
            gitlab.token,
            tmp_path,
            GITLAB_WEBHOOK_SECRET=SECRET,
            INCIDENT_BOT_DB=url,
            INCIDENT_BOT_SPOOL=str(tmp_path / "spool.sqlite3"),
            INCIDENT_BOT_RETRY_SECONDS="0.5",
        )
        server = Serve(env, tmp_path, "--workers", "1").start()
        ready = requests.get(server.url + "/readyz", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"status": "degraded"})
        answer = requests.post(
            server.url + "/webhook", data=incident_body(), headers=hook_headers(SECRET, "during-outage"), timeout=5
        )
        assert answer.status_code == 202, answer.text
        pg.resume()
        from bot.store import open_store

        log = server.output
        with open_store(url) as store:
            arrived = lambda: peek.get_delivery(store, "during-outage") is not None  # noqa: E731
            wait_for(arrived, 30, f"the spooled delivery to reach the database ({log()[-1500:]})", interval=0.2)
        wait_for(lambda: requests.get(server.url + "/readyz", timeout=5).json() == {"status": "ready"}, 20, "ready")
    finally:
        if server is not None:
            server.stop()
        pg.stop()
