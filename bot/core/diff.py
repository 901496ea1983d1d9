"""``diff(desired, observed) -> actions``: the smallest set of changes that closes the gap. Pure.

Actions come in rounds whose members are independent of each other (so they can run concurrently):
children and the incident's own update first, then links for children that are not linked, and only
when every child exists and is linked, the checklist and the status log. The reconciler applies a
round, folds the results into ``Observed`` and diffs again until nothing is left.
"""

from __future__ import annotations

from bot.config import Config
from bot.core import bodies
from bot.core.actions import Action, CreateChild, LinkChild, PostNote, UpdateIncident, UpsertChecklist
from bot.core.model import Desired, Observed
from bot.core.routing import is_incident


def diff(desired: Desired, observed: Observed, cfg: Config, r: bodies.Renderer) -> list[Action]:
    incident = observed.incident
    if not is_incident(incident, cfg) or not incident.is_open:
        return []
    if not desired.in_scope:
        if "out-of-scope" in observed.logged:
            return []
        return [PostNote("out-of-scope", bodies.out_of_scope_body(desired, observed, cfg, r), ("out-of-scope",))]

    actions: list[Action] = []
    for index, child in enumerate(desired.children):
        if child.channel not in observed.children:
            actions.append(
                CreateChild(
                    channel=child.channel,
                    title=bodies.child_title(desired, child.title),
                    description=bodies.child_description(desired, observed, index, r),
                    labels=child.labels,
                    assignee=child.assignee.assignee,
                )
            )
    assign = desired.assign_incident_to if not incident.assignees and not observed.assign_refused else None
    add_labels = tuple(label for label in desired.add_labels if label not in incident.labels)
    if assign or add_labels:
        actions.append(UpdateIncident(assign=assign, add_labels=add_labels))
    for child in observed.children.values():
        if not child.linked:
            actions.append(LinkChild(child.channel, child.issue.ref.project, child.iid))
    if actions:
        return actions

    body = bodies.checklist_body(desired, observed, cfg, r)
    if observed.checklist is None or observed.checklist.body.strip() != body.strip():
        note_id = observed.checklist.id if observed.checklist else None
        actions.append(UpsertChecklist(body=body, note_id=note_id))
    entries = [e for e in bodies.log_entries(desired, observed) if e.key not in observed.logged]
    if entries:
        actions.append(PostNote("log", bodies.log_body(entries, cfg, r), tuple(e.key for e in entries)))
    return actions
