"""Live checks of the Slack setup against the real workspace: reads only, nothing is posted.

One line per check: the token first (``auth.test``), then each configured target — it resolves, and the
bot may post there (a member of the channel; a direct message always may). Opening a direct message
conversation (``conversations.open``) is the only call that can create anything, and it posts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from bot.chat.ports import ChatError
from bot.chat.slackapi import SlackChat


class CheckLine(NamedTuple):
    ok: bool
    line: str


def live_checks(port: SlackChat, targets: Iterable[str]) -> list[CheckLine]:
    """The token, then each distinct target in order; stops after the token line if the token fails."""
    try:
        who = port.auth_test()
    except ChatError as err:
        return [CheckLine(False, f"Slack token: {err.reason}")]
    lines = [CheckLine(True, f"Slack token: bot {who.user} ({who.user_id}) in workspace {who.team} ({who.team_id})")]
    seen: set[str] = set()
    for target in targets:
        if target in seen:
            continue
        seen.add(target)
        lines.append(_check(port, target))
    return lines


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
