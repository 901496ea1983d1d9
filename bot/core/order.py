"""Comms in the plan's order: which children were closed (their comms sent) before the ones that should
have gone first. Pure; the rules are data (``comms_order`` in the config).

A rule says: ``channel``'s child is closed before each child of ``before``. It is broken for a later
child that is closed while the first child is still open (or not opened yet), or was closed after it.
Only channels selected on the incident count: a rule whose first channel is not selected never fires.
Everything here is read from the children already observed: checking the order costs no GitLab call.

Each broken rule has a key, ``order:RULE:CHANNEL:IID``, with no time in it: the bot says so once, on the
incident and on the child, even if the child is reopened and closed again.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config, OrderRule
from bot.core.model import Child, Desired, Observed


@dataclass(frozen=True)
class Breach:
    """``later`` was closed before ``first_channel``'s child, against ``rule``."""

    rule: OrderRule
    later: Child
    first_channel: str
    first: Child | None  # None: not opened yet

    @property
    def key(self) -> str:
        return f"order:{self.rule.id}:{self.later.channel}:{self.later.iid}"

    @property
    def first_still_open(self) -> bool:
        return self.first is None or self.first.issue.is_open


def _closed_first(first: Child | None, later: Child) -> bool:
    """Whether ``first`` was closed no later than ``later`` (unknown times count as in order)."""
    if first is None or first.issue.is_open:
        return False
    a, b = first.issue.closed_at, later.issue.closed_at
    return a is None or b is None or a <= b


def breaches(desired: Desired, observed: Observed, cfg: Config) -> list[Breach]:
    """Every rule broken by the children as GitLab shows them now, in the config's order."""
    selected = {c.channel for c in desired.children}
    out = []
    for rule in cfg.comms_order:
        if rule.channel not in selected:
            continue
        first = observed.children.get(rule.channel)
        for label in rule.before:
            later = observed.children.get(label)
            if later is None or later.issue.is_open or _closed_first(first, later):
                continue
            out.append(Breach(rule, later, rule.channel, first))
    return out


def kept(desired: Desired, observed: Observed, cfg: Config) -> bool:
    return not breaches(desired, observed, cfg)
