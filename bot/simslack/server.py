"""``SimulatedSlack``: :class:`~bot.simslack.state.SlackState` served over real HTTP on loopback, with a call
record and fault injection.

Started and stopped like the simulated GitLab (``start()``/``stop()`` or ``with``): the standard library's
``ThreadingHTTPServer`` on a free port, serving from a daemon thread. Time comes from ``clock`` (seconds),
so tests move it instead of sleeping.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.simhttp import Loopback, LoopbackHandler, LoopbackServer
from bot.simslack.state import ALL_SCOPES, DISTRIBUTED_HISTORY_LIMIT, HISTORY_LIMIT_MAX, SlackFailure, SlackState

_HTML_ERROR = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>Bad Gateway</body>\r\n</html>\r\n"
WRITES = frozenset({"chat.postMessage", "chat.update", "conversations.create", "conversations.invite"})
HISTORY_INTERVAL = 60.0
"""A distributed non-Marketplace app: conversations.history "limited to 1 request per minute"."""


class _Handler(LoopbackHandler):
    server: LoopbackServer[SimulatedSlack]

    def do_POST(self) -> None:
        body = self.read_body()
        parts = urlsplit(self.path)
        method = parts.path.rstrip("/").rsplit("/", 1)[-1]
        args = parse_args(parts.query, body, self.headers.get("Content-Type") or "")
        if self.server.sim.latency:
            self.server.sim.stopping.wait(self.server.sim.latency)
        status, answer, headers = self.server.sim.handle(method, args, self.headers.get("Authorization") or "")
        payload, kind = json.dumps(answer).encode(), "application/json; charset=utf-8"
        if status >= 500 and self.server.sim.html_errors:
            payload, kind = _HTML_ERROR.encode(), "text/html"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        # Slack answers every Web API call with the token's scopes in X-OAuth-Scopes (the scopes docs,
        # "Checking scopes"); auth.test is how an app reads them.
        scopes = self.server.sim.state.scopes
        self.send_header("X-OAuth-Scopes", ",".join(sorted(ALL_SCOPES if scopes is None else scopes)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST


@dataclass(frozen=True)
class Call:
    """One request the simulator received."""

    method: str
    channel: str | None
    time: float
    status: int
    error: str | None = None
    """The Web API error code (``ok: false``), or the fault's name."""
    applied: bool = False
    """Whether a write changed the workspace (true for a post stored before a faked failure)."""
    args: dict[str, Any] = field(default_factory=dict, compare=False)
    """The arguments as received (query, form or JSON body), the token left out."""


