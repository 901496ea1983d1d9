"""The incident's GitLab timeline over GraphQL: read its events, create the missing ones (``bot.core.timeline``).

GitLab's timeline events have no REST API. The query is ``Project.incidentManagementTimelineEvents(incidentId:)``
(gitlabhq ``app/graphql/types/project_type.rb``, a connection of ``TimelineEventType``); the mutation
``timelineEventCreate`` (``app/graphql/mutations/incident_management/timeline_event/create.rb``) answers a refusal
(no permission, a tag that does not exist, a note too long) in its ``errors`` list with HTTP 200.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from bot.config import Config
from bot.core import timeline
from bot.core.events import parse_time
from bot.core.model import Desired, Issue, LogEntry, Observed
from bot.core.state import next_revision
from bot.core.timeline import Event, Fact
from bot.gitlab.errors import GitLabCallError
from bot.text.escape import escape_inline
from bot.text.markers import StateKey

log = logging.getLogger(__name__)

PAGE = 100

EVENTS_QUERY = """
query($path: ID!, $incident: IssueID!, $after: String) {
  project(fullPath: $path) {
    incidentManagementTimelineEvents(incidentId: $incident, first: 100, after: $after) {
      nodes { id note occurredAt author { username } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

CREATE_MUTATION = """
mutation($input: TimelineEventCreateInput!) {
  timelineEventCreate(input: $input) {
    timelineEvent { id note occurredAt author { username } }
    errors
  }
}
"""


@runtime_checkable
class GraphQL(Protocol):
    def graphql(self, step: str, query: str, variables: dict[str, Any], *, write: str = "read") -> dict[str, Any]: ...


class TimelineRefused(RuntimeError):
    """GitLab answered the mutation with errors (permission, tag, length): trying again does not help."""


def incident_gid(incident: Issue) -> str:
    return f"gid://gitlab/Issue/{incident.id}"


def project_path(incident: Issue) -> str:
    return incident.project_path or incident.ref.project


def _event(node: Any) -> Event | None:
    if not isinstance(node, dict) or not isinstance(node.get("id"), str):
        return None
    author = node.get("author") if isinstance(node.get("author"), dict) else {}
    username = author.get("username") if author else ""
    text = node.get("note")
    return Event(
        node["id"],
        username if isinstance(username, str) else "",
        text if isinstance(text, str) else "",
        parse_time(node.get("occurredAt")),
    )


def read_events(client: GraphQL, incident: Issue) -> list[Event]:
    """Every timeline event of ``incident``, one request per 100."""
    events: list[Event] = []
    after: str | None = None
    while True:
        data = client.graphql(
            "read the incident's timeline",
            EVENTS_QUERY,
            {"path": project_path(incident), "incident": incident_gid(incident), "after": after},
        )
        project = data.get("project") or {}
        conn = project.get("incidentManagementTimelineEvents") or {}
        events.extend(e for e in map(_event, conn.get("nodes") or []) if e is not None)
        info = conn.get("pageInfo") or {}
        after = info.get("endCursor")
        if not info.get("hasNextPage") or not after:
            return events


def create_event(client: GraphQL, incident: Issue, fact: Fact, note: str) -> Event | None:
    """One timeline event for ``fact``. Raises ``TimelineRefused`` when GitLab answers with errors."""
    variables = {
        "input": {
            "incidentId": incident_gid(incident),
            "note": note,
            "occurredAt": fact.occurred_at.isoformat(),
            "timelineEventTagNames": list(fact.tags),
        }
    }
    data = client.graphql("add a timeline event", CREATE_MUTATION, variables, write="create")
    answer = data.get("timelineEventCreate") or {}
    errors: Sequence[Any] = answer.get("errors") or []
    if errors:
        raise TimelineRefused("; ".join(str(e) for e in errors)[:300])
    return _event(answer.get("timelineEvent"))


@dataclass(frozen=True)
class Probe:
    """What ``check-config --live`` says about the timeline API for a project."""

    ok: bool
    line: str


def probe(client: GraphQL, project: str) -> Probe:
    """A harmless query: whether GitLab's GraphQL API answers for ``project`` (read only)."""
    try:
        data = client.graphql(
            "check the GraphQL API", "query($path: ID!) { project(fullPath: $path) { id } }", {"path": project}
        )
    except Exception as exc:
        return Probe(False, f"timeline: GitLab's GraphQL API did not answer for {project}: {exc}")
    if not (data.get("project") or {}).get("id"):
        return Probe(False, f"timeline: GitLab's GraphQL API does not show project {project} to the bot")
    return Probe(True, f"timeline: GitLab's GraphQL API answers for {project}")


class TimelineMirror:
    """Mirrors the incident's facts into its GitLab timeline, each once, before the checklist records that it did
    (``converge``'s ``before_checklist``). Nothing is read while the signed state says the same facts are there
    already; else one read, the missing events, and the digest in the state."""

    def __init__(self, client: GraphQL, cfg: Config, bot: str, key: StateKey, now: datetime) -> None:
        self.client, self.cfg, self.bot, self.key, self.now = client, cfg, bot, key, now
        self.digest: str | None = None

    def __call__(self, desired: Desired, observed: Observed) -> tuple[Desired, Observed]:
        incident = observed.incident
        if not timeline.applies(incident, self.cfg):
            self.digest = observed.state.timeline
            return desired, observed
        facts = timeline.facts(observed, desired, self.cfg, desired.now or self.now)
        self.digest = digest = timeline.digest(facts)
        if digest == observed.state.timeline:
            return desired, observed
        pending = observed.pending_log
        try:
            found = self._found(incident)
            for fact in timeline.missing(facts, found):
                self._create(incident, fact)
        except (TimelineRefused, GitLabCallError) as exc:
            if isinstance(exc, GitLabCallError) and exc.transient:
                raise  # maybe saved (a lost answer): the next run reads the timeline again before writing
            # Permanent (no Developer role, GraphQL blocked): said once in the status log; the incident goes on,
            # and the timeline is tried again when a fact changes.
            log.warning("%s: GitLab refused the incident's timeline: %s", desired.ref, exc)
            text = f"GitLab refused the incident's timeline events: {escape_inline(str(exc))}"
            pending = (*pending, LogEntry("timeline-refused", text))
        state = next_revision(observed.state, replace(desired.state, timeline=digest))
        return replace(desired, state=state), replace(observed, pending_log=pending)

    def _found(self, incident: Issue) -> set[str]:
        return timeline.mirrored(read_events(self.client, incident), self.bot, self.key, incident)

    def _create(self, incident: Issue, fact: timeline.Fact) -> None:
        """One event for ``fact``. When its answer is lost (GitLab may have saved it), the timeline is read again
        before a second try, and a second lost answer ends the run (the next one reads first too)."""
        note = timeline.note(fact, self.key, incident)
        try:
            create_event(self.client, incident, fact, note)
        except GitLabCallError as exc:
            if not exc.transient:
                raise
            if fact.key in self._found(incident):
                return  # saved: the answer alone was lost
            create_event(self.client, incident, fact, note)
