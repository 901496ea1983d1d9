"""Live checks of the Slack setup against the real workspace: reads only, nothing is posted.

One line per check: the token first (``auth.test``), then each configured target — it resolves, and the
bot may post there (a member of the channel; a direct message always may). Opening a direct message
conversation (``conversations.open``) is the only call that can create anything, and it posts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from bot.integrations.slack.ports import ChatError
from bot.integrations.slack.slackapi import SlackChat


class CheckLine(NamedTuple):
    ok: bool
    line: str


def live_checks(port: SlackChat, targets: Iterable[str], *, create_channels: bool | None = None) -> list[CheckLine]:
    """The token, then (``create_channels``: True for private incident channels, False for public ones) the
    scope creating them needs, then each distinct target in order; stops after the token line if it fails."""
    try:
        who = port.auth_test()
    except ChatError as err:
        return [CheckLine(False, f"Slack token: {err.reason}")]
    lines = [CheckLine(True, f"Slack token: bot {who.user} ({who.user_id}) in workspace {who.team} ({who.team_id})")]
    if create_channels is not None:
        lines.append(_creating(who.scopes, private=create_channels))
    seen: set[str] = set()
    for target in targets:
        if target in seen:
            continue
        seen.add(target)
        lines.append(_check(port, target))
    return lines


def _creating(scopes: frozenset[str] | None, *, private: bool) -> CheckLine:
    """Whether the token may create incident channels (conversations.create: ``groups:write`` for a private
    channel, ``channels:manage`` for a public one) and invite people to them (the same scope)."""
    scope = "groups:write" if private else "channels:manage"
    kind = "private" if private else "public"
    if scopes is None:
        return CheckLine(True, f"Slack incident channels: Slack did not list the token's scopes; creating {kind} "
                               f"channels needs {scope}")
    if scope in scopes:
        return CheckLine(True, f"Slack incident channels: the token has {scope}, the bot can create {kind} channels")
    return CheckLine(False, f"Slack incident channels: the token lacks {scope}: add it to the Slack app and "
                            "reinstall it, or set chat.create_incident_channel: false")


def _check(port: SlackChat, target: str) -> CheckLine:
    try:
        channel = port.resolve(target)
        if channel.startswith("D"):
            return CheckLine(True, f"Slack {target}: direct message {channel}, can post")
        if not port.is_member(channel):
            return CheckLine(False, f"Slack {target}: channel {channel} found but the bot is not a member: "
                                    f"invite it with /invite @<bot name> in {target}")
    except ChatError as err:
        return CheckLine(False, f"Slack {target}: {err.reason}")
    return CheckLine(True, f"Slack {target}: channel {channel}, bot is a member, can post")
