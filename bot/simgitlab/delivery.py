"""Delivering webhooks for changes made through the API, from one background thread.

Mirrors GitLab's delivery headers and its recursion guard: a request that carries an
``X-Gitlab-Event-UUID`` cannot re-trigger a hook that already fired in that chain.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from . import hooks
from .records import Event
from .state import GitLabState

log = logging.getLogger(__name__)
GITLAB_VERSION = "18.6.0"


@dataclass
class Subscription:
    id: int
    url: str
    secret: str | None = None
    issues_events: bool = True
    confidential_issues_events: bool = True
    note_events: bool = True
    confidential_note_events: bool = True
    incident_object_kind: str = "issue"  # GitLab.com often sends "work_item" for incidents

    def wants(self, kind: str, confidential: bool) -> bool:
        if kind == "issue":
            return self.confidential_issues_events if confidential else self.issues_events
        return self.confidential_note_events if confidential else self.note_events


@dataclass
class Delivery:
    subscription_id: int
    url: str
    event: str  # the X-Gitlab-Event header
    headers: dict[str, str]
    payload: dict[str, Any]
    status: int | None = None
    error: str | None = None
    sent_at: float | None = None


@dataclass
class _Job:
    subscription: Subscription
    delivery: Delivery
    body: bytes = field(repr=False, default=b"")


class WebhookDispatcher:
    def __init__(self, instance_url: str, timeout: float = 10.0) -> None:
        self.instance_url = instance_url
        self.timeout = timeout
        self.subscriptions: list[Subscription] = []
        self.deliveries: list[Delivery] = []
        self.blocked: list[dict[str, Any]] = []  # recursion-guard refusals
        self._fired: dict[str, set[int]] = {}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def subscribe(self, url: str, secret: str | None = None, **flags: Any) -> Subscription:
        with self._lock:
            sub = Subscription(len(self.subscriptions) + 1, url, secret, **flags)
            self.subscriptions.append(sub)
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self.subscriptions = [s for s in self.subscriptions if s.id != sub.id]

    def publish(self, state: GitLabState, event: Event, chain_uuid: str | None) -> None:
        """Build and queue the payloads for an event; called with the state lock held."""
        item = state.issues_by_id[event.issue_id]
        if event.kind == "note":
            note = state.notes_by_id.get(event.note_id or -1)
            if note is None:
                return
            confidential = note.internal or item.confidential
        else:
            confidential = item.confidential
        request_uuid = chain_uuid or str(uuid.uuid4())
        for sub in list(self.subscriptions):
            if not sub.wants(event.kind, confidential):
                continue
            fired = self._fired.setdefault(request_uuid, set())
            if chain_uuid and (sub.id in fired or len(fired) >= 100):
                self.blocked.append({"subscription_id": sub.id, "event_uuid": chain_uuid, "event": event})
                continue
            fired.add(sub.id)
            payload = self._payload(state, event, sub)
            self.enqueue(sub, payload, request_uuid)

    def _payload(self, state: GitLabState, event: Event, sub: Subscription) -> dict[str, Any]:
        item = state.issues_by_id[event.issue_id]
        if event.kind == "note":
            return hooks.note_hook(state, event.project_id, item.iid, event.note_id or 0, event.action, event.actor_id)
        kind = sub.incident_object_kind if item.issue_type == "incident" else "issue"
        return hooks.issue_hook(
            state, event.project_id, item.iid, event.action, event.changes, event.actor_id, object_kind=kind
        )

    def enqueue(self, sub: Subscription, payload: dict[str, Any], event_uuid: str | None = None) -> Delivery:
        """Queue one delivery (also usable directly, e.g. to replay a hand-built payload)."""
        event_name = hooks.issue_event_header(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"GitLab/{GITLAB_VERSION}",
            "X-Gitlab-Event": event_name,
            "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
            "X-Gitlab-Instance": self.instance_url,
            "X-Gitlab-Event-UUID": event_uuid or str(uuid.uuid4()),
            "Idempotency-Key": str(uuid.uuid4()),
        }
        if sub.secret:
            headers["X-Gitlab-Token"] = sub.secret
        delivery = Delivery(sub.id, sub.url, event_name, headers, payload)
        with self._lock:
            self.deliveries.append(delivery)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="simgitlab-hooks", daemon=True)
                self._thread.start()
        self._queue.put(_Job(sub, delivery, json.dumps(payload).encode()))
        return delivery

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery was attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=2)
            self._thread = None

    def _run(self) -> None:
        session = requests.Session()
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._send(session, job)
            finally:
                self._queue.task_done()

    def _send(self, session: requests.Session, job: _Job) -> None:
        delivery = job.delivery
        delivery.sent_at = time.time()
        try:
            response = session.post(delivery.url, data=job.body, headers=delivery.headers, timeout=self.timeout)
            delivery.status = response.status_code
        except requests.RequestException as err:  # GitLab only logs failed deliveries
            delivery.error = f"{type(err).__name__}: {err}"
            log.debug("webhook delivery to %s failed: %s", delivery.url, err)
