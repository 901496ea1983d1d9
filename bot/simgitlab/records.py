"""Plain records held by the in-memory model, plus the model's error type and constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 15, 20, 30, 40, 50
ADMIN_ACCESS = 60  # what an instance admin effectively has everywhere
ACCESS_LEVELS = frozenset({5, GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER})

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
ISSUE_TYPES = {"issue": "ISSUE", "incident": "INCIDENT", "test_case": "TEST_CASE", "task": "TASK"}
LINK_TYPES = ("relates_to", "blocks", "is_blocked_by")
TIERS = ("free", "premium", "ultimate")
VISIBILITIES = ("private", "internal", "public")
DEFAULT_LABEL_COLOR = "#6699cc"


class ApiError(Exception):
    """An error GitLab would answer with: ``status`` and the exact JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body

    @classmethod
    def not_found(cls, what: str | None = None) -> ApiError:
        # not_found!('Project') vs. ActiveRecord::RecordNotFound, as GitLab words them.
        return cls(404, {"message": f"404 {what} Not Found" if what else "404 Not found"})

    @classmethod
    def forbidden(cls, message: str = "403 Forbidden") -> ApiError:
        return cls(403, {"message": message})

    @classmethod
    def bad_request(cls, reason: str) -> ApiError:
        return cls(400, {"message": f"400 Bad request - {reason}"})

    @classmethod
    def missing(cls, param: str) -> ApiError:
        # Grape's own validation errors use the "error" key.
        return cls(400, {"error": f"{param} is missing"})

    @classmethod
    def invalid(cls, param: str) -> ApiError:
        return cls(400, {"error": f"{param} is invalid"})


@dataclass
class User:
    id: int
    username: str
    name: str
    token: str
    state: str = "active"
    admin: bool = False
    email: str | None = None
    bot: bool = False
    created_at: datetime | None = None


@dataclass
class Label:
    id: int
    project_id: int
    name: str
    color: str
    description: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class Milestone:
    id: int
    iid: int
    project_id: int
    title: str
    state: str = "active"  # or "closed"


@dataclass
class Project:
    id: int
    path_with_namespace: str
    tier: str
    visibility: str
    created_at: datetime
    members: dict[int, int] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    milestones: list[Milestone] = field(default_factory=list)
    last_iid: int = 0

    @property
    def path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0] if "/" in self.path_with_namespace else ""

    @property
    def premium(self) -> bool:
        return self.tier != "free"


@dataclass
class Issue:
    id: int
    iid: int
    project_id: int
    title: str
    description: str
    author_id: int
    created_at: datetime
    updated_at: datetime
    state: str = "opened"
    confidential: bool = False
    labels: list[str] = field(default_factory=list)
    assignee_ids: list[int] = field(default_factory=list)
    issue_type: str = "issue"
    severity: str = "UNKNOWN"
    closed_at: datetime | None = None
    closed_by_id: int | None = None
    updated_by_id: int | None = None
    discussion_locked: bool | None = None
    due_date: str | None = None
    milestone_id: int | None = None
    weight: int | None = None


@dataclass
class Note:
    id: int
    issue_id: int
    project_id: int
    body: str
    author_id: int
    created_at: datetime
    updated_at: datetime
    system: bool = False
    internal: bool = False
    discussion_id: str = ""
    """Every note is in a discussion: its own (an individual note) or a thread started with ``discussions``."""
    threaded: bool = False
    """Started as, or replied in, a thread (GitLab's ``DiscussionNote``)."""


@dataclass
class Link:
    id: int
    source_id: int
    target_id: int
    link_type: str  # "relates_to" or "blocks"; is_blocked_by is stored as blocks, swapped
    created_at: datetime
    updated_at: datetime


@dataclass
class LabelEvent:
    """One label added to or removed from an issue (GitLab's ``ResourceLabelEvent``)."""

    id: int
    issue_id: int
    label_id: int
    user_id: int
    action: str  # "add" or "remove"
    created_at: datetime


@dataclass
class Event:
    """A change worth a webhook; ``changes`` maps attribute -> {"previous", "current"}."""

    kind: str  # "issue" | "note"
    action: str  # open/update/close/reopen, or create/update for notes
    project_id: int
    issue_id: int
    actor_id: int
    note_id: int | None = None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
