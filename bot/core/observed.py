"""From GitLab's answers to ``Observed``: what the bot reads in an incident, decided without I/O.

``bot.gitlab.observe`` issues the reads and calls these functions. Everything the bot made is recognised
by author (the bot user) plus what the bot itself signed or logged, so an empty database, a restart or a
second replica finds the same children and comments again; an edited child marker never makes a child
disappear (which would make the bot open a duplicate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.core import bodies, commands, records
from bot.core import state as bot_state
from bot.core.cadence import is_status_update
from bot.core.events import parse_time
from bot.core.model import Child, Desired, IncidentRef, Issue, LabelChange, Note, Observed
from bot.text.markers import StateKey

#: Account states that may not steer the bot, whatever their membership says.
INACTIVE_STATES = frozenset({"blocked", "banned", "blocked_pending_approval", "ldap_blocked", "deactivated"})

#: A status update counts from a project member with at least this access level, or a current role holder.
REPORTER = 20

#: Clocks differ between GitLab's database and a webhook's timestamp; search a little wider.
CLOCK_SLACK = timedelta(minutes=5)


# ---- API entities ---------------------------------------------------------------------------------
def issue_from_api(data: Mapping[str, Any], project: str | None = None) -> Issue:
    """An ``Issue`` from the REST API's issue entity (also used for linked issues)."""
    author = data.get("author") or {}
    pid = data.get("project_id")
    return Issue(
        ref=IncidentRef(project or str(pid), int(data["iid"])),
        id=data.get("id"),
        title=data.get("title") or "",
        description=data.get("description") or "",
        labels=frozenset(lb if isinstance(lb, str) else lb.get("name", "") for lb in data.get("labels") or []),
        state=data.get("state") or "opened",
        confidential=bool(data.get("confidential")),
        assignees=tuple(a["username"] for a in data.get("assignees") or [] if isinstance(a, dict)),
        author=author.get("username", "") if isinstance(author, dict) else "",
        severity_field=str(data.get("severity") or "unknown").lower(),
        issue_type=str(data.get("issue_type") or data.get("type") or "issue").lower(),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
        closed_at=parse_time(data.get("closed_at")),
        web_url=data.get("web_url") or "",
        project_id=pid if isinstance(pid, int) else None,
        project_path=((data.get("references") or {}).get("full") or "").rpartition("#")[0],
    )


def note_from_api(data: Mapping[str, Any], discussion: Mapping[str, Any] | None = None) -> Note:
    """A ``Note`` from the REST API's note entity; ``discussion``, the discussion it was listed in."""
    author = data.get("author") or {}
    discussion_id = (discussion or {}).get("id") or data.get("discussion_id") or ""
    threaded = discussion.get("individual_note") is False if discussion else data.get("type") == "DiscussionNote"
    return Note(
        id=int(data["id"]),
        body=data.get("body") or "",
        author=author.get("username", "") if isinstance(author, dict) else "",
        created_at=parse_time(data.get("created_at")),
        system=bool(data.get("system")),
        author_id=author.get("id") if isinstance(author, dict) and isinstance(author.get("id"), int) else None,
        internal=data.get("internal") is True or data.get("confidential") is True,
        author_state=str(author.get("state") or "active") if isinstance(author, dict) else "active",
        discussion_id=str(discussion_id),
        threaded=threaded,
    )


def label_change_from_api(data: Mapping[str, Any]) -> LabelChange | None:
    """A ``LabelChange`` from GitLab's resource label event (doc/api/resource_label_events.md); None without a
    time or an action GitLab documents."""
    at = parse_time(data.get("created_at"))
    action = data.get("action")
    if at is None or action not in ("add", "remove"):
        return None
    label, user = data.get("label") or {}, data.get("user") or {}
    return LabelChange(
        id=int(data.get("id") or 0),
        label=str(label.get("name") or "") if isinstance(label, dict) else "",
        action=str(action),
        at=at,
        by=str(user.get("username") or "") if isinstance(user, dict) else "",
    )


