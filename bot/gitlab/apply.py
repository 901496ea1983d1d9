"""Apply one round of actions to GitLab. Actions in a round are independent, so they run at once."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core import records
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
from bot.core.bodies import child_ref
from bot.core.converge import Result
from bot.core.model import IncidentRef, Issue, Note, Observed
from bot.core.observed import assignee_kept, earlier_child
from bot.gitlab.errors import GitLabCallError, OutcomeUnknown
from bot.gitlab.ports import ApplyWrites, ChildFields
from bot.text.escape import escape_inline
from bot.text.hazards import find_hazards

SEARCH_SLACK = timedelta(minutes=5)  # clocks of the bot and GitLab differ


class WriteRefused(RuntimeError):
    """A write the reconcile must not make; it stops the reconcile, and nothing more is written."""


class LeaseGone(WriteRefused):
    """The job's lease was lost: another worker may be converging the incident now."""


class RepeatedCreate(WriteRefused):
    """A child for this channel was created (or may have been) on an earlier attempt and cannot be
    found again; creating another would open one more child on every retry."""


class WriteGuard(Protocol):
    """What the worker lets a reconcile write (``bot.worker``): checked before every write; creates are
    recorded durably (in the job store) so that they hold across retries and processes."""

    def before_write(self) -> None:
        """Raise :class:`LeaseGone` when the job's lease is lost (a cheap in-memory check)."""

    def before_create(self, channel: str) -> tuple[datetime, int | None] | None:
        """Record that a child for ``channel`` is about to be created and return None; or return what an
        earlier attempt recorded: when it started, and the child's iid if GitLab answered."""

    def created(self, channel: str, iid: int) -> None:
        """GitLab answered the create with this child."""

    def create_failed(self, channel: str) -> None:
        """GitLab answered that the create did not happen (not an unknown outcome): drop the record."""


