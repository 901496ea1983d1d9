"""Apply one round of actions to GitLab. Actions in a round are independent, so they run at once."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

from bot.core.actions import Action, CreateChild, LinkChild, PostNote, UpdateIncident, UpsertChecklist
from bot.core.converge import Result
from bot.core.model import IncidentRef, Observed
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabCallError
from bot.markdown import escape_inline


class GitLabApplier:
    def __init__(self, client: GitLabClient, pool: Executor) -> None:
        self.client = client
        self.pool = pool

    def apply(self, actions: Sequence[Action], observed: Observed) -> list[Result]:
        futures = [self.pool.submit(self._one, action, observed) for action in actions]
        results, errors = [], []
        for future in futures:  # wait for every write of the round before reporting a failure
            try:
                results.append(future.result())
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return results

    def _assignee_ids(self, username: str | None) -> tuple[list[int], list[str]]:
        if not username:
            return [], []
        uid = self.client.user_id(username)
        if uid is None:
            return [], [f"could not assign {escape_inline('@' + username)}: no such GitLab user"]
        return [uid], []

    def _one(self, action: Action, observed: Observed) -> Result:
        ref = observed.incident.ref
        if isinstance(action, CreateChild):
            ids, warnings = self._assignee_ids(action.assignee)
            issue = self.client.create_issue(
                ref.project,
                title=action.title,
                description=action.description,
                labels=action.labels,
                assignee_ids=ids,
                confidential=True,
            )
            if ids and action.assignee and action.assignee.lower() not in {a.lower() for a in issue.assignees}:
                warnings.append(
                    f"GitLab did not keep {escape_inline('@' + action.assignee)} as assignee of "
                    f"#{issue.ref.iid} (not a project member, or the tier allows one assignee)"
                )
            return Result(action, issue=issue, warnings=tuple(warnings))
        if isinstance(action, LinkChild):
            self.client.link(ref, IncidentRef(action.child_project, action.child_iid))
            return Result(action)
        if isinstance(action, UpdateIncident):
            ids, warnings = self._assignee_ids(action.assign)
            if not ids and not action.add_labels:
                return Result(action, warnings=tuple(warnings))
            issue = self.client.update_issue(ref, assignee_ids=ids or None, add_labels=action.add_labels)
            if ids and action.assign and action.assign.lower() not in {a.lower() for a in issue.assignees}:
                warnings.append(
                    f"GitLab did not keep {escape_inline('@' + action.assign)} as the incident's assignee "
                    "(not a project member?)"
                )
            return Result(action, warnings=tuple(warnings))
        if isinstance(action, UpsertChecklist):
            if action.note_id is not None:
                try:
                    return Result(action, note=self.client.update_note(ref, action.note_id, action.body))
                except GitLabCallError as exc:
                    if exc.status != 404:  # somebody deleted it: post a new one
                        raise
            return Result(action, note=self.client.create_note(ref, action.body))
        if isinstance(action, PostNote):
            if action.internal:
                return Result(action, note=self.client.create_note(ref, action.body, internal=True))
            return Result(action, note=self.client.create_note(ref, action.body))
        raise TypeError(f"unknown action {action!r}")
