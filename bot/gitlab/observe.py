"""Read one incident's state from GitLab: the issue, its links and its comments, concurrently.

Everything the bot made is recognised by author (the bot user) plus a hidden marker, so an empty
database, a restart or a second replica finds the same children and comments again. A child created
but not yet linked (a crash in between) is found by ``find_orphans``, a label-filtered search that
only runs when a child seems to be missing.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import replace
from datetime import timedelta

from bot.config import Config
from bot.core import bodies, commands
from bot.core.cadence import is_status_update
from bot.core.converge import state_from_checklist
from bot.core.model import Child, Desired, IncidentRef, Issue, Note, Observed
from bot.gitlab.client import INACTIVE_STATES, GitLabClient

# Clocks differ between GitLab's database and a webhook's timestamp; search a little wider.
CLOCK_SLACK = timedelta(minutes=5)


def _channel_of(child: Issue, incident: Issue, cfg: Config, bot: str) -> str | None:
    """Which channel a linked issue is the bot's child for, or None if it is somebody else's issue."""
    if child.author.lower() != bot.lower():
        return None
    identity = bodies.child_identity(child.description)
    if identity is not None:
        incident_id, channel = identity
        return channel if incident_id in (None, incident.id) else None
    # The marker was edited away: fall back to the labels the bot put on it.
    if cfg.labels.child in child.labels:
        channels = [c.label for c in cfg.channels if c.label in child.labels]
        if len(channels) == 1:
            return channels[0]
    return None


def observed_from(incident: Issue, links: list[Issue], notes: list[Note], cfg: Config, bot: str) -> Observed:
    children: dict[str, Child] = {}
    for linked in sorted(links, key=lambda i: i.ref.iid):
        channel = _channel_of(linked, incident, cfg, bot)
        if channel and channel not in children:
            children[channel] = Child(channel, linked, linked=True)
    mine = [n for n in notes if n.author.lower() == bot.lower() and not n.system]
    checklist = next((n for n in sorted(mine, key=lambda n: n.id) if bodies.find_checklist_marker(n.body)), None)
    logged: set[str] = set()
    for note in mine:
        logged |= bodies.logged_keys(note.body)
    people = [n for n in notes if n.author.lower() != bot.lower() and not n.system]
    pending = [c for n in people if (c := commands.parse(n, bot)) is not None and c.key not in logged]
    return Observed(
        incident=incident,
        children=children,
        checklist=checklist,
        checklist_ticks=bodies.ticked_items(checklist.body) if checklist else frozenset(),
        state=state_from_checklist(checklist.body) if checklist else state_from_checklist(""),
        logged=frozenset(logged),
        updates=tuple(n for n in people if is_status_update(n.body, cfg.status_update_points)),
        commands=tuple(pending),
    )


def observe(client: GitLabClient, ref: IncidentRef, cfg: Config, bot: str, pool: Executor) -> Observed:
    """Three reads, run at once: the incident, its links, its comments (plus, for unanswered commands and
    for status updates not judged before, the authors' access levels, and whom a hand-off names)."""
    issue_f = pool.submit(client.get_issue, ref)
    links_f = pool.submit(client.links, ref)
    notes_f = pool.submit(client.notes, ref)
    observed = observed_from(issue_f.result(), links_f.result(), notes_f.result(), cfg, bot)
    if not observed.commands and not observed.updates:
        return observed
    project = _project_of(observed.incident)
    wanted = {c.note.author_id for c in observed.commands if _needs_level(c.note, cfg)}
    wanted |= {n.author_id for n in observed.updates if _update_needs_level(client, project, n, observed)}
    ids = sorted(uid for uid in wanted if uid is not None)
    levels = dict(zip(ids, pool.map(lambda uid: client.access_level(project, uid), ids), strict=True))
    updates = tuple(n for n in observed.updates if _counts(client, project, n, observed, levels))
    checked = pool.map(lambda c: check_command(client, c, observed.incident, cfg, levels), observed.commands)
    return replace(observed, commands=tuple(checked), updates=updates)


# A status update counts from a project member with at least this access level, or a current role holder.
REPORTER = 20


def _project_of(incident: Issue) -> str:
    return str(incident.project_id) if incident.project_id else incident.ref.project


def _needs_level(note: Note, cfg: Config) -> bool:
    allow_listed = note.author.lower() in {u.lower() for u in cfg.bot.allow_commands_from}
    return note.author_id is not None and not allow_listed and note.author_state not in INACTIVE_STATES


def _update_needs_level(client: GitLabClient, project: str, note: Note, observed: Observed) -> bool:
    """Only an update from someone who holds no role, not judged before in this process, costs a call."""
    holders = {h.lower() for h in observed.state.roles.values()}
    return (
        note.author_id is not None
        and note.author_state not in INACTIVE_STATES
        and note.author.lower() not in holders
        and client.judged_update(project, note.id) is None
    )


def _counts(client: GitLabClient, project: str, note: Note, observed: Observed, levels: dict[int, int]) -> bool:
    """Does this status update count: a role holder's, or a Reporter's (or above), and not a blocked user's?"""
    if note.author_state in INACTIVE_STATES:
        return False
    if note.author.lower() in {h.lower() for h in observed.state.roles.values()}:
        return True
    judged = client.judged_update(project, note.id)
    if judged is None:
        judged = note.author_id is not None and levels.get(note.author_id, 0) >= REPORTER
        client.judge_update(project, note.id, judged)
    return judged


def check_command(
    client: GitLabClient,
    cmd: commands.Command,
    incident: Issue,
    cfg: Config,
    levels: dict[int, int] | None = None,
) -> commands.Command:
    """May the author command the bot (Developer or above, or the allow-list; never a blocked or banned
    account)? Does the named user exist? ``levels`` holds access levels already read in this run."""
    author = cmd.note.author.lower()
    blocked = cmd.note.author_state in INACTIVE_STATES
    allowed = not blocked and author in {u.lower() for u in cfg.bot.allow_commands_from}
    if not allowed and not blocked and cmd.note.author_id is not None:
        level = (levels or {}).get(cmd.note.author_id)
        if level is None:
            level = client.access_level(_project_of(incident), cmd.note.author_id)
        allowed = level >= cfg.bot.min_command_access_level
    target = None
    if allowed and cmd.name == "handoff" and len(cmd.args) == 2 and cmd.args[1].startswith("@"):
        target = client.user_id(cmd.args[1][1:]) is not None
    return replace(cmd, allowed=allowed, target_exists=target)


def find_orphans(client: GitLabClient, observed: Observed, desired: Desired, cfg: Config, bot: str) -> Observed:
    """Add children that exist but are not linked (created just before a crash). One read, when needed."""
    missing = {c.channel for c in desired.children} - set(observed.children)
    if not missing or observed.orphans_searched:
        return observed
    incident = observed.incident
    since = incident.created_at - CLOCK_SLACK if incident.created_at else None
    # One missing channel (the usual case: a channel added later) narrows the search to its label.
    labels = [cfg.labels.child, *missing] if len(missing) == 1 else [cfg.labels.child]
    found = client.find_issues(incident.ref.project, labels=labels, author=bot, created_after=since)
    children = dict(observed.children)
    for issue in sorted(found, key=lambda i: i.ref.iid):
        identity = bodies.child_identity(issue.description)
        if identity is None or identity[0] != incident.id or issue.author.lower() != bot.lower():
            continue
        channel = identity[1]
        if channel in missing and channel not in children:
            children[channel] = Child(channel, issue, linked=False)
    return replace(observed, children=children, orphans_searched=True)
