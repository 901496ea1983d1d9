"""The reconcile loop, sans I/O: diff, apply a round, fold the results into what was observed, repeat.

The same loop drives the real GitLab applier and the offline dry run (``DryRun``), so what ``plan``
prints is exactly what ``reconcile`` would do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bot.config import Config
from bot.core import bodies
from bot.core import state as bot_state
from bot.core.actions import (
    Action,
    CreateChild,
    FixChild,
    LabelChild,
    LinkChild,
    NoteOnChild,
    PostNote,
    ReassignChild,
    RenameInChild,
    UpdateIncident,
    UpsertChecklist,
    UpsertReview,
)
from bot.core.diff import diff
from bot.core.model import BotState, Child, Desired, IncidentRef, Issue, LogEntry, Note, Observed
from bot.text.escape import escape_inline
from bot.text.markers import find_marker

MAX_ROUNDS = 6


class NotConverging(RuntimeError):
    pass


@dataclass(frozen=True)
class Result:
    """What GitLab answered to one action: the created child issue or the written note, if any."""

    action: Action
    issue: Issue | None = None
    note: Note | None = None
    warnings: tuple[str, ...] = ()  # safe markdown, logged with the next status log comment


class Applier(Protocol):
    def apply(self, actions: Sequence[Action], observed: Observed) -> list[Result]: ...


def fold(observed: Observed, result: Result) -> Observed:
    """``observed`` as it is after ``result`` — so the next diff needs no new read from GitLab."""
    action = result.action
    if result.warnings:
        extra = tuple(LogEntry(f"warning:{action.key}:{n}", w) for n, w in enumerate(result.warnings))
        observed = replace(observed, pending_log=observed.pending_log + extra)
    if isinstance(action, CreateChild):
        assert result.issue is not None
        children = {**observed.children, action.channel: Child(action.channel, result.issue, linked=False)}
        kept = {a.lower() for a in result.issue.assignees}
        refused = observed.dri_refused
        if action.assignee and action.assignee.lower() not in kept:
            refused = refused | {action.channel}
        return replace(observed, children=children, dri_refused=refused)
    if isinstance(action, FixChild):
        return _fixed(observed, action, result.issue, refused=result.issue is None and bool(result.warnings))
    if isinstance(action, LinkChild):
        child = observed.children[action.channel]
        return replace(observed, children={**observed.children, action.channel: replace(child, linked=True)})
    if isinstance(action, UpdateIncident):
        inc = observed.incident
        assigned = action.assign if action.assign and not result.warnings else None
        incident = replace(
            inc,
            assignees=(assigned,) if assigned else inc.assignees,
            labels=inc.labels | set(action.add_labels),
        )
        return replace(observed, incident=incident, assign_refused=bool(action.assign and not assigned))
    if isinstance(action, ReassignChild):
        return _reassigned(observed, action, kept=not result.warnings)
    if isinstance(action, RenameInChild):
        return _renamed(observed, action, written=not result.warnings)
    if isinstance(action, UpsertChecklist):
        note = result.note or Note(action.note_id or 0, action.body, "")
        return replace(observed, checklist=note, state=state_from_checklist(note.body))
    if isinstance(action, UpsertReview):
        note = result.note or Note(action.note_id or 0, action.body, "")
        return replace(observed, logged=observed.logged | {action.key},
                       logged_at={**observed.logged_at, action.key: note})
    if isinstance(action, PostNote):
        pending = () if action.kind == "log" else observed.pending_log
        # The comment's time (GitLab's answer) is when its keys were first recorded: the review measures to it.
        first = {k: result.note for k in action.log_keys if k not in observed.logged_at} if result.note else {}
        observed = replace(observed, logged=observed.logged | set(action.log_keys), pending_log=pending,
                           logged_at={**observed.logged_at, **first})
        if action.kind == "log" and result.note is not None and result.note.discussion_id:
            observed = replace(observed, log_thread=result.note.discussion_id)
        return observed
    if isinstance(action, LabelChild):  # as asked (a refusal is a warning, not retried in this run)
        child = observed.children[action.channel]
        labels = (child.issue.labels | set(action.add)) - set(action.remove)
        pending = observed.pending_log
        if action.log_key:
            pending = (*pending, LogEntry(action.log_key, action.log_text))
        return replace(observed, pending_log=pending, children={
            **observed.children, action.channel: replace(child, issue=replace(child.issue, labels=frozenset(labels)))})
    if isinstance(action, NoteOnChild):
        return replace(
            observed,
            child_noted=observed.child_noted | {action.log_key},
            pending_log=(*observed.pending_log, LogEntry(action.log_key, action.log_text)),
        )
    raise TypeError(f"unknown action {action!r}")


def _reassigned(observed: Observed, action: ReassignChild, *, kept: bool) -> Observed:
    """The child now assigned to the new holder (or, refused, left as it was), and a status log line saying so."""
    child = observed.children[action.channel]
    if not kept:  # the warning says why; GitLab dropped the assignee or was not asked: do not ask again
        return replace(
            observed,
            children={**observed.children, action.channel: replace(child, issue=replace(child.issue, assignees=()))},
        )
    issue = replace(child.issue, assignees=(action.assignee,))
    line = LogEntry(
        f"reassigned:{action.channel}:{action.child_iid}:{action.assignee.lower()}",
        f"{bodies.child_ref(child.issue, observed.incident)} ({escape_inline(action.channel)}) follows the hand-off "
        "of the "
        f"{action.role.upper()}: reassigned from {bodies.at(action.previous)} to {bodies.at(action.assignee)}",
    )
    return replace(
        observed,
        children={**observed.children, action.channel: replace(child, issue=issue)},
        pending_log=(*observed.pending_log, line),
    )


def _renamed(observed: Observed, action: RenameInChild, *, written: bool) -> Observed:
    """The child's description as rewritten (unchanged when GitLab refused: the warning says why), once a run."""
    tried = observed.children_renamed | {action.channel}
    child = observed.children[action.channel]
    if not written:
        return replace(observed, children_renamed=tried)
    issue = replace(child.issue, description=action.description)
    return replace(observed, children={**observed.children, action.channel: replace(child, issue=issue)},
                   children_renamed=tried)


