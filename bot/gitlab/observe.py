"""Read one incident's state from GitLab: the issue, its links and its comments, concurrently.

Everything the bot made is recognised by author (the bot user) plus a hidden marker, so an empty
database, a restart or a second replica finds the same children and comments again. The state it
relies on is believed only when the bot signed it (``bot.core.state``); children are recognised by
link and authorship first, so an edited child marker never makes the bot open a duplicate. A child created
but not yet linked (a crash in between) is found by ``find_orphans``, a label-filtered search that
only runs when a child seems to be missing.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import replace
from datetime import timedelta

from bot.config import Config
from bot.core import bodies, commands
from bot.core import state as bot_state
from bot.core.cadence import is_status_update
from bot.core.model import Child, Desired, IncidentRef, Issue, Note, Observed
from bot.gitlab.client import INACTIVE_STATES, GitLabClient
from bot.markers import StateKey

# Clocks differ between GitLab's database and a webhook's timestamp; search a little wider.
CLOCK_SLACK = timedelta(minutes=5)


def _channel_of(child: Issue, observed: Observed, cfg: Config, bot: str, recorded: dict[int, str]) -> str | None:
    """Which channel a linked issue is the bot's child for, or None if it is somebody else's issue.

    Authorship first (only the bot's own issues count), then the bot's own status log (which child it
    opened for which channel: Reporters cannot edit the bot's comments), then the child's marker if the
    bot signed it for this incident, then the labels the bot put on it. An edited or removed marker
    (Reporters can edit a child's description) therefore never makes a child disappear.
    """
    if child.author.lower() != bot.lower():
        return None
    if child.project_id == observed.incident.project_id and child.ref.iid in recorded:
        return recorded[child.ref.iid]
    claim = bodies.child_claim(child.description, observed.key, observed.incident)
    if claim is not None:
        claimed_incident, channel, signed = claim
        if signed:
            return channel
        if claimed_incident is not None and claimed_incident != observed.incident.id:
            return None  # says it belongs to another incident, and nothing of ours says otherwise
    if cfg.labels.child in child.labels:
        channels = [c.label for c in cfg.channels if c.label in child.labels]
        if len(channels) == 1:
            return channels[0]
    return None


def observed_from(
    incident: Issue, links: list[Issue], notes: list[Note], cfg: Config, bot: str, *, key: StateKey
) -> Observed:
    mine = [n for n in notes if n.author.lower() == bot.lower() and not n.system]
    by_id = sorted(mine, key=lambda n: n.id)
    checklist = next((n for n in by_id if bodies.find_checklist_marker(n.body)), None) or next(
        (n for n in by_id if bodies.looks_like_checklist(n.body)), None
    )
    logged: set[str] = set()
    for note in mine:
        logged |= bodies.logged_keys(note.body)
    people = [n for n in notes if n.author.lower() != bot.lower() and not n.system]
    parsed = [c for n in people if (c := commands.parse(n, bot)) is not None]
    answered = max((c.note.id for c in parsed if c.key in logged), default=0)
    reading = bot_state.read(checklist, [n for n in mine if n is not checklist], key, incident, answered=answered)
    pending = [c for c in parsed if c.key not in logged and c.note.id > reading.state.handled]
    observed = Observed(
        incident=incident,
        checklist=checklist,
        checklist_ticks=bodies.ticked_items(checklist.body) if checklist else frozenset(),
        state=reading.state,
        logged=frozenset(logged),
        pending_log=(reading.report,) if reading.report else (),
        updates=tuple(n for n in people if is_status_update(n.body, cfg.status_update_points)),
        commands=tuple(pending),
        key=key,
    )
    recorded = bodies.recorded_children(observed.logged)
    children: dict[str, Child] = {}
    for linked in sorted(links, key=lambda i: i.ref.iid):
        channel = _channel_of(linked, observed, cfg, bot, recorded)
        if channel and channel not in children:
            children[channel] = Child(channel, linked, linked=True)
    return replace(observed, children=children)


def observe(
    client: GitLabClient, ref: IncidentRef, cfg: Config, bot: str, pool: Executor, *, key: StateKey
) -> Observed:
    """Three reads, run at once: the incident, its links, its comments (plus, for unanswered commands and
    for status updates not judged before, the authors' access levels, and whom a hand-off names)."""
    issue_f = pool.submit(client.get_issue, ref)
    links_f = pool.submit(client.links, ref)
    notes_f = pool.submit(client.notes, ref)
    observed = observed_from(issue_f.result(), links_f.result(), notes_f.result(), cfg, bot, key=key)
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
    recorded = bodies.recorded_children(observed.logged)
    for issue in sorted(found, key=lambda i: i.ref.iid):
        if issue.author.lower() != bot.lower():
            continue
        # Only what the bot itself says counts here: its status log, or a marker it signed for this
        # incident. An unsigned or edited marker never does (anyone with update rights can type one).
        channel = recorded.get(issue.ref.iid)
        if channel is None:
            claim = bodies.child_claim(issue.description, observed.key, incident)
            channel = claim[1] if claim is not None and claim[2] else None
        if channel in missing and channel not in children:
            children[channel] = Child(channel, issue, linked=False)
    return replace(observed, children=children, orphans_searched=True)
