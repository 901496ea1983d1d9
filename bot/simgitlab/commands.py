"""Executing the quick actions GitLab would run from a note or description sent over the API.

Only the commands that change what the bot reads are simulated (state, labels, assignees, title,
confidentiality, severity, type); any other known command is stripped and reported as applied,
as GitLab would strip it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .hazards import SUBSTITUTIONS, extract_commands
from .records import ApiError, Issue, Project, User
from .state import GitLabState

_LABEL_ARG = re.compile(r'~"([^"]+)"|~([^\s~,]+)|([^\s~,"]+)')
_SEVERITY_ALIASES = {"s1": "critical", "s2": "high", "s3": "medium", "s4": "low"}
_SEVERITY_VALUES = ("unknown", "low", "medium", "high", "critical")
_NOT_ON_CREATE = {"close", "reopen", "unlabel", "remove_label", "relabel", "unassign"}
_ALIASES = {"labels": "label", "remove_label": "unlabel"}


@dataclass
class Interpretation:
    content: str
    commands: list[tuple[str, str]]
    updates: dict[str, Any] = field(default_factory=dict)  # keywords for GitLabState.edit_issue
    changes: dict[str, Any] = field(default_factory=dict)  # GitLab's commands_changes
    messages: list[str] = field(default_factory=list)

    @property
    def only_commands(self) -> bool:
        return bool(self.commands) and not self.content.strip()


def interpret(state: GitLabState, project: Project, item: Issue | None, actor: User, text: str) -> Interpretation:
    """Extract and interpret commands; ``item`` is None while the issue is being created."""
    content, commands = extract_commands(text)
    result = Interpretation(content, commands)
    runner = _Runner(state, project, item, actor, result)
    for name, arg in commands:
        if item is None and name in _NOT_ON_CREATE:
            result.messages.append(f"Could not apply {name} command.")
            continue
        handler = getattr(runner, "do_" + _ALIASES.get(name, name), None)
        if handler is not None:
            handler(arg)
        elif name not in SUBSTITUTIONS:
            result.messages.append(f"Applied /{name} (not simulated).")
    return result


@dataclass
class _Runner:
    state: GitLabState
    project: Project
    item: Issue | None
    actor: User
    res: Interpretation

    def _set(self, key: str, value: Any, message: str) -> None:
        self.res.updates[key] = self.res.changes[key] = value
        self.res.messages.append(message)

    def _labels(self, arg: str) -> list[str]:
        names = [next(g for g in m.groups() if g) for m in _LABEL_ARG.finditer(arg)]
        return [n for n in names if n in self.project.labels]  # quick actions never create labels

    def _label_ids(self, names: list[str]) -> list[int]:
        return [self.project.labels[n].id for n in names]

    def _users(self, arg: str) -> list[User]:
        found = []
        for token in re.split(r"[\s,]+", arg.strip()):
            if token == "me":
                found.append(self.actor)
            elif token:
                try:
                    found.append(self.state.find_user(token.lstrip("@")))
                except ApiError:
                    continue
        return found

    @property
    def _assignees(self) -> list[int]:
        return list(self.item.assignee_ids) if self.item else []

    def do_close(self, arg: str) -> None:
        if self.item is not None and self.item.state == "opened":
            self._set("state_event", "close", "Closed this issue.")
        else:
            self.res.messages.append("Could not apply close command.")

    def do_reopen(self, arg: str) -> None:
        if self.item is not None and self.item.state == "closed":
            self._set("state_event", "reopen", "Reopened this issue.")
        else:
            self.res.messages.append("Could not apply reopen command.")

    def do_label(self, arg: str) -> None:
        names = self._labels(arg)
        if not names:
            self.res.messages.append("Could not apply label command.")
            return
        self.res.updates.setdefault("add_labels", []).extend(names)
        self.res.changes.setdefault("add_label_ids", []).extend(self._label_ids(names))
        self.res.messages.append(f"Added {_label_ref(names)}.")

    def do_unlabel(self, arg: str) -> None:
        if not arg.strip():
            self._set("labels", [], "Removed all labels.")
            self.res.changes["label_ids"] = self.res.changes.pop("labels")
            return
        names = self._labels(arg)
        self.res.updates.setdefault("remove_labels", []).extend(names)
        self.res.changes.setdefault("remove_label_ids", []).extend(self._label_ids(names))
        self.res.messages.append(f"Removed {_label_ref(names)}." if names else "Could not apply unlabel command.")

    def do_relabel(self, arg: str) -> None:
        names = self._labels(arg)
        self._set("labels", names, f"Replaced all labels with {_label_ref(names)}.")
        self.res.changes["label_ids"] = self._label_ids(self.res.changes.pop("labels"))

    def do_assign(self, arg: str, *, replace: bool = False) -> None:
        users = self._users(arg)
        if not users:
            self.res.messages.append("Could not apply assign command.")
            return
        current = [] if replace else self.res.updates.get("assignee_ids", self._assignees)
        ids = current + [u.id for u in users if u.id not in current]
        if not self.project.premium:
            ids = [users[-1].id]  # CE keeps one assignee: the new one replaces it
        verb = "Reassigned" if replace else "Assigned"
        self._set("assignee_ids", ids, f"{verb} {' '.join('@' + u.username for u in users)}.")

    def do_reassign(self, arg: str) -> None:
        self.do_assign(arg, replace=True)

    def do_unassign(self, arg: str) -> None:
        users = self._users(arg)
        remove = {u.id for u in users} if users else set(self._assignees)
        self._set("assignee_ids", [i for i in self._assignees if i not in remove], "Removed assignees.")

    def do_title(self, arg: str) -> None:
        if arg:
            self._set("title", arg, f'Changed the title to "{arg}".')

    def do_confidential(self, arg: str) -> None:
        self._set("confidential", True, "Made this issue confidential.")

    def do_severity(self, arg: str) -> None:
        value = _SEVERITY_ALIASES.get(arg.lower(), arg.lower())
        issue_type = self.res.updates.get("issue_type") or (self.item.issue_type if self.item else "issue")
        if value in _SEVERITY_VALUES and issue_type == "incident":
            self._set("severity", value.upper(), f"Set severity to {value.title()}.")
        else:
            self.res.messages.append("Could not apply severity command.")

    def do_promote_to_incident(self, arg: str) -> None:
        self._set("issue_type", "incident", "Issue has been promoted to incident")


def _label_ref(names: list[str]) -> str:
    return " ".join(f'~"{n}"' for n in names) + (" labels" if len(names) > 1 else " label")
