"""``SimulatedGitLab``: the model served over real HTTP, with a request log, safety flagging,
latency, fault and crash injection, and webhook delivery.

Sockets come from the standard library's ``ThreadingHTTPServer`` (one daemon thread per
connection, HTTP/1.1 keep-alive) because faults need the raw socket: an abortive close
(``SO_LINGER`` 0, so the client sees a reset) and a held-then-dropped connection.
"""

from __future__ import annotations

import contextlib
import http
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.simhttp import Loopback, LoopbackHandler, LoopbackServer

from . import graphql
from .app import GRAPHQL_PATH, Api, ApiRequest, ApiResponse
from .clock import Clock, http_date
from .delivery import Subscription, WebhookDispatcher
from .endpoints import router
from .faults import WRITE_METHODS, Decision, FaultPlan
from .hazards import scan_hazards
from .records import ApiError, Event
from .state import GitLabState

RATE_LIMIT = 2000  # GitLab.com: authenticated API requests per user and minute
SCANNED_FIELDS = ("title", "description", "body")
_HTML_ERRORS = {
    502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
    "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    503: "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n",
}


@dataclass
class RecordedRequest:
    seq: int
    method: str
    path: str  # as sent (percent-encoded)
    query: dict[str, Any]
    json: Any
    headers: dict[str, str]
    timestamp: float
    route: str | None = None  # e.g. "POST /projects/:id/issues/:iid/notes"
    actor: str | None = None
    status: int | None = None  # None: the connection was reset or dropped
    fault: str | None = None  # fault kind, "crash" or "crashed"
    applied: bool | None = None  # for faulted writes: did the change land?
    duration: float = 0.0

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass
class _Outcome:
    action: str  # "respond" | "reset" | "drop"
    response: ApiResponse | None = None
    headers: dict[str, str] = field(default_factory=dict)


