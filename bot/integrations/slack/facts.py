"""Slack's facts for the GitLab side, from its outbox: targets that refused, engagements sent, the incident
channel created. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from bot.core.outbound import CreatedChannel, Engaged, OutboundFacts, Refused
from bot.integrations.slack.plan import engagement_of, is_channel_key

if TYPE_CHECKING:
    from bot.store.base import OutboxItem

NAME, LABEL = "slack", "Slack"


def slack_facts(refused: Mapping[str, str], items: Iterable[OutboxItem]) -> OutboundFacts:
    """Pure: the outbox's facts for the GitLab side, from the refused targets and the incident's outbox items."""
    items = list(items)
    return OutboundFacts(
        refused=tuple(Refused(NAME, LABEL, target, reason) for target, reason in refused.items()),
        engaged=engagements_sent(items),
        channel=channel_created(items),
    )


def engagements_sent(items: Iterable[OutboxItem]) -> dict[str, Engaged]:
    """Engagement id -> when and to which target its Slack message was first sent, from the outbox."""
    engaged: dict[str, Engaged] = {}
    for item in items:
        eid = engagement_of(item.key)
        if eid is None or item.state != "sent" or item.updated_at is None:
            continue
        if eid not in engaged or item.updated_at < engaged[eid].at:
            engaged[eid] = Engaged(item.updated_at, item.target, LABEL)
    return engaged


def channel_created(items: Iterable[OutboxItem]) -> CreatedChannel | None:
    """The incident channel the bot created (or adopted as its own) in Slack, from the outbox."""
    for item in items:
        channel = channel_of(item)
        if is_channel_key(item.key) and item.sent and channel and item.updated_at is not None:
            return CreatedChannel(NAME, LABEL, item.target, channel, item.updated_at)
    return None


def channel_of(item: OutboxItem) -> str | None:
    """The Slack channel id an outbox item was sent to (or the incident channel's own id), None until sent."""
    return item.remote.partition(" ")[0] if item.remote else None


def ts_of(item: OutboxItem) -> str | None:
    """The Slack timestamp of a sent message (what ``chat.update`` edits), None until sent."""
    return item.remote.partition(" ")[2] if item.remote else None