class SimulatedSlack(Loopback):
    """A fake Slack Web API on ``http://127.0.0.1:<port>/api/``; ``slack_sdk.WebClient`` talks to it unchanged.

    Faults, all off by default:

    * ``fail_rate`` (0..1, drawn from a ``random.Random(seed)``): a call answers HTTP 500 or 429 (with
      ``Retry-After: 1``) before doing anything;
    * ``down("refuse")`` closes the port (connection refused), ``down("503")`` answers 503 to everything;
      ``up()`` serves again on the same port;
    * ``rate_limit``: at most one ``chat.postMessage`` per ``post_interval`` seconds per channel, else 429 with
      ``Retry-After``;
    * ``fail_after_commit(n)``: the next ``n`` posts are stored but answered 500, as if the answer was lost
      (``method="conversations.create"``: the next channels created);
    * ``distributed_app``: the limits Slack puts on a commercially distributed app outside its Marketplace
      (changelog 2025-05-29, "Rate limit changes for non-Marketplace apps"; the conversations.history method
      page): ``conversations.history`` one call a minute (Tier 1 for it) and at most 15 messages a page. Over
      the limit Slack answers HTTP 429 with ``{"ok": false, "error": "ratelimited"}`` and ``Retry-After``
      in seconds (the rate limits page); so does the simulator. An app a workspace builds for itself keeps
      the old limits: the default here.
    """

    handler = _Handler
    url_path = "/api/"
    thread_name = "simslack"

    def __init__(self, *, token: str = "xoxb-simulated-token", clock: Callable[[], float] | None = None,
                 seed: int = 0, host: str = "127.0.0.1", port: int = 0, rate_limit: bool = True,
                 post_interval: float = 1.0, distributed_app: bool = False) -> None:
        self.clock = clock or time.time
        self.state = SlackState(self.clock)
        self.distributed_app = distributed_app
        self._last_history: float | None = None
        self.token = token
        self.fail_rate = 0.0
        self.rate_limit = rate_limit
        self.post_interval = post_interval
        self.retry_after = 1
        self.forced: dict[str, str] = {}
        """Web API method → an error code it answers (``{"ok": false, "error": code}``) until removed."""
        self.latency = 0.0
        """Real seconds each answer waits (to make a client time out)."""
        self.html_errors = False
        """Answer faked 5xx with an HTML page (as a proxy in front of Slack would) instead of JSON."""
        self.calls: list[Call] = []
        self._random = random.Random(seed)
        self._after_commit = 0
        self._after_commit_method = "chat.postMessage"
        self._down: str | None = None
        self._last_post: dict[str, float] = {}
        self._lock = threading.Lock()
        super().__init__(host=host, port=port)

    # ---------------------------------------------------------- lifecycle

    @property
    def distributed_app(self) -> bool:
        """Whether Slack's limits for a distributed non-Marketplace app apply (see the class docstring)."""
        return self._distributed

    @distributed_app.setter
    def distributed_app(self, on: bool) -> None:
        self._distributed = on
        self.state.history_limit = DISTRIBUTED_HISTORY_LIMIT if on else HISTORY_LIMIT_MAX

    @property
    def url(self) -> str:
        """The Web API base url (ends with ``/``), for ``SlackChat(token, base_url=...)``."""
        return super().url

    def random_faults(self, rate: float, seed: int) -> None:
        """Answer ``rate`` of the calls with a 500 or a 429, drawn from ``random.Random(seed)``."""
        with self._lock:
            self.fail_rate = rate
            self._random = random.Random(seed)

    # ------------------------------------------------------------- faults

    def down(self, mode: str = "refuse") -> None:
        """Slack is unreachable: ``"refuse"`` (nothing listens on the port) or ``"503"`` (every call answers 503)."""
        if mode not in ("refuse", "503"):
            raise ValueError(mode)
        self._down = mode
        if mode == "refuse":
            self.stop()

    def up(self) -> None:
        self._down = None
        self.start()

    def fail_after_commit(self, count: int = 1, method: str = "chat.postMessage") -> None:
        """The next ``count`` calls of ``method`` (a post, or a channel created) are applied, then answered 500
        (the client cannot know they landed)."""
        with self._lock:
            self._after_commit, self._after_commit_method = count, method

    # ------------------------------------------------------------- record

    def count(self, method: str | None = None, channel: str | None = None) -> int:
        """Calls received, by Web API method and/or channel argument."""
        with self._lock:
            return sum(1 for c in self.calls
                       if (method is None or c.method == method) and (channel is None or c.channel == channel))

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # ------------------------------------------------------------ serving

    def _record(self, method: str, args: dict[str, Any], status: int, error: str | None = None,
                applied: bool = False) -> None:
        channel = args.get("channel")
        kept = {k: v for k, v in args.items() if k != "token"}
        with self._lock:
            self.calls.append(Call(method, str(channel) if channel is not None else None, self.clock(), status,
                                   error, applied, kept))

    def handle(self, method: str, args: dict[str, Any], auth: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One Web API call: HTTP status, JSON body, extra headers."""
        if self._down == "503":
            self._record(method, args, 503, "down")
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else str(args.get("token") or "")
        if not token or token != self.token:
            error = "not_authed" if not token else "invalid_auth"
            self._record(method, args, 200, error)
            return 200, {"ok": False, "error": error}, {}
        if method in self.forced:
            code = self.forced[method]
            self._record(method, args, 200, code)
            extra = {"needed": "chat:write", "provided": "channels:read"} if code == "missing_scope" else {}
            return 200, {"ok": False, "error": code, **extra}, {}
        with self._lock:
            roll = self._random.random() if self.fail_rate > 0 else 1.0
            fault = roll < self.fail_rate
            throttle = fault and self._random.random() < 0.5
        if fault:
            status = 429 if throttle else 500
            self._record(method, args, status, "fault-429" if throttle else "fault-500")
            if throttle:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.retry_after)}
            return 500, {"ok": False, "error": "internal_error"}, {}
        if method == "conversations.history" and self.distributed_app:
            now = self.clock()
            with self._lock:
                last = self._last_history
                wait = HISTORY_INTERVAL - (now - last) if last is not None else 0.0
                if wait <= 0:
                    self._last_history = now
            if wait > 0:
                self._record(method, args, 429, "ratelimited")
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, math.ceil(wait)))}
        if method == "chat.postMessage" and self.rate_limit:
            channel = str(args.get("channel") or "")
            now = self.clock()
            with self._lock:
                last = self._last_post.get(channel)
                wait = self.post_interval - (now - last) if last is not None else 0.0
                if wait <= 0:
                    self._last_post[channel] = now
            if wait > 0:
                self._record(method, args, 429, "ratelimited")
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, round(wait)))}
        try:
            answer = self.state.call(method, args)
        except SlackFailure as failure:
            self._record(method, args, 404 if failure.code == "unknown_method" else 200, failure.code)
            return (404 if failure.code == "unknown_method" else 200), {"ok": False, "error": failure.code,
                                                                         **failure.extra}, {}
        if method == self._after_commit_method:
            with self._lock:
                lost = self._after_commit > 0
                self._after_commit -= 1 if lost else 0
            if lost:
                self._record(method, args, 500, "fail-after-commit", applied=True)
                return 500, {"ok": False, "error": "internal_error"}, {}
        self._record(method, args, 200, applied=method in WRITES)
        return 200, {"ok": True, **answer}, {}


def parse_args(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Arguments from the query string and a form or JSON body, as Slack accepts them."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if body:
        if "json" in content_type:
            with contextlib.suppress(ValueError):
                data = json.loads(body)
                if isinstance(data, dict):
                    args.update(data)
        else:
            args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return args