class SimulatedGitLab(Loopback):
    """A stateful fake GitLab on ``http://127.0.0.1:<port>``; python-gitlab talks to it unchanged."""

    thread_name = "simgitlab"

    def __init__(
        self,
        *,
        state: GitLabState | None = None,
        now: Clock | None = None,
        bot_username: str = "incident-bot",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = 0,
        system_notes: bool = True,
    ) -> None:
        self.state = state or GitLabState(now, system_notes=system_notes)
        try:
            self.bot_user = self.state.find_user(bot_username)
        except ApiError:
            self.state.add_user(bot_username, "Incident Bot", bot=True)
            self.bot_user = self.state.find_user(bot_username)
        self.token = self.bot_user.token
        self.root_token = self.state.find_user("root").token
        self.api = Api(self.state, router, graphql.handle)
        self.faults = FaultPlan(seed)
        self.latency = 0.0
        self.timeout_hold = 2.0
        self.retry_after = 1
        self.requests: list[RecordedRequest] = []
        self.fault_log: list[dict[str, Any]] = []
        self.hazards: list[dict[str, Any]] = []
        self.hooks = WebhookDispatcher(self.state.base_url)
        self._log_lock = threading.Lock()
        self._seq = 0
        self._writes_seen = 0
        self._crash_at: int | None = None
        self._crashed = False
        self._rate: dict[str, tuple[int, int]] = {}
        self._local = threading.local()
        super().__init__(host=host, port=port)
        self.state.listeners.append(self._on_event)

    # ---------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SimulatedGitLab is not started")
        return super().url

    def _on_start(self) -> None:
        self.state.base_url = self.url
        self.hooks.instance_url = self.url

    def _on_stop(self, httpd: LoopbackServer[Any]) -> None:
        """Cut open connections (a client held by an injected timeout gets a reset) and stop delivering hooks."""
        assert isinstance(httpd, _HTTPServer)
        httpd.close_connections()
        self.hooks.close()

    def client(self, username: str | None = None, **kwargs: Any) -> Any:
        """A ``gitlab.Gitlab`` for ``username`` (default: the bot), without transient retries."""
        import gitlab

        token = self.token_for(username) if username else self.token
        kwargs.setdefault("retry_transient_errors", False)
        kwargs.setdefault("timeout", 10)
        return gitlab.Gitlab(self.url, private_token=token, **kwargs)

    def token_for(self, username: str) -> str:
        return self.state.find_user(username).token

    # ------------------------------------------------------------- log

    def count(self, method: str | None = None, path_regex: str | None = None, route: str | None = None) -> int:
        return len(self.find_requests(method, path_regex, route))

    def find_requests(
        self, method: str | None = None, path_regex: str | None = None, route: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests by method, regex on the path (raw or decoded) and/or route template."""
        rx = re.compile(path_regex) if path_regex else None
        with self._log_lock:
            entries = list(self.requests)
        return [
            r
            for r in entries
            if (method is None or r.method == method.upper())
            and (rx is None or rx.search(r.path) or rx.search(unquote(r.path)))
            and (route is None or r.route == route)
        ]

    def writes(self) -> list[RecordedRequest]:
        with self._log_lock:
            return [r for r in self.requests if r.is_write]

    def reset_log(self) -> None:
        with self._log_lock:
            self.requests.clear()
            self.fault_log.clear()
            self.hazards.clear()

    def mentions(self) -> list[str]:
        """Every handle mentioned (unescaped, outside code) in bodies sent to the API, in order."""
        with self._log_lock:
            return [h["handle"] for h in self.hazards if h["kind"] == "mention"]

    def hazards_except(self, allowed_mentions: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Hazards other than mentions of the allowed handles (case-insensitive)."""
        allowed = {h.lstrip("@").lower() for h in allowed_mentions}
        with self._log_lock:
            return [h for h in self.hazards if not (h["kind"] == "mention" and h["handle"].lower() in allowed)]

    # ---------------------------------------------------------- faults

    def inject(
        self,
        kind: str,
        times: int | None = 1,
        method: str | None = None,
        path_regex: str | None = None,
        applied: bool | None = None,
    ) -> None:
        """Fail the next ``times`` matching requests with ``kind`` (see ``faults.FAULT_KINDS``)."""
        self.faults.inject(kind, times, method, path_regex, applied)

    def random_faults(
        self,
        rate: float = 0.2,
        kinds: Iterable[str] | None = None,
        seed: int | None = None,
        method: str | None = None,
        path_regex: str | None = None,
    ) -> None:
        """Fail each matching request with probability ``rate``; ``rate=0`` turns it off."""
        self.faults.random_faults(rate, kinds, seed, method, path_regex)

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def applied_before_fault(self) -> float:
        return self.faults.applied_before_fault

    @applied_before_fault.setter
    def applied_before_fault(self, probability: float) -> None:
        self.faults.applied_before_fault = probability

    def crash_after_writes(self, k: int) -> None:
        """Apply the k-th write from now, reset its connection, then reset everything until recover()."""
        if k < 1:
            raise ValueError("k must be >= 1")
        with self._log_lock:
            self._crash_at = self._writes_seen + k

    def recover(self) -> None:
        with self._log_lock:
            self._crashed = False
            self._crash_at = None

    @property
    def crashed(self) -> bool:
        return self._crashed

    # ---------------------------------------------------------- webhooks

    def subscribe(self, url: str, secret: str | None = None, **flags: Any) -> Subscription:
        """Deliver hooks for changes made through the API to ``url`` (flags: see ``Subscription``)."""
        return self.hooks.subscribe(url, secret, **flags)

    def wait_for_hooks(self, timeout: float = 5.0) -> bool:
        return self.hooks.wait_idle(timeout)

    def _on_event(self, event: Event) -> None:
        if getattr(self._local, "in_api", False) and self.hooks.subscriptions:
            self.hooks.publish(self.state, event, getattr(self._local, "event_uuid", None))

    # ------------------------------------------------- request processing

    def _record(self, method: str, target: str, headers: dict[str, str], body: bytes) -> RecordedRequest:
        parts = urlsplit(target)
        query: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in query:
                query[key] = [*(query[key] if isinstance(query[key], list) else [query[key]]), value]
            else:
                query[key] = value
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._log_lock:
            self._seq += 1
            entry = RecordedRequest(self._seq, method, parts.path, query, parsed, headers, time.time())
            self.requests.append(entry)
        entry.route = self.api.route_name(method, parts.path)
        return entry

    def _scan(self, entry: RecordedRequest) -> None:
        if not entry.is_write or not isinstance(entry.json, dict):
            return
        found = []
        fields = entry.json
        if entry.path == GRAPHQL_PATH:  # a timeline event's note (``graphql.py``)
            variables = entry.json.get("variables")
            given = variables.get("input") if isinstance(variables, dict) else None
            fields = {"body": given.get("note")} if isinstance(given, dict) else {}
        for name in SCANNED_FIELDS:
            value = fields.get(name)
            if not isinstance(value, str):
                continue
            for finding in scan_hazards(value):
                hazard = {
                    "method": entry.method,
                    "path": entry.path,
                    "field": name,
                    "line": finding.line,
                    "line_no": finding.line_no,
                    "kind": finding.kind,
                    "seq": entry.seq,
                }
                hazard["handle" if finding.kind == "mention" else "command"] = finding.value
                found.append(hazard)
        if found:
            with self._log_lock:
                self.hazards.extend(found)

    def _process(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Outcome:
        started = time.monotonic()
        entry = self._record(method, target, headers, body)
        try:
            return self._process_entry(entry, target, headers, body)
        finally:
            entry.duration = time.monotonic() - started

    def _process_entry(self, entry: RecordedRequest, target: str, headers: dict[str, str], body: bytes) -> _Outcome:
        self._scan(entry)  # whatever reached the wire counts, answered or not
        if self._crashed:
            entry.fault = "crashed"
            return _Outcome("reset")
        if self.latency > 0:
            self.stopping.wait(self.latency)
        parts = urlsplit(target)
        request = ApiRequest(entry.method, parts.path, parse_qsl(parts.query, keep_blank_values=True), body, headers)
        user = self.api.authenticate(request)
        entry.actor = user.username if user else None
        decision = self.faults.decide(entry.method, parts.path)

        response: ApiResponse | None = None
        if decision is None or decision.applied:
            response = self._apply(request)
            if entry.is_write and self._count_write():
                entry.fault, entry.applied = "crash", True
                self._log_fault(entry, "crash", True)
                return _Outcome("reset")
        if decision is not None:
            entry.fault, entry.applied = decision.kind, decision.applied
            self._log_fault(entry, decision.kind, decision.applied)
            return self._fault_outcome(entry, decision)
        assert response is not None
        entry.status = response.status
        if response.status == 429:  # an application rate limit (ratelimits.py): GitLab sends no headers with it
            return _Outcome("respond", response)
        return _Outcome("respond", response, self._rate_headers(headers))

    def _apply(self, request: ApiRequest) -> ApiResponse:
        self._local.in_api = True
        self._local.event_uuid = request.header("X-Gitlab-Event-UUID")
        try:
            return self.api.handle(request)
        finally:
            self._local.in_api = False

    def _count_write(self) -> bool:
        """Count an applied write; True when it is the one to crash after."""
        with self._log_lock:
            self._writes_seen += 1
            if self._crash_at is not None and self._writes_seen >= self._crash_at:
                self._crashed, self._crash_at = True, None
                return True
            return False

    def _log_fault(self, entry: RecordedRequest, kind: str, applied: bool) -> None:
        with self._log_lock:
            self.fault_log.append(
                {
                    "seq": entry.seq,
                    "method": entry.method,
                    "path": entry.path,
                    "route": entry.route,
                    "kind": kind,
                    "applied": applied,
                    "timestamp": entry.timestamp,
                }
            )

    def _fault_outcome(self, entry: RecordedRequest, decision: Decision) -> _Outcome:
        kind = decision.kind
        if kind == "reset":
            return _Outcome("reset")
        if kind == "timeout":
            self.stopping.wait(self.timeout_hold)
            return _Outcome("drop")
        if kind.startswith("429"):
            entry.status = 429
            return _Outcome("respond", self._throttled(kind == "429-date"))
        status = int(kind)
        entry.status = status
        if status in _HTML_ERRORS:
            html = _HTML_ERRORS[status].encode()
            return _Outcome("respond", ApiResponse(status, raw=html, content_type="text/html"))
        return _Outcome("respond", ApiResponse(status, {"message": "500 Internal Server Error"}))

    def _throttled(self, as_date: bool) -> ApiResponse:
        reset = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self.retry_after)
        headers = {
            "Retry-After": http_date(reset) if as_date else str(self.retry_after),
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Observed": str(RATE_LIMIT + 1),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(reset.timestamp())),
            "RateLimit-ResetTime": http_date(reset),
        }
        return ApiResponse(429, raw=b"Retry later\n", content_type="text/plain", headers=headers)

    def _rate_headers(self, headers: dict[str, str]) -> dict[str, str]:
        key = next((v for k, v in headers.items() if k.lower() == "private-token"), "")
        window = int(time.time()) // 60
        with self._log_lock:
            start, used = self._rate.get(key, (window, 0))
            used = used + 1 if start == window else 1
            self._rate[key] = (window, used)
        reset = (window + 1) * 60
        return {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Observed": str(used),
            "RateLimit-Remaining": str(max(RATE_LIMIT - used, 0)),
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": http_date(datetime.fromtimestamp(reset, UTC)),
        }


class _HTTPServer(LoopbackServer["SimulatedGitLab"]):
    """The loopback server, tracking open connections so ``stop()`` can cut them."""

    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: SimulatedGitLab):
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler, sim)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conn_lock:
            open_sockets = list(self._connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(LoopbackHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.read_body()

    def _serve(self) -> None:
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items()}
        outcome = self.server.sim._process(self.command, self.path, headers, body)
        if outcome.action == "reset":
            self._reset()
        elif outcome.action == "drop":
            self.close_connection = True
        else:
            assert outcome.response is not None
            self._write(outcome.response, outcome.headers)

    def _reset(self) -> None:
        """Abortive close: the peer gets a TCP RST (ECONNRESET), never a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for stream in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                stream.close()
        with contextlib.suppress(OSError):
            self.connection.close()

    def _write(self, response: ApiResponse, extra: dict[str, str]) -> None:
        body = b"" if self.command == "HEAD" else response.encode()
        try:
            reason = http.HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        headers = {
            "Date": http_date(datetime.now(UTC)),
            "Server": "nginx",
            "Content-Type": response.content_type,
            "Cache-Control": "max-age=0, private, must-revalidate",
            "Vary": "Origin",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Request-Id": uuid.uuid4().hex[:26].upper(),
            **extra,
            **response.headers,
        }
        if response.status not in (204, 304):
            headers["Content-Length"] = str(len(body))
        if self.close_connection:
            headers["Connection"] = "close"
        head = [f"HTTP/1.1 {response.status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


SimulatedGitLab.handler, SimulatedGitLab.server_class = _Handler, _HTTPServer
