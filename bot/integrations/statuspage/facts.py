"""The status page's facts for the GitLab side, from its outbox: what was posted (or refused) and when, as a
checklist row and status-log lines; and what the outbox holds for :func:`~.plan.plan_publish`. Pure.

Outbox items are keyed ``<ref>:<kind>:<digest>`` (:attr:`.plan.Action.item_key`); a sent item's ``remote`` is the
provider's incident id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.core.model import LogEntry
from bot.core.outbound import OutboundFacts, Published, Row, Slot, View
from bot.integrations.statuspage.plan import Recorded
from bot.text.escape import escape_inline

if TYPE_CHECKING:
    from bot.store.base import OutboxItem

NAME, LABEL = "status_page", "Status page"
CHANNEL = "comms-status-page"
"""The channel whose approved draft is published (its child is "Status page updates")."""
VERBS = {"create": "created", "update": "updated", "resolve": "resolved"}


@dataclass(frozen=True)
class Post:
    """One publish as the outbox holds it."""

    key: str
    kind: str
    digest: str
    state: str
    at: datetime | None
    remote: str | None = None
    reason: str | None = None

    @property
    def posted(self) -> bool:
        return self.state == "sent"


def split_key(key: str) -> tuple[str, str, str]:
    """``(ref, kind, digest)`` of an outbox key ``<ref>:<kind>:<digest>``."""
    ref, _, rest = key.partition(":")
    kind, _, digest = rest.partition(":")
    return ref, kind, digest


def posts(items: Iterable[OutboxItem]) -> tuple[Post, ...]:
    out = []
    for item in items:
        _, kind, digest = split_key(item.key)
        out.append(Post(item.key, kind, digest, item.state, item.updated_at, item.remote, item.reason))
    return tuple(out)


def recorded(items: Iterable[OutboxItem]) -> Recorded:
    """What the outbox says the provider holds: its incident id, the last digest posted, resolved or not."""
    sent = [p for p in posts(items) if p.posted]
    if not sent:
        return Recorded()
    last = max(sent, key=lambda p: p.at or datetime.min)
    remote = next((p.remote for p in reversed(sent) if p.remote), None)
    return Recorded(remote, last.digest, any(p.kind == "resolve" for p in sent))


def status_page_facts(items: Iterable[OutboxItem]) -> OutboundFacts:
    """Pure: the status page's view for the reconcile (its checklist row and status-log lines)."""
    found = posts(items)
    published = tuple(Published(NAME, LABEL, p.key, p.at, f"draft {p.digest} {VERBS.get(p.kind, 'posted')} the "
                                                           "status page incident")
                      for p in found if p.posted and p.at is not None)
    return OutboundFacts(views=(View(NAME, LABEL, found, rows, lines),), published=published)


def rows(data: Any, slot: Slot) -> Sequence[Row]:
    """One row: the last draft posted and when, else why nothing is (refused, waiting, not requested)."""
    items: tuple[Post, ...] = data or ()
    sent = [p for p in items if p.posted]
    request = slot.get("request")
    if sent:
        last = max(sent, key=lambda p: p.at or datetime.min)
        text = f"draft `{last.digest}` {VERBS.get(last.kind, 'posted')} the status page incident{_at(last.at)}"
    elif any(p.state == "refused" for p in items):
        refused = [p for p in items if p.state == "refused"][-1]
        text = f"draft `{refused.digest}` was not posted: {escape_inline(refused.reason or 'refused')}"
    elif any(p.state in ("intent", "trying") for p in items):
        text = "a publish is on its way to the status page"
    elif request:
        text = (f"draft `{_hex(request.get('digest'))}` was asked for; it goes out while it is the current "
                "approved draft")
    else:
        text = "nothing published yet: the CMOC or the SIMOC publishes an approved draft with " \
               "`@incident-bot publish status-page`"
    return [Row(NAME, text)]


def lines(data: Any, slot: Slot) -> Sequence[LogEntry]:
    """One line per post (created, updated, resolved) and per refusal, each said once."""
    out = []
    for p in data or ():
        if p.posted:
            out.append(LogEntry(f"{NAME}:{p.key}", f"Status page: draft `{p.digest}` "
                                                   f"{VERBS.get(p.kind, 'posted')} the status page incident"))
        elif p.state == "refused":
            out.append(LogEntry(f"{NAME}:refused:{p.key}", f"Status page: draft `{p.digest}` was not posted: "
                                                           f"{escape_inline(p.reason or 'refused')}"))
    return out


def _hex(value: object) -> str:
    return "".join(c for c in str(value or "") if c in "0123456789abcdef")[:8]


def _at(at: datetime | None) -> str:
    return f" at {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
