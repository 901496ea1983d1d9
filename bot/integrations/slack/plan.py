"""Which Slack messages an incident calls for, from the facts the reconcile already has. Pure.

Each message is keyed ``"<incident key>|<event>|<target>|<window>"``: the same facts give the same keys on
every run and every replica, so the outbox sends each once. Confidential by default: a message names the
incident by reference and link, its severity, phase and DRI; never its title, description or update text
(the text of a status update only where the route opted in with ``forward_updates``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.config import INCIDENT_CHANNEL, ChatRoute, ChatSettings, Config
from bot.core import cadence
from bot.core.model import Desired, Issue, Note, Observed, Person
from bot.integrations.slack.ports import ChatMessage
from bot.integrations.slack.text import Mrkdwn, escape_mrkdwn, link
from bot.text.durations import duration


class Render(Protocol):
    def render(self, name: str, /, **context: Any) -> str: ...


@dataclass(frozen=True)
class _Route:
    target: str
    forward: bool


def incident_channel(chat: ChatSettings, observed: Observed) -> str | None:
    """The incident response channel: the ``channel`` command's, else the configured pattern's. A name the
    policy does not accept for incident channels (set before it was checked) counts as never given."""
    if observed.state.chat_channel and chat.may_be_incident_channel(observed.state.chat_channel):
        return observed.state.chat_channel
    if chat.incident_channel:
        return chat.incident_channel.format(iid=observed.incident.ref.iid)
    return None


CHANNEL_EVENT = "channel"
"""The event of the outbox item that creates the incident channel (not a message: the Slack worker creates the
channel and invites its people). Its text is :func:`channel_spec`'s; it is redone when the text changes."""
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")


def is_channel_key(key: str) -> bool:
    """Whether an outbox key is the incident channel's creation (not a message)."""
    parts = key.split("|")
    return len(parts) > 1 and parts[1] == CHANNEL_EVENT


def channel_spec(private: bool, invite: list[str]) -> str:
    """The creation item's text: ``private`` or ``public``, then one Slack user target per line to invite."""
    return "\n".join(["private" if private else "public", *invite])


def read_channel_spec(text: str) -> tuple[bool, list[str]]:
    """``channel_spec``'s inverse."""
    first, *invite = text.splitlines() or ["private"]
    return first != "public", [t for t in invite if t]


def _invitable(target: str) -> bool:
    """A Slack target naming one person: a user id or ``email:``."""
    return target.startswith("email:") or (target[:1] in ("U", "W") and target[1:].isalnum())


def channel_wanted(cfg: Config, desired: Desired, observed: Observed) -> ChatMessage | None:
    """The incident channel to create, when the policy asks for it (``chat.create_incident_channel``) and
    nobody named one with the ``channel`` command: named by ``chat.incident_channel``, to invite the role
    holders and the people of the engaged teams whom ``chat.people`` maps to a Slack user (nobody else)."""
    chat = cfg.chat
    if chat is None or not chat.create_incident_channel or not chat.incident_channel:
        return None
    if not desired.in_scope or desired.closed:
        return None
    named = observed.state.chat_channel
    if named and chat.may_be_incident_channel(named) and (
            observed.outbound.channel is None or named != observed.outbound.channel.name):
        return None  # a channel a person named: theirs, nothing created
    name = chat.incident_channel.format(iid=observed.incident.ref.iid)
    people = {n.lower(): t for n, t in chat.people.items()}
    handles = [p.handle for p in desired.roles.values()]
    handles += [e.dri.handle for e in desired.engagements]
    handles += [h for c in desired.children for h in (c.assignee.handle, c.assignee.assignee)]
    invite = sorted({t for h in handles if h and (t := people.get(h.lower())) and _invitable(t)})
    key = f"{observed.incident.ref.key}|{CHANNEL_EVENT}|{name}|0"
    spec = channel_spec(chat.private_incident_channel, invite)
    return ChatMessage(key, name, spec, True, observed.incident.created_at)


def engagement_of(key: str) -> str | None:
    """The engagement id of an engagement message's key (``"<incident>|engage:<id>|<target>|0"``), else None."""
    parts = key.split("|")
    if len(parts) > 1 and parts[1].startswith("engage:"):
        return parts[1].removeprefix("engage:") or None
    return None


