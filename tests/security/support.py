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
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "bot.yaml"
INCIDENT_PAYLOAD = ROOT / "examples" / "payloads" / "s1-incident.json"
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
    """The environment of a service process: this one's, minus anything the bot reads, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_", "PROMETHEUS_"))}
    return base | {
        "GITLAB_URL": gitlab_url,
        "GITLAB_TOKEN": gitlab_token,
        "INCIDENT_BOT_DB": str(workdir / "bot.sqlite3"),
        "INCIDENT_BOT_CONFIG": str(CONFIG),
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
