"""The child issue: its marker, title, description and the names block in it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from bot.core import names
from bot.core import state as bot_state
from bot.core.bodies.common import (
    CHILD,
    RENDER_FAILURES,
    Renderer,
    _incident_context,
    _render,
    _roles_context,
    dri_of,
    team_name,
    who,
)
from bot.core.bodies.refs import _incident_ref_from, _project_path
from bot.core.model import Child, Desired, Issue, Observed
from bot.text.markers import StateKey, Trust, marker_spans, parse_markers, signed_marker, verify
from bot.text.safe import Safe


def child_marker(observed: Observed, channel: str) -> Safe:
    """A child's marker, signed for the incident: which incident and channel the child is for.

    Besides the incident's global id it names the incident's project id, iid and path, so that an event on
    the child alone leads the receiver (and the sweep) to the incident's job (``bot.core.children``)."""
    inc = observed.incident
    where: dict[str, Any] = {}
    if inc.project_id is not None:
        where = {"project": inc.project_id, "iid": inc.ref.iid, "path": _project_path(inc) or ""}
    return Safe(signed_marker(CHILD, observed.key, bot_state.scope_of(inc), incident=inc.id, channel=channel, **where))


def child_claim(description: str, key: StateKey, incident: Issue) -> tuple[int | None, str, bool] | None:
    """What a child's marker says: (incident id, channel, whether the bot signed it for ``incident``).

    An unsigned or forged claim is only a hint: Reporters can edit a child's description. A marker the bot
    signed wins over any other in the description, wherever it is (a team's template or an edit may put an
    unsigned one before it).
    """
    first: tuple[int | None, str, bool] | None = None
    for m in parse_markers(description):
        if m.kind == CHILD and isinstance(m.fields.get("channel"), str):
            claimed = m.fields.get("incident")
            claimed = claimed if isinstance(claimed, int) else None
            trusted = verify(m, key, bot_state.scope_of(incident)) in (Trust.SIGNED, Trust.SIGNED_EARLIER)
            claim = (claimed, m.fields["channel"], trusted and claimed == incident.id)
            if claim[2]:
                return claim
            first = first or claim
    return first


def child_title(desired: Desired, title: str, observed: Observed | None = None, project: str | None = None) -> str:
    # No text from GitLab in titles: GitLab parses mentions in issue titles too. In a team's project the
    # incident is named by its full reference (``#12`` there would be that project's issue 12).
    ref = f"#{desired.ref.iid}"
    if observed is not None and project is not None:
        ref = _incident_ref_from(observed.incident, project).replace("\\_", "_")
    return f"{title} for security incident {ref}"[:255]


def child_description(
    desired: Desired,
    observed: Observed,
    index: int,
    r: Renderer,
    *,
    template: str | None = None,
    project: str | None = None,
) -> str:
    """The part of a child's description the bot renders: the channel's bundled template, or ``template``
    (the plan's part after a team's own template). ``project``: the team's project it is opened in.

    The names in it (the DRI, who else is engaged, the incident's role holders) sit between two markers
    (``names.py``), so the bot can rewrite them in place when they change."""
    child = desired.children[index]
    context, roles = _child_context(desired, index), _roles_context(desired)
    body = _render(
        r,
        template or child.template,
        f"child issue {child.channel} of {desired.ref}",
        marker=child_marker(observed, child.channel),
        names_start=Safe(names.START),
        names_end=Safe(names.END),
        incident={**_incident_context(observed), "ref": _incident_ref_from(observed.incident, project)},
        child=context,
        roles=roles,
        severity=desired.severity.label,
        flags=list(desired.flags),
    )
    return names.seal(body, _names_key(context, roles))


def _child_context(desired: Desired, index: int) -> dict[str, Any]:
    child = desired.children[index]
    return {
        "title": child.title,
        "channel": child.channel,
        "reason": child.reason,
        "assignee": dri_of(child.assignee),
        "assignee_name": team_name(child.assignee),
        "engaged": [{"who": who(e.who), "name": e.who.name, "note": e.note} for e in child.engaged],
        "rules": list(child.rules),
    }


def _names_key(child: dict[str, Any], roles: list[dict[str, Any]]) -> str:
    """What the names block shows, as a digest: the DRI, who else is engaged, the role holders."""
    shown = [child["assignee"], child["assignee_name"], child["engaged"], [(r["name"], r["who"]) for r in roles]]
    return names.digest(json.dumps(shown, sort_keys=True, default=str))


def child_names(desired: Desired, observed: Observed, child: Child, r: Renderer) -> str | None:
    """The child's description with its names block as the plan has it now, or None when nothing is to change:
    the names are the ones the bot last wrote there (a person's edit inside the block stays until they change),
    or the description has no names block the bot can find (a person removed its markers, or a policy's own
    template has none). Renders the child only when the names changed (or the block records none)."""
    index = next((i for i, c in enumerate(desired.children) if c.channel == child.channel), None)
    if index is None:
        return None
    after = _own_marker_end(child, observed)
    key = _names_key(_child_context(desired, index), _roles_context(desired))
    if names.recorded(child.issue.description, after) == key:
        return None
    with contextlib.suppress(*RENDER_FAILURES):
        wanted = names.block(child_description(desired, observed, index, r))
        if wanted is None:
            return None
        return names.replace_block(child.issue.description, wanted, after=after)
    return None


def _own_marker_end(child: Child, observed: Observed) -> int:
    """Where the bot's part of a child's description starts: after the marker it signed for the incident (a
    team's template before it, or a person's text, cannot move the names block)."""
    body = child.issue.description
    scope = bot_state.scope_of(observed.incident)
    for _, end, m in marker_spans(body):
        mine = m.kind == CHILD and m.fields.get("channel") == child.channel
        if mine and verify(m, observed.key, scope) in (Trust.SIGNED, Trust.SIGNED_EARLIER):
            return end
    return 0