# ---- the incident, its comments and its children ------------------------------------------------
def observed_from(
    incident: Issue, links: Sequence[Issue], notes: Sequence[Note], cfg: Config, bot: str, *, key: StateKey
) -> Observed:
    """The incident as the bot sees it from one read of the issue, its links and its comments.

    Commands are not yet checked (``allowed`` is unset) and status updates not yet filtered by who wrote
    them: both need access levels, which ``bot.gitlab.observe`` reads next.
    """
    mine = [n for n in notes if n.author.lower() == bot.lower() and not n.system]
    by_id = sorted(mine, key=lambda n: n.id)
    checklist = (
        next((n for n in by_id if bot_state.signed_checklist(n.body, key, incident)), None)
        or next((n for n in by_id if bodies.find_checklist_marker(n.body)), None)
        or next((n for n in by_id if bodies.looks_like_checklist(n.body)), None)
    )
    found = records.read(mine, key, incident)
    people = [n for n in notes if n.author.lower() != bot.lower() and not n.system]
    parsed = [c for n in people if (c := commands.parse(n, bot)) is not None]
    everything = records.any_keys(found)  # only where nothing signed is left (``bot_state.read``)
    answered = max((c.note.id for c in parsed if c.key in everything), default=0)
    reading = bot_state.read(checklist, [n for n in mine if n is not checklist], key, incident, answered=answered)
    belief = records.believe(found, legacy=not reading.state.signed_log)
    logged = belief.logged
    # The status log's thread: the discussion of the bot's oldest threaded log note. Comments of an older
    # log, one comment per change, still count above (their keys) and are left as they are.
    log_thread = next((n.discussion_id for n in belief.thread_notes if n.threaded and n.discussion_id), None)
    pending = [c for c in parsed if c.key not in logged and c.note.id > reading.state.handled]
    observed = Observed(
        incident=incident,
        checklist=checklist,
        checklist_ticks=bodies.ticked_items(checklist.body) if checklist else frozenset(),
        checklist_unticked=bodies.unticked_command_items(checklist.body) if checklist else frozenset(),
        state=reading.state,
        logged=logged,
        logged_at=belief.first_at,
        log_thread=log_thread,
        to_resign=belief.to_resign,
        pending_log=((reading.report,) if reading.report else ()) + belief.reports,
        updates=tuple(n for n in people if is_status_update(n.body, cfg.status_update_points)),
        commands=tuple(pending),
        key=key,
    )
    recorded = bodies.recorded_children(observed.logged)
    children: dict[str, Child] = {}
    for linked in sorted(links, key=lambda i: i.ref.iid):
        channel = signed_channel(linked, observed, bot, recorded)
        if channel and channel not in children:
            children[channel] = Child(channel, linked, linked=True)
    return replace(observed, children=children)


def project_of(incident: Issue) -> str:
    """The incident's project as GitLab's API takes it: its id when known, else its path."""
    return str(incident.project_id) if incident.project_id else incident.ref.project


# ---- who may steer the bot -------------------------------------------------------------------------
def _holders(observed: Observed) -> set[str]:
    return {h.lower() for h in observed.state.roles.values()}


def command_verdict(note: Note, cfg: Config) -> bool | None:
    """May this comment's author command the bot, when that needs no access level: True for the allow-list,
    False for a blocked or banned account or an author without an id; None when their level decides."""
    if note.author_state in INACTIVE_STATES:
        return False
    if note.author.lower() in {u.lower() for u in cfg.bot.allow_commands_from}:
        return True
    return None if note.author_id is not None else False


def command_allowed_at(level: int, cfg: Config) -> bool:
    """Whether an author with this access level on the incident's project may command the bot."""
    return level >= cfg.bot.min_command_access_level


def handoff_target(cmd: commands.Command) -> str | None:
    """The username a hand-off names (without the @), whose existence the bot must check; else None."""
    if cmd.name == "handoff" and len(cmd.args) == 2 and cmd.args[1].startswith("@"):
        return cmd.args[1][1:]
    return None


def update_verdict(note: Note, observed: Observed) -> bool | None:
    """Whether a status update counts without asking GitLab: False from a blocked account, True from a
    current role holder; None when the author's access level decides."""
    if note.author_state in INACTIVE_STATES:
        return False
    if note.author.lower() in _holders(observed):
        return True
    return None