class GitLabApplier:
    def __init__(
        self, client: ApplyWrites, pool: Executor, guard: WriteGuard | None = None, bot: str = ""
    ) -> None:
        self.client = client
        self.pool = pool
        self.guard = guard
        self.client_bot = bot

    def apply(self, actions: Sequence[Action], observed: Observed) -> list[Result]:
        if self.guard is not None:
            self.guard.before_write()
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

    def _assignee_ids(self, username: str | None, what: str) -> tuple[list[int], list[str]]:
        """The user's id to assign ``what`` to; or none, and the status log's line saying it was not done."""
        if not username:
            return [], []
        uid = self.client.user_id(username)
        if uid is None:
            return [], [
                f"could not assign {what} to {escape_inline('@' + username)}: GitLab has no such user; fix the "
                "policy (`incident-bot check-config --live` checks every person it names)"
            ]
        return [uid], []

    def _earlier_create(self, action: CreateChild, observed: Observed) -> Issue | None:
        """The child an earlier attempt created for this channel, when observe did not find it; None when
        there is none and it may be created now.

        GitLab answered that earlier create: the child exists but the bot cannot find it again (its link,
        labels or marker were refused or removed): creating another would open one more on every retry,
        so stop (:class:`RepeatedCreate`). The earlier create's outcome is unknown: look for it once more,
        by author and marker only (labels may have been dropped); found, it is adopted (and linked next);
        not there, the create did not happen and is made now."""
        assert self.guard is not None
        earlier = self.guard.before_create(action.channel)
        if earlier is None:
            return None
        attempted_at, iid = earlier
        if iid is not None:
            raise RepeatedCreate(
                f"the {action.channel!r} child (#{iid}) was created on an earlier attempt and cannot be found again"
                " (its link, labels or marker are missing, or the bot cannot read it); not creating another"
            )
        incident = observed.incident
        # Where the earlier attempt may have created it: here, and in the team's project when this one goes there.
        projects = [action.project, incident.ref.project] if action.project else [incident.ref.project]
        found: list[Issue] = []
        for project in projects:
            try:
                found += self.client.find_issues(
                    project, labels=(), author=self.client_bot, created_after=attempted_at - SEARCH_SLACK
                )
            except GitLabCallError as exc:
                if project == incident.ref.project or exc.status not in (403, 404):
                    raise
        issue = earlier_child(found, action.channel, observed, self.client_bot)
        if issue is not None:
            self.guard.created(action.channel, issue.ref.iid)
        return issue

    def _post(self, ref: IncidentRef, action: PostNote) -> Note:
        """A comment where ``action`` says: a reply in its thread, a new thread, or top-level. A thread that
        is gone (its notes deleted) is no reason to lose the comment: it starts a new thread (the status log)
        or is posted top-level (a command's reply)."""
        if action.thread:
            try:
                return self.client.reply_in_thread(ref, action.thread, action.body)
            except GitLabCallError as exc:
                if exc.status != 404:
                    raise
        if action.starts_thread or (action.kind == "log" and action.thread):
            _, note = self.client.start_thread(ref, action.body, internal=action.internal)
            return note
        return self.client.create_note(ref, action.body, internal=action.internal)

    def _note_on_child(self, action: NoteOnChild, observed: Observed) -> Result:
        """Post the comment unless the child already has it (an earlier run posted it, then stopped before
        the incident's log said so): one read of the child's comments, then at most one write."""
        child = IncidentRef(action.child_project, action.child_iid)
        try:
            notes = self.client.notes(child)
            bot = self.client_bot.lower()
            legacy = not observed.state.signed_log
            if any(
                n.author.lower() == bot
                and action.log_key in records.keys_in(n.body, observed.key, observed.incident, legacy=legacy)
                for n in notes
            ):
                return Result(action)
            return Result(action, note=self.client.create_note(child, action.body))
        except GitLabCallError as exc:
            if exc.status not in (403, 404):
                raise
            return Result(
                action,
                warnings=(f"could not comment on #{action.child_iid} ({escape_inline(action.channel)}): "
                          f"GitLab answered {exc.status}",),
            )

    def _fix_child(self, action: FixChild, observed: Observed) -> Result:
        """One write putting the child back; a child the bot may no longer write is reported, not retried in
        this run (GitLab answered 403 or 404)."""
        what = f"#{action.child_iid} ({escape_inline(action.channel)})"
        ids, warnings = self._assignee_ids(action.dri, what) if action.assignees is not None else ([], [])
        child = IncidentRef(action.child_project, action.child_iid)
        try:
            issue = self.client.fix_child(
                child, assignee_ids=ids or None, confidential=action.confidential, add_labels=action.add_labels
            )
        except GitLabCallError as exc:
            if exc.status not in (403, 404):
                raise
            return Result(action, warnings=(f"could not put #{action.child_iid} ({escape_inline(action.channel)}) "
                                            f"back as the plan says: GitLab answered {exc.status}",))
        if ids and action.dri and not assignee_kept(action.dri, issue):
            warnings.append(
                f"GitLab did not keep {escape_inline('@' + action.dri)} as assignee of "
                f"{child_ref(issue, observed.incident)} (not a project member?); not asked again"
            )
        return Result(action, issue=issue, warnings=tuple(warnings))

    def _label_child(self, action: LabelChild) -> Result:
        """One write of the child's sign-off label; a child the bot may no longer write is reported."""
        child = IncidentRef(action.child_project, action.child_iid)
        try:
            return Result(action, issue=self.client.label_child(child, add=action.add, remove=action.remove))
        except GitLabCallError as exc:
            if exc.status not in (403, 404):
                raise
            return Result(action, warnings=(f"could not label #{action.child_iid} ({escape_inline(action.channel)}): "
                                            f"GitLab answered {exc.status}",))

    def _rename_in_child(self, action: RenameInChild) -> Result:
        """One write of the child's description; a child the bot may no longer write (403, 404) or whose text
        around the bot's part holds a quick-action line is reported, not retried in this run."""
        child = IncidentRef(action.child_project, action.child_iid)
        quick = [h for h in find_hazards(action.description) if h.kind == "quick_action"]
        why = f"its text holds a line GitLab would run as a quick action ({quick[0]})" if quick else ""
        try:
            if not why:
                self.client.update_description(child, action.description)
        except GitLabCallError as exc:
            if exc.status not in (403, 404):
                raise
            why = f"GitLab answered {exc.status}"
        if why:
            return Result(action, warnings=(f"could not update the names in #{action.child_iid} "
                                            f"({escape_inline(action.channel)}): {escape_inline(why)}",))
        return Result(action)

    def _one(self, action: Action, observed: Observed) -> Result:
        ref = observed.incident.ref
        if self.guard is not None:
            self.guard.before_write()
        if isinstance(action, CreateChild):
            ids, warnings = self._assignee_ids(action.assignee, f"the new {escape_inline(action.channel)} issue")
            for extra_user in action.extra_assignees:  # from the team's template, checked by bot.gitlab.targets
                extra_ids, _ = self._assignee_ids(extra_user, f"the new {escape_inline(action.channel)} issue")
                ids += [i for i in extra_ids if i not in ids]
            if self.guard is not None:
                earlier = self._earlier_create(action, observed)
                if earlier is not None:
                    return Result(action, issue=earlier)
            try:
                # The team's template goes along only when there is one (it is sent ahead of the description),
                # with what of its quick actions the bot applies itself.
                extra: dict[str, Any] = {"preamble": action.preamble} if action.preamble else {}
                fields = ChildFields(action.milestone_id, action.due_date, action.weight)
                if fields != ChildFields():
                    extra["extra"] = fields
                issue = self.client.create_issue(
                    action.project or ref.project,
                    title=action.title,
                    description=action.description,
                    labels=action.labels,
                    assignee_ids=ids,
                    confidential=True,
                    **extra,
                )
            except GitLabCallError as exc:
                if self.guard is not None and not isinstance(exc, OutcomeUnknown):
                    self.guard.create_failed(action.channel)
                raise
            if self.guard is not None:
                self.guard.created(action.channel, issue.ref.iid)
            if ids and action.assignee and not assignee_kept(action.assignee, issue):
                warnings.append(
                    f"GitLab did not keep {escape_inline('@' + action.assignee)} as assignee of "
                    f"{child_ref(issue, observed.incident)} (not a project member, or the tier allows one assignee)"
                )
            return Result(action, issue=issue, warnings=tuple(warnings))
        if isinstance(action, LinkChild):
            self.client.link(ref, IncidentRef(action.child_project, action.child_iid))
            return Result(action)
        if isinstance(action, UpdateIncident):
            ids, warnings = self._assignee_ids(action.assign, "the incident")
            if not ids and not action.add_labels:
                return Result(action, warnings=tuple(warnings))
            issue = self.client.update_issue(ref, assignee_ids=ids or None, add_labels=action.add_labels)
            if ids and action.assign and not assignee_kept(action.assign, issue):
                warnings.append(
                    f"GitLab did not keep {escape_inline('@' + action.assign)} as the incident's assignee "
                    "(not a project member?)"
                )
            return Result(action, warnings=tuple(warnings))
        if isinstance(action, ReassignChild):
            what = f"#{action.child_iid} ({escape_inline(action.channel)})"
            ids, warnings = self._assignee_ids(action.assignee, what)
            if not ids:
                return Result(action, warnings=tuple(warnings))
            child = IncidentRef(action.child_project, action.child_iid)
            issue = self.client.update_issue(child, assignee_ids=ids)
            if not assignee_kept(action.assignee, issue):
                warnings.append(
                    f"GitLab did not keep {escape_inline('@' + action.assignee)} as assignee of "
                    f"#{action.child_iid} (not a project member?)"
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
        if isinstance(action, UpsertReview):
            if action.note_id is not None:
                try:
                    return Result(action, note=self.client.update_note(ref, action.note_id, action.body))
                except GitLabCallError as exc:
                    if exc.status != 404:  # somebody deleted it: post a new one
                        raise
            return Result(action, note=self.client.create_note(ref, action.body))
        if isinstance(action, NoteOnChild):
            return self._note_on_child(action, observed)
        if isinstance(action, FixChild):
            return self._fix_child(action, observed)
        if isinstance(action, LabelChild):
            return self._label_child(action)
        if isinstance(action, RenameInChild):
            return self._rename_in_child(action)
        if isinstance(action, PostNote):
            return Result(action, note=self._post(ref, action))
        raise TypeError(f"unknown action {action!r}")
