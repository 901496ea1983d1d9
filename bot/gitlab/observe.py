"""Read one incident's state from GitLab: the issue, its links and its comments, concurrently.

Thin I/O around ``bot.core.observed``, which builds ``Observed`` from the answers and decides what is
the bot's own, which comments are commands and which status updates count. Here: the three reads, the
access levels of the authors those decisions need, and ``find_orphans``, a search of the bot's own issues that
only runs when a child seems to be missing (created but not linked: a crash in between, a link refused or
removed), in the incident's project and in the team projects configured for the missing channels.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import replace

from bot.config import Config
from bot.core import commands
from bot.core import observed as pure
from bot.core.model import Desired, IncidentRef, Issue, Note, Observed
from bot.gitlab.errors import GitLabCallError
from bot.gitlab.ports import CommandChecks, ObserveReads
from bot.text.markers import StateKey


def observe(
    client: ObserveReads, ref: IncidentRef, cfg: Config, bot: str, pool: Executor, *, key: StateKey
) -> Observed:
    """Three reads, run at once: the incident, its links, its comments (plus, for unanswered commands and
    for status updates not judged before, the authors' access levels, and whom a hand-off names)."""
    issue_f = pool.submit(client.get_issue, ref)
    links_f = pool.submit(client.links, ref)
    notes_f = pool.submit(client.notes, ref)
    observed = pure.observed_from(issue_f.result(), links_f.result(), notes_f.result(), cfg, bot, key=key)
    if not observed.commands and not observed.updates:
        return observed
    project = pure.project_of(observed.incident)
    wanted = {c.note.author_id for c in observed.commands if pure.command_verdict(c.note, cfg) is None}
    wanted |= {
        n.author_id
        for n in observed.updates
        if pure.update_needs_level(n, observed, client.judged_update(project, n.id))
    }
    ids = sorted(uid for uid in wanted if uid is not None)
    levels = dict(zip(ids, pool.map(lambda uid: client.access_level(project, uid), ids), strict=True))
    updates = tuple(n for n in observed.updates if _counts(client, project, n, observed, levels))
    checked = pool.map(lambda c: check_command(client, c, observed.incident, cfg, levels), observed.commands)
    return replace(observed, commands=tuple(checked), updates=updates)


def _counts(client: ObserveReads, project: str, note: Note, observed: Observed, levels: dict[int, int]) -> bool:
    """Does this status update count: a role holder's, or a Reporter's (or above), and not a blocked user's?
    A verdict from the author's level is remembered for the process (a note's author and time never change)."""
    settled = pure.update_verdict(note, observed)
    if settled is not None:
        return settled
    judged = client.judged_update(project, note.id)
    if judged is None:
        judged = pure.update_counts_at(note, levels)
        client.judge_update(project, note.id, judged)
    return judged


def check_command(
    client: CommandChecks,
    cmd: commands.Command,
    incident: Issue,
    cfg: Config,
    levels: dict[int, int] | None = None,
) -> commands.Command:
    """May the author command the bot (Developer or above, or the allow-list; never a blocked or banned
    account)? Does the named user exist? ``levels`` holds access levels already read in this run."""
    allowed = pure.command_verdict(cmd.note, cfg)
    if allowed is None:
        assert cmd.note.author_id is not None  # command_verdict says no without an author id
        level = (levels or {}).get(cmd.note.author_id)
        if level is None:
            level = client.access_level(pure.project_of(incident), cmd.note.author_id)
        allowed = pure.command_allowed_at(level, cfg)
    target = None
    if allowed and (name := pure.handoff_target(cmd)) is not None:
        target = client.user_id(name) is not None
    return replace(cmd, allowed=allowed, target_exists=target)


def find_orphans(client: ObserveReads, observed: Observed, desired: Desired, cfg: Config, bot: str) -> Observed:
    """Add children that exist but are not linked (created just before a crash, link refused or removed), found
    by the marker the bot signed. One read per project a missing child may be in, when one is missing."""
    search = pure.orphan_search(observed, desired, cfg)
    if search is None:
        return observed
    found = client.find_issues(observed.incident.ref.project, labels=(), author=bot, created_after=search.created_after)
    for project in search.projects:  # team projects a missing child may have been opened in
        try:
            found += client.find_issues(project, labels=(), author=bot, created_after=search.created_after)
        except GitLabCallError as exc:
            if exc.status not in (403, 404):  # the bot lost access since: nothing of its own to find there
                raise
    return pure.adopt_orphans(observed, search, found, bot)