def update_counts_at(note: Note, levels: Mapping[int, int]) -> bool:
    """Whether a status update from someone without a role counts: its author is a Reporter or above."""
    return note.author_id is not None and levels.get(note.author_id, 0) >= REPORTER


def update_needs_level(note: Note, observed: Observed, judged: bool | None) -> bool:
    """Only an update from someone who holds no role, not judged before (``judged``), costs a call."""
    return note.author_id is not None and update_verdict(note, observed) is None and judged is None


# ---- children that exist but are not linked ----------------------------------------------------------
@dataclass(frozen=True)
class OrphanSearch:
    """One search for the bot's unlinked children of an incident (created just before a crash, or whose link
    failed or was removed): in the incident's project, and in each team project a missing channel's child
    may have been opened in. By author and time only, recognised by the marker the bot signed: labels are
    not asked for (a Reporter may remove them, GitLab drops them when the bot is only a Guest), so a child
    that lost them is still found before another is opened (also after ``dead-letters retry`` cleared the
    worker's record of the create)."""

    missing: frozenset[str]
    created_after: datetime | None
    projects: tuple[str, ...] = ()  # team projects (full paths) searched besides the incident's


def orphan_search(observed: Observed, desired: Desired, cfg: Config) -> OrphanSearch | None:
    """The search to run when a desired child is not found among the links; None when none is needed."""
    missing = {c.channel for c in desired.children} - set(observed.children)
    if not missing or observed.orphans_searched:
        return None
    created = observed.incident.created_at
    teams = {c.project for c in desired.children if c.channel in missing and c.project}
    # A team project the bot may not read (no access, outside its remit) holds no child of the bot's.
    unreachable = {t.project for t in observed.targets.values() if t.project and not t.reachable}
    projects = tuple(sorted(p for p in teams if p not in unreachable))
    return OrphanSearch(frozenset(missing), created - CLOCK_SLACK if created else None, projects)


def signed_channel(
    issue: Issue, observed: Observed, bot: str, recorded: Mapping[bodies.ChildKey, str]
) -> str | None:
    """The channel of a child the bot created for this incident, or None if it is somebody else's issue (or
    the bot's child of another incident).

    Believing only the bot's own word: authorship (only the bot's own issues count), then its signed status
    log (``recorded``: which child it opened for which channel), then a marker it signed for this incident.
    An edited or removed marker (Reporters can edit a child's description) therefore never makes a child
    disappear, and a link alone never makes one: the bot's child of another incident, its marker removed
    and linked here by hand, stays that incident's. An unsigned marker and labels prove nothing (anyone with
    update rights can type or set them)."""
    if issue.author.lower() != bot.lower():
        return None
    channel = recorded.get(bodies.child_key(issue, observed.incident))
    if channel is None:
        claim = bodies.child_claim(issue.description, observed.key, observed.incident)
        channel = claim[1] if claim is not None and claim[2] else None
    return channel


def adopt_orphans(observed: Observed, search: OrphanSearch, found: Iterable[Issue], bot: str) -> Observed:
    """``observed`` with the missing children the search found, as unlinked children."""
    children = dict(observed.children)
    recorded = bodies.recorded_children(observed.logged)
    for issue in sorted(found, key=lambda i: i.ref.iid):
        channel = signed_channel(issue, observed, bot, recorded)
        if channel in search.missing and channel not in children:
            children[channel] = Child(channel, issue, linked=False)
    return replace(observed, children=children, orphans_searched=True)


def earlier_child(found: Iterable[Issue], channel: str, observed: Observed, bot: str) -> Issue | None:
    """Among issues found after an earlier create's outcome was unknown, the child it made for ``channel``:
    the bot's own, with a marker the bot signed for this incident and channel (labels may have been dropped)."""
    for issue in sorted(found, key=lambda i: i.ref.iid):
        mine = issue.author.lower() == bot.lower()
        claim = bodies.child_claim(issue.description, observed.key, observed.incident) if mine else None
        if claim is not None and claim[1:] == (channel, True):
            return issue
    return None


def assignee_kept(username: str, issue: Issue) -> bool:
    """Whether GitLab kept ``username`` among the issue's assignees after a write that set it."""
    return username.lower() in {a.lower() for a in issue.assignees}
