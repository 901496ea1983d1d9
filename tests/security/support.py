"""A real ``incident-bot serve`` on loopback for the security tests, and the raw-socket clients they need."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "bot.yaml"
INCIDENT_PAYLOAD = ROOT / "examples" / "payloads" / "s1-incident.json"
SCOPE = "acme/security-incidents"
"""The incident scope of a service process: the project of the example payloads and of ``world()``."""
SECRET = "security-webhook-secret"
HALF_HEADER = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Gitlab-Event: Issue Ho"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def service_env(gitlab_url: str, gitlab_token: str, workdir: Path, **env: str) -> dict[str, str]:
    """The environment of a service process: this one's, minus anything the bot reads, plus the incident scope
    (:data:`SCOPE`) and ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_", "PROMETHEUS_"))}
    return base | {
        "GITLAB_URL": gitlab_url,
        "GITLAB_TOKEN": gitlab_token,
        "INCIDENT_BOT_DB": str(workdir / "bot.sqlite3"),
        "INCIDENT_BOT_CONFIG": str(CONFIG),
        "INCIDENT_BOT_SCOPE": SCOPE,
        "INCIDENT_BOT_SWEEP_SECONDS": "off",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        **env,
    }


class Serve:
    """``python -m bot serve`` in its own process group; its stdout and stderr go to ``log``."""

    def __init__(
        self, env: dict[str, str], workdir: Path, *args: str, port: int | None = None, threads: int = 1
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        self.env, self.workdir = env, workdir
        self.argv = [sys.executable, "-m", "bot", "serve", "--port", str(self.port), "--threads", str(threads), *args]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Serve:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.workdir, stdout=out, stderr=out, start_new_session=True
            )
        wait_for(self.healthy, timeout, f"serve to answer /healthz (log: {self.tail()})")
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}: {self.tail()}")
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then wait for the whole group (so every line it logs is in ``log``)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def half_open(port: int) -> socket.socket:
    """A connection that sent half a request header and then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(HALF_HEADER)
    return sock


def hook_headers(secret: str, key: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Issue Hook",
        "X-Gitlab-Token": secret,
        "Idempotency-Key": key or uuid.uuid4().hex,
    }


def incident_body() -> bytes:
    return INCIDENT_PAYLOAD.read_bytes()


def incident_payload() -> dict[str, Any]:
    return dict(json.loads(incident_body()))


# ------------------------------------------------------------------ a whole bot in this process


SLACK_TOKEN = "xoxb-4444-5555-securitytoken"
SLACK_TARGETS = ("e-group", "security-department", "marketing-programs", "support-managers", "community-advocates")


def seed_slack(state: Any) -> None:
    """The simulated Slack's channels and people that the bundled policy's ``chat:`` section names."""
    for name in SLACK_TARGETS:
        state.add_channel(name)
    state.add_user("sec-director", "sec-director@example.com")


class RunningBot:
    """A bot as ``serve`` runs it, in this process and stepped by hand on the world's clock: the receiver (Flask's
    test client; its deliveries recorded in a SQLite store), the GitLab worker with its Slack planner, the Slack
    worker (``slack_sdk`` over HTTP to the simulated Slack), the sweep. Its GitLab is the world's simulated one,
    over HTTP."""

    def __init__(self, w: Any, slack: Any, clock: Any, workdir: Path) -> None:
        from bot.integrations.slack.job import SlackPlanner, SlackWorker
        from bot.integrations.slack.slackapi import SlackChat
        from bot.metrics import Metrics
        from bot.store import open_store
        from bot.web.app import WebSettings, create_app
        from bot.wiring import slack_renderer
        from bot.worker import Worker

        self.w, self.slack, self.clock = w, slack, clock
        seed_slack(slack.state)
        self.store = open_store(str(workdir / "bot.sqlite3"))
        self.metrics = Metrics()
        self.app = create_app(WebSettings(secret=SECRET), store=self.store, config=w.cfg, metrics=self.metrics,
                              clock=clock).test_client()
        self.reconciler = w.reconciler(clock=clock)
        planner = SlackPlanner(w.cfg, slack_renderer(w.cfg))
        self.worker = Worker(self.store, self.reconciler, worker_id="w:1", clock=clock, settle=timedelta(0),
                             metrics=self.metrics, chat=planner)
        self.sender = SlackWorker(self.store, lambda: SlackChat(SLACK_TOKEN, slack.url, timeout=5), worker_id="s:1",
                                  clock=clock)
        self.keys = 0

    def deliver(self, payload: dict[str, Any], event: str = "Issue Hook") -> tuple[int, dict[str, Any]]:
        """One webhook delivery as GitLab sends it; the answer's status and JSON body."""
        self.keys += 1
        headers = hook_headers(SECRET, key=f"delivery-{self.keys}") | {"X-Gitlab-Event": event}
        answer = self.app.post("/webhook", data=json.dumps(payload), headers=headers)
        return answer.status_code, answer.get_json()

    def sweep(self) -> Any:
        from bot.sweep import sweep

        return sweep(self.reconciler.client, self.store, self.w.cfg, self.clock())

    def run(self) -> list[Any]:
        """The GitLab worker, then the Slack worker, until neither has a job ready; the GitLab jobs' results."""
        results = []
        while (result := self.worker.run_once()) is not None:
            results.append(result)
        while self.sender.run_once() is not None:
            pass
        return results

    def slack_text(self) -> str:
        """Everything the bot posted to Slack, in every channel and direct message."""
        return "\n".join(m.text for m in self.slack.state.bot_messages())

    def outside_remit(self, kind: str) -> float:
        value = self.metrics.registry.get_sample_value("incident_bot_outside_remit_total", {"kind": kind})
        return value or 0.0

    def close(self) -> None:
        self.reconciler.close()
        self.store.close()
