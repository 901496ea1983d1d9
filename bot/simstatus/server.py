"""The HTTP part both simulated providers share: a loopback server, a record of requests, lost answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.simhttp import Loopback, LoopbackHandler, LoopbackServer

LOST = -1
"""A status :meth:`Simulator.handle` answers to close the connection without an answer."""


@dataclass(frozen=True)
class Request:
    """One request the simulator received."""

    method: str
    path: str
    """The path after the API base, without the query (``incident/create``, ``pages/p1/incidents``)."""
    query: dict[str, str]
    body: Any
    """The JSON body as parsed (None without one; the raw text when it is not JSON)."""
    status: int
    """The HTTP status answered (``LOST``: the effect was applied and the answer dropped)."""
    time: float
    error: str | None = None
    raw: str = field(default="", repr=False)
    """The body exactly as sent."""


class _Handler(LoopbackHandler):
    server: LoopbackServer[Simulator]

    def _any(self) -> None:
        raw = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.server.sim.latency:
            self.server.sim.stopping.wait(self.server.sim.latency)
        status, payload, extra = self.server.sim._serve(self.command, self.path, headers, raw)
        if status == LOST:
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any


class Simulator(Loopback):
    """Base of both simulators: serve ``handle`` on ``http://127.0.0.1:<port>/<prefix>``; record every request."""

    prefix = "/"
    handler = _Handler

    def __init__(self, *, clock: Callable[[], float] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock = clock or time.monotonic
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self._lose: dict[str, int] = {}
        self.latency = 0.0
        """Real seconds each answer waits before the request is handled (to make a client time out)."""
        super().__init__(host=host, port=port)

    @property
    def url(self) -> str:
        """The API base URL (ends with ``/``), as ``STATUSIO_API_URL`` / ``STATUSPAGE_API_URL``."""
        return super().url + self.prefix

    # ------------------------------------------------------------- faults

    def lose_answers(self, action: str, count: int = 1) -> None:
        """The next ``count`` requests of ``action`` (e.g. ``"create"``) are applied, then the connection is
        closed without an answer: the client cannot know they landed."""
        with self.lock:
            self._lose[action] = count

    def _lost(self, action: str) -> bool:
        with self.lock:
            left = self._lose.get(action, 0)
            if left > 0:
                self._lose[action] = left - 1
            return left > 0

    # ------------------------------------------------------------- record

    def writes(self) -> list[Request]:
        """Requests that were not reads (``GET``)."""
        with self.lock:
            return [r for r in self.requests if r.method != "GET"]

    def sent_text(self) -> str:
        """Every request body as sent, one after the other: what left the bot for the provider."""
        with self.lock:
            return "\n".join(r.raw for r in self.requests)

    # ------------------------------------------------------------ serving

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        """One request: (HTTP status or ``LOST``, JSON body, extra headers)."""
        raise NotImplementedError

    def _serve(self, method: str, target: str, headers: dict[str, str],
               raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        path = parts.path[len(self.prefix):] if parts.path.startswith(self.prefix) else parts.path.lstrip("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        text = raw.decode("utf-8", "replace")
        body: Any = None
        if raw:
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        with self.lock:
            status, answer, extra = self.handle(method, path.strip("/"), query, headers, body)
            error = None
            if isinstance(answer, dict):
                error = _error_of(answer)
            self.requests.append(Request(method, path.strip("/"), query, body, status, self.clock(), error, text))
        return status, json.dumps(answer).encode(), extra


def _error_of(answer: dict[str, Any]) -> str | None:
    status = answer.get("status")
    if isinstance(status, dict) and status.get("error") == "yes":
        return str(status.get("message"))
    error = answer.get("error")
    return str(error) if error else None
