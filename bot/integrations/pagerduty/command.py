"""``@incident-bot page TARGET [reason]``: page a paging target on this incident by hand. Pure.

The request (target, reason, generation = the command note's id, by, at) is kept in PagerDuty's slot of the
signed state (``{"requests": [...]}``); the plan reads it back as a :class:`~bot.integrations.pagerduty.plan.
PageRequest`. A target that is unknown or off is refused with the list of targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.core.outbound import CommandSpec, Judged, Said, Slot
from bot.integrations.pagerduty.facts import NAME
from bot.integrations.pagerduty.plan import PageRequest

USAGE = "page TARGET [reason]"
HELP = "page a paging target's on-call person through PagerDuty (the reason goes with the page)"
MAX_REQUESTS = 50


def listing(names: Mapping[str, str], on: frozenset[str]) -> str:
    if not names:
        return "no paging target is configured"
    return "the paging targets: " + ", ".join(
        f"{tid} ({name}{'' if tid in on else ', off'})" for tid, name in names.items())


def page_command(names: Mapping[str, str], on: frozenset[str]) -> CommandSpec:
    """The ``page`` command for these targets (id -> name) of which ``on`` have a routing key."""

    def judge(said: Said, slot: Slot) -> Judged:
        if not said.args:
            return Judged(False, f"refused: usage: {USAGE}; {listing(names, on)}")
        target = said.args[0].lower()
        if target not in names:
            return Judged(False, f"refused: {said.args[0]} is not a paging target; {listing(names, on)}")
        if target not in on:
            return Judged(False, f"refused: paging target {target} is off (its routing key is not set); "
                                 f"{listing(names, on)}")
        requests = list(slot.get("requests", []))
        if any(r.get("generation") == said.note for r in requests):
            return Judged(True, f"paging {names[target]}")
        if len(requests) >= MAX_REQUESTS:
            return Judged(False, f"refused: this incident has {MAX_REQUESTS} pages by hand already")
        reason = " ".join(said.args[1:])[:500]
        at = said.at.isoformat() if said.at else ""
        requests.append({"target": target, "reason": reason, "generation": said.note, "by": said.author, "at": at})
        return Judged(True, f"paging {names[target]}", {**slot, "requests": requests})

    return CommandSpec(NAME, "page", USAGE, HELP, judge)


UNCONFIGURED = page_command({}, frozenset())
"""The command where no paging target is known (a process without the policy's section): always refused."""


def requests_of(slot: Slot) -> tuple[PageRequest, ...]:
    """The slot's requests, skipping any that is not well formed."""
    out = []
    for raw in slot.get("requests", []) if isinstance(slot.get("requests"), list) else []:
        try:
            out.append(PageRequest(str(raw["target"]), str(raw.get("reason", "")), int(raw["generation"]),
                                   str(raw.get("by", "")), _time(raw.get("at"))))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


def _time(raw: Any) -> datetime:
    from datetime import UTC

    try:
        return datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        return datetime.fromtimestamp(0, UTC)
