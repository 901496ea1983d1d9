"""Which incident a change of one of the bot's children concerns (pure).

A person who closes or reopens a child (the blog post published, the customer email sent) changes what the
incident's checklist shows, and the order its channels should close in. GitLab sends that event about the
child, not the incident, and a child in a team's project sends it only to a webhook on that project. The
child's own marker names its incident: signed by the bot for that incident (``bot.core.bodies.child_marker``),
it names the incident's project id, iid and path, so the receiver queues the incident's job from the payload
alone, and the sweep does likewise for the bot's children it finds changed.

Trust: a Reporter can edit a child's description, and anyone can write a marker into an issue of their own.
Only a marker the bot signed for incident X (its state key, bound to ``<project id>#<iid>``) leads anywhere,
and then only to "look at incident X again", inside the incident scope (by the marker's path here, and by
GitLab's answer in the worker's remit check). A child of an older version names its incident by global id
only: the receiver cannot find the incident's job from that, the sweep can (:func:`claimed_incident`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.config import Config
from bot.core import state as bot_state
from bot.core.events import Event, Ignored, IssueEvent
from bot.core.model import IncidentRef, Issue
from bot.core.scope import TEAM_PROJECT, outside
from bot.text.markers import Marker, StateKey, Trust, parse_markers, verify

CHILD = "child"
TRUSTED = (Trust.SIGNED, Trust.SIGNED_EARLIER)


@dataclass(frozen=True)
class ChildOf:
    """The incident a child's signed marker names: its job's key, and its path for logs (may be empty)."""

    ref: IncidentRef
    path: str = ""

    @property
    def shown(self) -> str:
        return f"{self.path}#{self.ref.iid}" if self.path else self.ref.key


def _child_markers(description: str) -> list[Marker]:
    return [m for m in parse_markers(description) if m.kind == CHILD]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def signed_incident(found: Marker, key: StateKey) -> ChildOf | None:
    """The incident a child marker names, when the bot signed it for that incident (any key it believes)."""
    project, iid = _int(found.get("project")), _int(found.get("iid"))
    if project is None or iid is None:
        return None
    if verify(found, key, f"{project}#{iid}") not in TRUSTED:
        return None
    path = found.get("path")
    return ChildOf(IncidentRef(str(project), iid), path if isinstance(path, str) else "")


def child_event(event: Event, cfg: Config, key: StateKey | None, teams: Iterable[str]) -> ChildOf | Ignored | None:
    """For an issue event the routing ignored: the incident whose child changed, why the event still needs
    no work, or None when the issue carries no child marker at all (not a child: the routing's reason
    stands). Reads the payload only."""
    if not isinstance(event, IssueEvent):
        return None
    found = _child_markers(event.issue.description)
    if not found:
        return None
    if event.actor and event.actor.lower() == cfg.bot.username.lower():
        return Ignored("event caused by the bot itself")
    teams = frozenset(t.lower() for t in teams)
    path = event.issue.project_path
    where = outside(path, cfg.scope, teams) if path else None
    if where is not None and where[0] != TEAM_PROJECT:  # children live in a team project or an incident's project
        return Ignored(f"child marker on an issue outside the bot's remit: {where[1]}")
    if key is None:
        return Ignored("a child's event, but the receiver has no state key to check its marker; the sweep will see it")
    named = [child for m in found if (child := signed_incident(m, key)) is not None]
    if not named:
        if any(m.get("project") is None for m in found):
            return Ignored("a child of an earlier version names its incident by id only; the sweep will see it")
        return Ignored("a child marker the bot did not sign (edited, copied or forged): no incident queued")
    child = named[0]
    if child.path:
        refused = outside(child.path, cfg.scope, teams)
        if refused is not None:
            return Ignored(f"the child's incident is not the bot's: {refused[1]}")
    return child


def claimed_incident(issue: Issue, key: StateKey, by_id: Mapping[int, Issue]) -> ChildOf | None:
    """The incident a child (as listed from GitLab) belongs to, by its signed marker; a marker of an earlier
    version (global id only) is matched against ``by_id`` (incidents the caller listed) and verified for it."""
    for found in _child_markers(issue.description):
        named = signed_incident(found, key)
        if named is not None:
            return named
        old = _int(found.get("incident"))
        incident = by_id.get(old) if old is not None else None
        if incident is not None and verify(found, key, bot_state.scope_of(incident)) in TRUSTED:
            project = incident.project_id if incident.project_id is not None else incident.ref.project
            return ChildOf(IncidentRef(str(project), incident.ref.iid), incident.project_path)
    return None