def _fixed(observed: Observed, action: FixChild, answer: Issue | None, refused: bool) -> Observed:
    """The child as GitLab answered ``action`` (as asked, in a dry run; unchanged when GitLab refused the write),
    a status log line for what was put back, and no second try in this run."""
    child = observed.children[action.channel]
    tried = observed.children_fixed | {action.channel}
    if refused:
        return replace(observed, children_fixed=tried)
    if answer is None:  # a dry run: as asked
        answer = replace(
            child.issue,
            confidential=child.issue.confidential or action.confidential,
            labels=child.issue.labels | set(action.add_labels),
            assignees=action.assignees if action.assignees is not None else child.issue.assignees,
        )
    issue = replace(child.issue, confidential=answer.confidential, labels=answer.labels, assignees=answer.assignees)
    done = []
    if action.confidential and answer.confidential:
        done.append("made it confidential again")
    back = [label for label in action.add_labels if label in answer.labels]
    if back:
        done.append("put back " + ", ".join(escape_inline(f"~{label}") for label in back))
    if action.dri and action.dri.lower() in {a.lower() for a in answer.assignees}:
        done.append(f"assigned its DRI {bodies.at(action.dri)}")
    pending = observed.pending_log
    if done:
        ref = bodies.child_ref(child.issue, observed.incident)
        text = f"{ref} ({escape_inline(action.channel)}) had been changed; put back as the plan says: {', '.join(done)}"
        pending = (*pending, LogEntry(action.log_key, text))
    return replace(
        observed,
        children={**observed.children, action.channel: replace(child, issue=issue)},
        children_fixed=tried,
        pending_log=pending,
    )


def state_from_checklist(body: str) -> BotState:
    """The state in a checklist body the bot has just written itself. Not verified: to believe a
    checklist read from GitLab, use ``bot.core.state.read``."""
    m = find_marker(body, bodies.CHECKLIST)
    return BotState() if m is None else bot_state.decode(m.fields)


#: Called once, before the checklist is written, with everything else of that round written: what the state should
#: record after all (``bot.reconciler``: the incident's timeline, written before the state that says so).
BeforeChecklist = Callable[[Desired, Observed], tuple[Desired, Observed]]


def converge(
    desired: Desired,
    observed: Observed,
    cfg: Config,
    r: bodies.Renderer,
    applier: Applier,
    *,
    before_checklist: BeforeChecklist | None = None,
) -> tuple[Observed, list[Action]]:
    """Apply rounds of actions until the diff is empty; return the final state and what was done."""
    done: list[Action] = []
    for _ in range(MAX_ROUNDS):
        actions = diff(desired, observed, cfg, r)
        if not actions:
            return observed, done
        if before_checklist is not None and any(isinstance(a, UpsertChecklist) for a in actions):
            for result in applier.apply([a for a in actions if not isinstance(a, UpsertChecklist)], observed):
                observed = fold(observed, result)
                done.append(result.action)
            desired, observed = before_checklist(desired, observed)
            before_checklist = None
            actions = diff(desired, observed, cfg, r)
            if not actions:
                return observed, done
        for result in applier.apply(actions, observed):
            observed = fold(observed, result)
            done.append(result.action)
    raise NotConverging(
        f"{desired.ref}: still {len(diff(desired, observed, cfg, r))} changes after {MAX_ROUNDS} rounds"
    )


class DryRun:
    """An applier that pretends: new children get placeholder iids, nothing is written anywhere."""

    def __init__(self, first_iid: int = 1000):
        self._next = first_iid

    def apply(self, actions: Sequence[Action], observed: Observed) -> list[Result]:
        results = []
        for action in actions:
            if isinstance(action, CreateChild):
                self._next += 1
                ref = IncidentRef(action.project or observed.incident.ref.project, self._next)
                issue = Issue(
                    ref=ref,
                    title=action.title,
                    description=action.preamble + action.description,
                    project_path=action.project or "",
                    project_id=None if action.project else observed.incident.project_id,
                    labels=frozenset(action.labels),
                    confidential=True,
                    assignees=(action.assignee,) if action.assignee else (),
                )
                results.append(Result(action, issue=issue))
            elif isinstance(action, UpsertChecklist):
                results.append(Result(action, note=Note(action.note_id or 1, action.body, "")))
            elif isinstance(action, PostNote) and action.kind == "log":
                thread = action.thread or f"preview-log-{observed.incident.ref.key}"
                results.append(Result(action, note=Note(0, action.body, "", discussion_id=thread, threaded=True)))
            else:
                results.append(Result(action))
        return results