def _resolve(route: ChatRoute | None, chat: ChatSettings, observed: Observed) -> _Route | None:
    if route is None:
        return None
    target = incident_channel(chat, observed) if route.to == INCIDENT_CHANNEL else route.to
    return _Route(target, route.forward_updates) if target else None


FORWARD_LIMIT = 30_000
"""Characters of a forwarded update's quoted text at most: Slack truncates a message's text past 40,000
characters (chat.postMessage, "Truncating content"), and the rest of the message needs room."""
_EPOCH = datetime.min.replace(tzinfo=UTC)
_HOUR = timedelta(hours=1)


def quote(body: str, limit: int = FORWARD_LIMIT) -> tuple[Mrkdwn, bool]:
    """A status update's text as an escaped mrkdwn quote of at most ``limit`` characters, and whether it was
    cut (at a line end where possible; never inside an escaped character)."""
    lines = body.strip().splitlines()
    quoted = "\n".join("> " + escape_mrkdwn(line) for line in lines)
    if len(quoted) <= limit:
        return Mrkdwn(quoted), False
    out: list[str] = []
    size = 0
    for line in lines:
        piece = "> " + escape_mrkdwn(line)
        if size + len(piece) + 1 > limit:
            room = limit - size - 3
            low, high = 0, len(line)
            while low < high:  # the longest start of the line whose escaped quote fits
                mid = (low + high + 1) // 2
                if len(escape_mrkdwn(line[:mid])) <= room:
                    low = mid
                else:
                    high = mid - 1
            if low:
                out.append("> " + escape_mrkdwn(line[:low]))
            break
        out.append(piece)
        size += len(piece) + 1
    return Mrkdwn("\n".join(out)), True


def coalesce(notes: list[Note], every: timedelta, per_person: int) -> list[tuple[Note, Note]]:
    """Status updates grouped into windows, oldest first: ``(opener, latest)`` per window. A window opens
    with an update at least ``every`` after the previous window opened and takes the later ones until then
    (its message shows the latest); one person opens at most ``per_person`` windows an hour (a later update
    of theirs outside an open window stays in GitLab only). Pure: the same notes always give the same
    windows, so each window's message key is stable."""
    windows: list[list[Note]] = []
    opened: dict[str, list[datetime]] = {}
    for note in sorted(notes, key=lambda n: (n.created_at or _EPOCH, n.id)):
        at = note.created_at or _EPOCH
        if windows and at - (windows[-1][0].created_at or _EPOCH) < every:
            windows[-1][1] = note
            continue
        mine = [t for t in opened.get(note.author.lower(), []) if at - t < _HOUR]
        if len(mine) >= per_person:
            continue
        opened[note.author.lower()] = [*mine, at]
        windows.append([note, note])
    return [(opener, latest) for opener, latest in windows]


def _every(value: timedelta | None) -> str:
    return "" if value is None else duration(value)


def _shown(issue: Issue) -> str:
    """How people know the issue: ``group/project#12`` (the key keeps the numeric project id)."""
    return f"{issue.project_path or issue.ref.project}#{issue.ref.iid}"


def _who(person: Person) -> str:
    """The DRI as the GitLab texts name it: the person (a team's assignee), with the party's name."""
    name = person.assignee or person.handle
    return f"{person.name} ({name})" if name else person.name


def _owner_route(cfg: Config, chat: ChatSettings, label: str) -> tuple[str, ChatRoute | None]:
    channel = cfg.channel(label)
    if channel is None:
        return "", None
    kind, _, name = channel.assignee.partition(":")
    if kind == "team":
        team = cfg.teams.get(name)
        return (team.name if team else name), chat.teams.get(name)
    role = cfg.roles.get(name)  # type: ignore[call-overload]
    return (role.name if role else name), chat.roles.get(name)  # type: ignore[call-overload]


def chat_messages(cfg: Config, desired: Desired, observed: Observed, render: Render) -> list[ChatMessage]:
    """Every message the incident calls for now, sent or not (the outbox knows which were sent)."""
    chat = cfg.chat
    if chat is None or not desired.in_scope:
        return []
    channel = channel_wanted(cfg, desired, observed)  # first: created before anything is posted in it
    return [*([channel] if channel else []), *_messages(cfg, chat, desired, observed, render)]


