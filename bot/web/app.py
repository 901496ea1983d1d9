"""The webhook receiver: authenticate, bound, parse, record durably, answer. Nothing else.

GitLab waits 10 s for an answer, never re-sends a failed delivery by itself and disables a hook after
four failures in a row. So the request path makes no GitLab API call: it checks the token before
touching the body, reads a body of known, bounded length, records the delivery (and the work it
implies) in the store, and answers 202 only once that write is durable. The worker does the rest.
A delivery about an issue in a project outside the incident scope, or in a team project (by the path the
payload names), is recorded as ignored and queues no job: counted, and logged once per project.
An event on one of the bot's children queues the child's incident, when the child's marker is signed by the
bot for it (``bot.core.children``): the checklist ticks a closed child at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from bot import heartbeat
from bot.clock import utcnow
from bot.config import Config
from bot.core.children import ChildOf, child_event
from bot.core.events import Event, Ignored, IssueEvent, NoteEvent, parse_event
from bot.core.routing import route, shown_ref
from bot.core.scope import outside, team_projects
from bot.core.urgency import child_priority, intake_priority
from bot.metrics import Metrics
from bot.once import Once
from bot.redact import redact
from bot.settings import GITLAB_MAX_BODY
from bot.store import Intake
from bot.text.markers import StateKey
from bot.web.auth import (
    DEFAULT_TOLERANCE,
    check_signature_headers,
    parse_signing_token,
    token_matches,
    verify_signature,
)
from bot.web.intake import change_key, clean_event_uuid, delivery_id, event_label, event_name

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)


EXTENSION = "incident_bot"
WEBHOOK_PATH = "/webhook"


@dataclass(frozen=True)
class WebSettings:
    """What the receiver needs to know besides the store and the policy."""

    secret: str
    """``X-Gitlab-Token``'s value; may be empty when a signing token is set (a signing-only hook)."""
    signing_token: str | None = None
    max_body_bytes: int = GITLAB_MAX_BODY
    signature_tolerance: timedelta = DEFAULT_TOLERANCE
    signing_key: bytes | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        # A secret read from a file or a Kubernetes secret often ends in a newline; GitLab strips line
        # breaks from the token it sends, so a kept newline would refuse every delivery.
        object.__setattr__(self, "secret", self.secret.strip("\r\n"))
        if self.signing_token is not None:
            object.__setattr__(self, "signing_token", self.signing_token.strip() or None)
        if not self.secret and not self.signing_token:
            raise ValueError(
                "neither GITLAB_WEBHOOK_SECRET nor GITLAB_WEBHOOK_SIGNING_TOKEN is set: "
                "the receiver refuses unauthenticated webhooks"
            )
        if self.max_body_bytes < 1:
            raise ValueError(f"the body limit must be positive, got {self.max_body_bytes}")
        key = parse_signing_token(self.signing_token) if self.signing_token else None
        object.__setattr__(self, "signing_key", key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        """The receiver's part of :class:`bot.settings.Settings` (``GITLAB_WEBHOOK_SECRET``,
        ``GITLAB_WEBHOOK_SIGNING_TOKEN``, ``INCIDENT_BOT_MAX_BODY_BYTES``). Raises ``ValueError``."""
        from bot.settings import Settings

        settings = Settings.from_env(environ, need=("webhook",))
        return cls(settings.webhook_secret, settings.webhook_signing_token, settings.max_body_bytes)

    def __repr__(self) -> str:  # never print secrets
        secret = "***" if self.secret else "unset"
        signed = "set" if self.signing_key else "unset"
        return f"WebSettings(secret={secret}, signing_token={signed}, max_body_bytes={self.max_body_bytes})"


@dataclass
class Receiver:
    """The webhook handler and its collaborators; one per app."""

    settings: WebSettings
    store: Intake
    config: Config
    metrics: Metrics
    clock: Callable[[], datetime]
    worker_heartbeat: Path | None = None
    """The heartbeat file of the worker this receiver's deliveries wait for (``serve``); None: not watched."""
    state_key: StateKey | None = field(default=None, repr=False)
    """The key the bot signs its markers with: a child's event queues its incident only when it verifies."""

    def __post_init__(self) -> None:
        self.secret = self.settings.secret.encode("utf-8")
        self.degraded_logged: str | None = None
        self.teams = team_projects(self.config)
        self.outside_said = Once()

    def _answer(self, event: str, outcome: str, status: int, **body: Any) -> Response:
        self.metrics.delivery(event, outcome)
        text = json.dumps({"status": outcome, **body}, separators=(",", ":"))
        return Response(text, status, content_type="application/json")

    def handle(self, req: Request) -> Response:
        header = req.headers.get("X-Gitlab-Event")
        event = event_label(header)
        # The secret is checked before the body is read, so an unauthenticated sender costs nothing. A
        # signing-only hook (a signing token and no secret token) sends no X-Gitlab-Token: then the
        # signature alone authenticates, and its headers and timestamp are checked before the body.
        if self.secret and not token_matches(req.headers.get("X-Gitlab-Token"), self.secret):
            log.warning("webhook from %s refused: missing or wrong X-Gitlab-Token", req.remote_addr)
            return self._answer(event, "unauthorized", 401, reason="missing or wrong X-Gitlab-Token")
        if self.settings.signing_key is not None:
            early = check_signature_headers(
                msg_id=req.headers.get("webhook-id"),
                timestamp=req.headers.get("webhook-timestamp"),
                signature=req.headers.get("webhook-signature"),
                now=self.clock(),
                tolerance=self.settings.signature_tolerance,
            )
            if not early.ok:
                log.warning("webhook from %s refused: signature: %s", req.remote_addr, early.reason)
                return self._answer(event, "unauthorized", 401, reason="invalid webhook-signature")
        # A chunked body has no length; Werkzeug and gunicorn would silently truncate it at the limit
        # instead of refusing it, so only bodies with a declared length are taken.
        length = req.content_length
        if length is None or "Transfer-Encoding" in req.headers:
            return self._answer(event, "rejected", 411, reason="Content-Length required; chunked bodies are refused")
        if length > self.settings.max_body_bytes:
            log.warning("webhook refused: body of %d bytes exceeds %d", length, self.settings.max_body_bytes)
            return self._answer(event, "rejected", 413, reason=f"body over {self.settings.max_body_bytes} bytes")
        try:
            body = req.get_data(cache=False)
        except HTTPException as exc:  # the client sent less than it announced, then went away
            return self._answer(event, "rejected", exc.code or 400, reason="incomplete body")
        except OSError:  # the client stopped sending within the server's read timeout
            log.warning("webhook from %s refused: body not received within the read timeout", req.remote_addr)
            return self._answer(event, "rejected", 408, reason="body not received in time")
        if self.settings.signing_key is not None:
            check = verify_signature(
                self.settings.signing_key,
                msg_id=req.headers.get("webhook-id"),
                timestamp=req.headers.get("webhook-timestamp"),
                signature=req.headers.get("webhook-signature"),
                body=body,
                now=self.clock(),
                tolerance=self.settings.signature_tolerance,
            )
            if not check.ok:
                log.warning("webhook from %s refused: signature: %s", req.remote_addr, check.reason)
                return self._answer(event, "unauthorized", 401, reason="invalid webhook-signature")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            # Answered 2xx on purpose. The sender holds the secret, so this is GitLab (or a proxy that
            # mangled its body), not an attacker; GitLab cannot fix the body by re-sending it, and a 400
            # would count toward auto-disabling the hook, which would then also drop the valid
            # deliveries that follow. Nothing is recorded: there is nothing to act on. The warning and
            # the ``rejected`` counter are how an operator notices.
            log.warning("webhook with a valid token but a body that is not JSON (%d bytes); ignored", len(body))
            return self._answer(event, "rejected", 200, reason="body is not valid JSON; ignored")
        # What was signed identifies the delivery: an unsigned Idempotency-Key could make a replay look new.
        signed_id = req.headers.get("webhook-id") if self.settings.signing_key is not None else None
        return self._record(req, header, event, payload, body, signed_id)

    def _record(
        self, req: Request, header: str | None, event: str, payload: Any, body: bytes, signed_id: str | None
    ) -> Response:
        parsed = parse_event(header, payload)
        routed = route(parsed, self.config)
        outside_remit = None if isinstance(routed, Ignored) else self._outside(parsed)
        if outside_remit is not None:  # recorded as ignored: no job, so nothing is ever read or written for it
            routed = Ignored(outside_remit[1])
        child = child_event(parsed, self.config, self.state_key, self.teams) if isinstance(routed, Ignored) else None
        if isinstance(child, Ignored):
            routed = child
        incident_key = child.ref.key if isinstance(child, ChildOf) else None
        if incident_key is None and not isinstance(routed, Ignored):
            incident_key = routed.key
        priority = child_priority() if isinstance(child, ChildOf) else intake_priority(parsed, self.config)
        did = delivery_id(req.headers, payload, body, signed_id=signed_id)
        reason = event_name(header)
        event_uuid = clean_event_uuid(req.headers.get("X-Gitlab-Event-UUID"))
        try:
            result = self.store.record_delivery(
                did,
                incident_key,
                reason,
                self.clock(),
                body,
                event_uuid=event_uuid,
                change=change_key(reason, payload),
                priority=priority,
            )
        except Exception as exc:
            # The only 5xx: the delivery is not safe, so GitLab must see a failure (it shows in the
            # hook's Recent events, from where it can be re-sent).
            log.error("webhook delivery %s NOT recorded, answering 503: store failed: %s", did, redact(str(exc)))
            return self._answer(event, "unavailable", 503, reason="delivery store unavailable")
        if not result.new:
            log.debug("delivery %s: duplicate", did)
            return self._answer(event, "duplicate", 200, delivery=did)
        if outside_remit is not None:
            self._count_outside(parsed, outside_remit[0])
        if isinstance(child, ChildOf):
            log.debug("delivery %s (%s): a child changed; queued job %s for %s", did, event, result.job_id, child.shown)
            return self._answer(event, "accepted", 202, delivery=did, incident=child.shown, child=True)
        if isinstance(routed, Ignored):
            log.debug("delivery %s (%s): ignored: %s", did, event, routed.reason)
            return self._answer(event, "ignored", 202, delivery=did, reason=routed.reason)
        log.debug("delivery %s (%s): queued job %s for %s (%s)", did, event, result.job_id, incident_key, priority.name)
        assert not isinstance(routed, Ignored)
        return self._answer(event, "accepted", 202, delivery=did, incident=shown_ref(parsed, routed))


    def _outside(self, parsed: Event) -> tuple[str, str] | None:
        """Why the issue of a delivery that would queue work is no incident of the bot's, from its project's
        path: outside the incident scope, or a team project (a kind and a reason). A delivery without a path
        is queued; the worker's remit check decides, from GitLab."""
        issue = parsed.issue if isinstance(parsed, IssueEvent | NoteEvent) else None
        path = issue.project_path if issue is not None else ""
        return outside(path, self.config.scope, self.teams) if path else None

    def _count_outside(self, parsed: Event, kind: str) -> None:
        """Counted every time, logged once per project: an outsider's project can send any number of them."""
        self.metrics.outside_remit(kind)
        issue = parsed.issue if isinstance(parsed, IssueEvent | NoteEvent) else None
        path = issue.project_path if issue is not None else ""
        if self.outside_said.first((path.lower(), kind)):
            log.warning("webhook for project %r ignored, outside the bot's remit (%s): no job queued; said once "
                        "per project, counted in incident_bot_outside_remit_total", path[:255], kind)


class WebhookRoute:
    """WSGI middleware: ``POST /webhook`` goes straight to the receiver; everything else to Flask.

    The receiver needs nothing of Flask's per-request machinery (app and request contexts, URL
    matching, signals, teardown), which cost about 45 µs of CPU per delivery under gunicorn, more
    than parsing the 9 KB JSON body (``bench/bench_intake.py``). The request is Werkzeug's, with the
    body limit Flask would apply; every check is in :meth:`Receiver.handle` either way, and the
    Flask route below answers alike for anything that dispatches through Flask itself.
    """

    def __init__(self, app: WSGIApplication, receiver: Receiver) -> None:
        self.app = app
        self.receiver = receiver
        self.max_body = receiver.settings.max_body_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == WEBHOOK_PATH and environ.get("REQUEST_METHOD") == "POST":
            req = Request(environ)
            req.max_content_length = self.max_body
            return self.receiver.handle(req)(environ, start_response)
        return self.app(environ, start_response)


bp = Blueprint("incident_bot", __name__)


def _receiver() -> Receiver:
    receiver: Receiver = current_app.extensions[EXTENSION]
    return receiver


@bp.post(WEBHOOK_PATH)
def webhook() -> Response:
    return _receiver().handle(request)


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: the process answers. Deliberately touches nothing else (a restart would not fix it)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready, degraded or not. Anyone may ask, so the answer is the status alone; why goes to the log, and
    to a caller that presents the webhook secret in ``X-Gitlab-Token``."""
    receiver = _receiver()
    insider = token_matches(request.headers.get("X-Gitlab-Token"), receiver.secret)
    try:
        receiver.store.ping()
    except Exception as exc:
        reason = redact(f"delivery store: {exc}")
        log.warning("not ready: %s", reason)
        return _status("unavailable", reason if insider else None), 503
    # Ready but degraded: the shared store is away and deliveries go to this replica's spool. Still 200,
    # so that a load balancer keeps sending deliveries here rather than nowhere.
    degraded = getattr(receiver.store, "degraded", None)
    if degraded:
        reason = redact(str(degraded))
        if reason != receiver.degraded_logged:  # once per cause, not on every probe
            log.warning("degraded: %s", reason)
            receiver.degraded_logged = reason
        return _status("degraded", reason if insider else None), 200
    # With the shared store up, ready also means a worker takes the jobs this replica queues.
    if receiver.worker_heartbeat is not None:
        silent = heartbeat.stale(receiver.worker_heartbeat, receiver.clock())
        if silent:
            log.warning("not ready: %s", silent)
            return _status("unavailable", silent if insider else None), 503
        # The worker is alive but waits for GitLab (unreachable since it started): deliveries are still
        # recorded and will be worked on when GitLab answers, so this replica keeps receiving them (200).
        waiting = heartbeat.waiting_for(receiver.worker_heartbeat, receiver.clock())
        if waiting:
            reason = redact(f"the worker waits for GitLab: {waiting}")
            if reason != receiver.degraded_logged:
                log.warning("degraded: %s", reason)
                receiver.degraded_logged = reason
            return _status("degraded", reason if insider else None), 200
    receiver.degraded_logged = None
    return _status("ready", None), 200


def _status(status: str, reason: str | None) -> Response:
    return jsonify(status=status, reason=reason) if reason else jsonify(status=status)


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = _receiver().metrics.render()
    return Response(body, 200, content_type=content_type)


def create_app(
    settings: WebSettings,
    *,
    store: Intake,
    config: Config,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = utcnow,
    worker_heartbeat: Path | None = None,
    state_key: StateKey | None = None,
) -> Flask:
    """The receiver as a WSGI app. ``clock`` stamps deliveries and checks signature timestamps;
    ``worker_heartbeat``: /readyz is ready only while that worker is alive and claiming (``bot.heartbeat``);
    ``state_key``: the bot's, to believe a child's marker (without it a child's event queues nothing)."""
    app = Flask(__name__)
    # A second line of defence: Werkzeug refuses to read more than this whatever the handler does.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    if metrics is None:
        metrics = Metrics()
    metrics.watch_store(store, clock)
    receiver = Receiver(settings, store, config, metrics, clock, worker_heartbeat, state_key)
    app.extensions[EXTENSION] = receiver
    app.register_blueprint(bp)
    app.wsgi_app = WebhookRoute(app.wsgi_app, receiver)  # type: ignore[method-assign]
    return app
