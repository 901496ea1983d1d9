"""The policy's ``approvals:`` section: who signs off which channel's draft, how long each may take, and what
counts at the cut-off. Validated here; ``bot.config.approvalchecks`` checks what refers to the rest of the policy.

- ``groups``: approver groups as ordered chains of people (a username, ``role:…`` or ``team:…``); the first is
  the primary, the rest are backups, mentioned one per ``window`` while the group has not decided.
- ``matrix``: channel label -> group -> ``approver`` (must approve) or ``fyi`` (told once the draft is ready).
- ``window``: how long each person in a chain has before the next is mentioned (``30m``).
- ``target``: per severity, how long after the draft's first appearance the channel must be cleared
  (``critical: 6h``); 30 minutes before it the CMOC is warned, at it the ``quorum`` decides.
- ``quorum``: ``{of: [groups], at_least: N}``: at the cut-off, N of those groups approving the current draft
  clears it.
- ``ready_label``: the label put on a child whose draft is cleared (default ``comms-approved``).
- ``customer_email``: channels whose draft is checked as the customer email (plain text, no link tracking,
  security@ named).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bot.config.fields import Every, Label, SeverityName, _Model

_MEMBER = re.compile(r"^(?:(?:role|team):[a-z][a-z0-9_]*|@?[A-Za-z0-9_][A-Za-z0-9_.-]*)$")
_GROUP_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


def _member(value: Any) -> str:
    text = str(value).strip()
    if not _MEMBER.match(text):
        raise ValueError(f"invalid chain member {value!r} (expected a username, 'role:<id>' or 'team:<id>')")
    return text.lstrip("@")


def _group_id(value: Any) -> str:
    text = str(value).strip()
    if not _GROUP_ID.match(text):
        raise ValueError(f"invalid group id {value!r} (lowercase letters, digits, '-' and '_')")
    return text


def _part(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("approver", "fyi"):
        raise ValueError(f"invalid part {value!r} (expected approver or fyi)")
    return text


Member = Annotated[str, BeforeValidator(_member)]
GroupId = Annotated[str, BeforeValidator(_group_id)]
Part = Annotated[str, BeforeValidator(_part)]


class Quorum(_Model):
    of: list[GroupId] = Field(min_length=1)
    at_least: int = Field(ge=1)


class ApprovalPolicy(_Model):
    groups: dict[GroupId, list[Member]] = Field(default_factory=dict)
    matrix: dict[Label, dict[GroupId, Part]] = Field(default_factory=dict)
    window: Every = timedelta(minutes=30)
    target: dict[SeverityName, Every] = Field(default_factory=dict)
    quorum: Quorum | None = None
    ready_label: Label = "comms-approved"
    customer_email: list[Label] = Field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.matrix)

    def approvers(self, channel: str) -> list[str]:
        return [g for g, part in self.matrix.get(channel, {}).items() if part == "approver"]

    def fyi(self, channel: str) -> list[str]:
        return [g for g, part in self.matrix.get(channel, {}).items() if part == "fyi"]