def _messages(
    cfg: Config, chat: ChatSettings, desired: Desired, observed: Observed, render: Render
) -> Iterator[ChatMessage]:
    incident = observed.incident
    key = incident.ref.key
    ref = link(incident.web_url, _shown(incident))
    common: dict[str, Any] = {"incident": ref, "severity": desired.severity.label, "phase": desired.phase_name}

    def message(event: str, target: str, window: str, template: str, summary: bool = False,
                **context: Any) -> ChatMessage:
        return ChatMessage(f"{key}|{event}|{target}|{window}", target, render.render(template, **context), summary,
                           incident.created_at)

    engaged: dict[str, bool] = {}
    """Engaged target -> whether update text may go there: only when every route reaching it opted in, so
    the answer never depends on the order of the engagements."""

    def engage(route: _Route) -> None:
        engaged[route.target] = engaged.get(route.target, True) and route.forward

    for e in desired.engagements:
        route = _resolve(chat.engagements.get(e.id), chat, observed)
        if route is None:
            continue
        engage(route)
        if not desired.closed:
            yield message(f"engage:{e.id}", route.target, "0", "engagement.j2", **common, engagement=e.name,
                          reason=e.reason, dri=_who(e.dri), cadence=_every(e.cadence))

    if not desired.closed and not desired.reminders_paused:
        people = {name.lower(): target for name, target in chat.people.items()}
        for due in cadence.overdue(desired.dues):
            dri = due.engagement.dri  # the person first (a team's assignee), then the team's handle
            target = next((people[n.lower()] for n in (dri.assignee, dri.handle) if n and n.lower() in people), None)
            if target == INCIDENT_CHANNEL:
                target = incident_channel(chat, observed)
            if target:
                yield message(f"reminder:{due.engagement.id}", target, f"{due.anchor.isoformat()}:{due.window}",
                              "reminder.j2", **common, engagement=due.engagement.name,
                              due_at=f"{due.due_at:%Y-%m-%d %H:%M}")

    children = []
    for label, child in sorted(observed.children.items()):
        team, owner = _owner_route(cfg, chat, label)
        channel = cfg.channel(label)
        title = channel.title if channel else label
        child_link = link(child.issue.web_url, _shown(child.issue))
        children.append({"channel": title, "link": child_link, "state": "done" if not child.issue.is_open else "open"})
        route = _resolve(owner, chat, observed)
        if route is None:
            continue
        engage(route)
        if not desired.closed:
            yield message(f"child:{label}", route.target, "0", "child.j2", **common, team=team, channel=title,
                          child=child_link)

    updates = [n for n in observed.updates if not n.system and n.author.lower() != cfg.bot.username.lower()
               and cadence.is_status_update(n.body, cfg.status_update_points)]
    for opener, latest in coalesce(updates, chat.update_every, chat.updates_per_person):
        pointer = link(f"{incident.web_url}#note_{latest.id}", "the update")
        quoted, cut = ("", False) if latest.internal else quote(latest.body)
        for target, forward in engaged.items():
            # One message per window and target, edited in place to the window's latest update.
            yield message(f"update:{opener.id}", target, "0", "update.j2", summary=True, **common, note=pointer,
                          author=latest.author, internal=latest.internal, text=quoted if forward else "",
                          cut=cut and forward)

    if desired.all_clear:
        for target in engaged:
            yield message("all-clear", target, "0", "all-clear.j2", **common)

    created = observed.outbound.channel
    if (created is not None and _CHANNEL_ID.fullmatch(created.id) and not desired.closed
            and incident_channel(chat, observed) == created.name):  # not when a person named another since
        # The plan: "The link to this channel should also be shared in #security-department".
        for target in dict.fromkeys(chat.summary):
            if target not in (INCIDENT_CHANNEL, created.name):
                yield message("channel-link", target, "0", "channel-link.j2", **common,
                              channel=Mrkdwn(f"<#{created.id}>"), name=created.name)

    simoc = desired.roles.get("simoc")
    for target in dict.fromkeys(chat.summary):
        where = incident_channel(chat, observed) if target == INCIDENT_CHANNEL else target
        if where:
            yield message("summary", where, "0", "summary.j2", summary=True, **common,
                          dri=simoc.handle if simoc and simoc.handle else "", children=children)
