"""Test doubles and helpers shared by the receiver, worker and service tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import Severity
from bot.core.model import Desired, IncidentRef, Issue, Observed
from bot.metrics import Metrics
from bot.reconciler import ReconcileReport

ROOT = Path(__file__).resolve().parents[2]
SHARED_PAYLOADS = ROOT / "tests" / "payloads" / "gitlab"
INCIDENT_PAYLOAD = ROOT / "examples" / "payloads" / "s1-incident.json"
SECRET = "s3cret-token"
HOOK_HEADERS = {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": SECRET, "Content-Type": "application/json"}


class FakeClock:
    """A clock the test moves by hand; safe to read from other threads."""

    def __init__(self, start: datetime = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def empty_report(ref: IncidentRef, requeue_at: datetime | None = None) -> ReconcileReport:
    """The report of a reconcile that found nothing to do (out of scope), asking to run again at ``requeue_at``."""
    desired = Desired(ref, False, "test", Severity.UNKNOWN, "test", "", "", ())
    return ReconcileReport(ref, desired, Observed(Issue(ref)), requeue_at=requeue_at)


@dataclass
class FakeReconciler:
    """Counts reconciles per incident; ``effect`` decides what each call does (default: nothing) and may
    return when the incident next needs a reconcile."""

    effect: Callable[[IncidentRef], Any] | None = None
    calls: list[tuple[IncidentRef, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reconcile(self, ref: IncidentRef, *, event_uuid: str | None = None, guard: Any = None) -> ReconcileReport:
        with self.lock:
            self.calls.append((ref, event_uuid))
        requeue_at = self.effect(ref) if self.effect is not None else None
        return empty_report(ref, requeue_at if isinstance(requeue_at, datetime) else None)

    def count(self, key: str) -> int:
        with self.lock:
            return sum(1 for ref, _ in self.calls if ref.key == key)


def event_header_for(payload: Any) -> str:
    """The ``X-Gitlab-Event`` GitLab sends with a payload of this shape."""
    if not isinstance(payload, dict):
        return "Issue Hook"
    confidential = str(payload.get("event_type", "")).startswith("confidential_")
    kind = "Note Hook" if payload.get("object_kind") == "note" else "Issue Hook"
    return f"Confidential {kind}" if confidential else kind


def metric_value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


PROJECT = "sec/incidents"


def seed_people(state: Any, cfg: Any) -> None:
    """Every user the policy names, plus alice, members of ``sec/incidents`` (the bot as Developer)."""
    names: set[str] = {"alice"}
    for role in cfg.roles.values():
        names |= set(role.roster or [])
    for team in cfg.teams.values():
        names |= {n for n in (team.handle, team.assignee) if n}
    for name in sorted(names):
        state.add_user(name)
    members = dict.fromkeys(names, 30) | {"incident-bot": 30, "alice": 40}
    state.add_project(PROJECT, members=members)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
