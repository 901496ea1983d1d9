"""Which deliveries lead to work: the incident they concern, or a reason to ignore them."""

from __future__ import annotations

import re

from bot.config import Config
from bot.core.events import Event, Ignored, IssueEvent, NoteEvent
from bot.core.model import IncidentRef, Issue
from bot.core.scope import is_bot_child


def is_incident(issue: Issue, cfg: Config) -> bool:
    """Labelled as an incident, and not one of the bot's own children (whatever labels a child carries)."""
    return cfg.labels.trigger in issue.labels and not is_bot_child(issue, cfg.bot.username)


def addresses_bot(body: str, cfg: Config) -> bool:
    """True when a line of the note starts by addressing the bot (``@incident-bot ...``)."""
    # [ \t]* rather than \s*: with MULTILINE, \s* would rescan runs of blank lines from every line start,
    # which is quadratic in a comment of many newlines (and this runs on the request path).
    pattern = re.compile(rf"^[ \t]*@{re.escape(cfg.bot.username)}(?![\w.-])", re.MULTILINE | re.IGNORECASE)
    return bool(pattern.search(body))


def shown_ref(event: Event, ref: IncidentRef) -> str:
    """``group/project#12`` for an incident the event names by project id, as logs and people name it; the
    key itself when the payload carries no path."""
    issue = event.issue if isinstance(event, IssueEvent | NoteEvent) else None
    if issue is not None and issue.project_path and issue.ref == ref:
        return f"{issue.project_path}#{ref.iid}"
    return ref.key


def route(event: Event, cfg: Config) -> IncidentRef | Ignored:
    """The incident to look at again for this event, or why the event needs no work."""
    if isinstance(event, Ignored):
        return event
    if isinstance(event, IssueEvent):
        if event.actor and event.actor.lower() == cfg.bot.username.lower():
            return Ignored("event caused by the bot itself")
        if is_incident(event.issue, cfg):
            return event.issue.ref
        if cfg.labels.trigger in event.labels_removed:
            return Ignored(f"the `{cfg.labels.trigger}` label was removed; the bot stops here and deletes nothing")
        return Ignored(f"issue {event.issue.ref} is not an incident (no `{cfg.labels.trigger}` label)")
    assert isinstance(event, NoteEvent)
    if event.author.lower() == cfg.bot.username.lower():
        return Ignored("note written by the bot itself")
    if event.system:
        return Ignored("system note")
    if (event.issue and is_incident(event.issue, cfg)) or addresses_bot(event.body, cfg):
        return event.ref
    return Ignored(f"note on issue {event.ref}, which is not an incident, and not addressed to the bot")
