"""The checklist comment: its items, ticks, state marker and body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.config import Config
from bot.core import approvalnotes, cadence, clockbodies, commands
from bot.core import state as bot_state
from bot.core.bodies.breaches import _order_marks
from bot.core.bodies.common import (
    CHECKLIST,
    ITEM,
    Renderer,
    _incident_context,
    _render,
    _roles_context,
    at,
    dri_of,
    every,
)
from bot.core.bodies.refs import child_ref
from bot.core.model import BotState, Desired, Observed, Tick
from bot.core.outbound import Engaged
from bot.text.escape import escape_inline, is_valid_username
from bot.text.markers import marker, parse_markers
from bot.text.safe import Safe

#: The field of an item's marker saying the bot ticked the box for a ``done`` command (not a person by hand).
BY_COMMAND = "done"


def _item(key: str, by_command: bool = False) -> Safe:
    return Safe(marker(ITEM, id=key, **{BY_COMMAND: True}) if by_command else marker(ITEM, id=key))


_TICKED = re.compile(r"^\s*[-*+]\s+\[[xX]\]\s")
_UNTICKED = re.compile(r"^\s*[-*+]\s+\[ \]\s")


def _item_keys(body: str, box: re.Pattern[str], *, by_command: bool) -> frozenset[str]:
    keys = set()
    for line in body.splitlines():
        if box.match(line):
            for m in parse_markers(line):
                key = m.fields.get("id") if m.kind == ITEM else None
                if isinstance(key, str) and bool(m.fields.get(BY_COMMAND)) == by_command:
                    keys.add(key)
    return frozenset(keys)


def ticked_items(body: str) -> frozenset[str]:
    """Keys of the checklist items whose box was ticked by hand, so a re-render keeps what people ticked (a
    box the bot ticked for a ``done`` command is its state's, not a person's)."""
    return _item_keys(body, _TICKED, by_command=False)


def unticked_command_items(body: str) -> frozenset[str]:
    """Keys of the items the bot showed ticked for a ``done`` command whose box was unticked since: only
    the bot and Maintainers can edit the checklist, so a Maintainer took the tick back."""
    return _item_keys(body, _UNTICKED, by_command=True)


def _recorded(desired: Desired) -> BotState:
    """What the checklist records: ``desired.state`` with the role holders the plan resolved."""
    holders = {rid: p.handle for rid, p in desired.roles.items() if p.handle}
    return replace(desired.state, roles=holders)


def _state_marker(desired: Desired, observed: Observed) -> Safe:
    return Safe(bot_state.checklist_marker(_recorded(desired), observed.key, observed.incident))


def state_copy(desired: Desired, observed: Observed) -> str:
    """The signed copy of the state that rides along in the bot's comments (none out of scope)."""
    if not desired.in_scope:
        return ""
    return " " + bot_state.copy_marker(_recorded(desired), observed.key, observed.incident)


def _status(desired: Desired) -> dict[str, Any] | None:
    if not desired.dues and desired.last_update is None:
        return None
    last = desired.last_update
    return {
        "last": last.created_at if last else None,
        "last_by": at(last.author) if last and is_valid_username(last.author) else None,
        # After the all clear nothing is due any more: a past time shown as "next due" would mislead.
        "next_due": None if desired.all_clear else cadence.next_due(desired.dues),
        "paused": desired.reminders_paused,
    }


def _tickable(key: str, ticks: frozenset[str], done: Mapping[str, Tick], numbers: Mapping[str, int]) -> dict[str, Any]:
    """A checklist item's box: ticked by hand (``ticks``) or for a ``done`` command (who and when shown)."""
    tick = done.get(key)
    return {
        "done": key in ticks or tick is not None,
        "number": numbers.get(key, 0),
        "ticked": Safe(f"{escape_inline('@' + tick.by)} {tick.at:%Y-%m-%d %H:%M} UTC") if tick else "",
        "item": _item(key, by_command=tick is not None and key not in ticks),
    }


def _engagement_box(key: str, ticks: frozenset[str], done: Mapping[str, Tick], numbers: Mapping[str, int],
                    engaged: bool) -> dict[str, Any]:
    """An engagement's box: ticked by hand, for a ``done`` command, or because the bot engaged it itself through
    an integration (a fact of its outbox, marked as the bot's so it is never read back as a person's tick)."""
    box = _tickable(key, ticks, done, numbers)
    if engaged and not box["done"]:
        box.update(done=True, item=_item(key, by_command=True))
    return box


def _engaged(sent: Engaged | None) -> dict[str, Any] | None:
    """When, where and through which integration the bot's own message engaged a stakeholder, for its row."""
    return None if sent is None else {"at": sent.at, "target": sent.target, "via": sent.label}


def checklist_body(desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    ticks = observed.checklist_ticks
    done = desired.state.done
    numbers = {item.key: item.number for item in commands.checklist_items(cfg)}
    plans = {c.channel: c for c in desired.children}
    marks = _order_marks(desired, observed, cfg)
    channels = []
    for label, child in sorted(observed.children.items(), key=lambda kv: kv[1].iid):
        plan = plans.get(label)
        ch_cfg = cfg.channel(label)
        title = plan.title if plan else (ch_cfg.title if ch_cfg else label)
        people = [at(a) for a in child.issue.assignees if is_valid_username(a)]
        dri = Safe(", ".join(people)) if people else (dri_of(plan.assignee) if plan else Safe("unassigned"))
        channels.append(
            {
                "ref": Safe(child_ref(child.issue, observed.incident)),
                "title": title,
                "label": label,
                "dri": dri,
                "done": not child.issue.is_open,
                "state": "closed" if not child.issue.is_open else "open",
                "selected": plan is not None,
                "order": marks.get(label, []),
                "item": _item(f"channel:{label}"),
            }
        )
    # Should the checklist itself fail, ticked boxes are kept in the notice so no tick is lost.
    kept = "".join(f"- [x] {_item(key)}\n" for key in sorted(ticks))
    return _render(
        r,
        cfg.templates.checklist,
        f"checklist of {desired.ref}",
        kept,
        marker=_state_marker(desired, observed),
        incident=_incident_context(observed),
        severity=desired.severity.label,
        severity_source=desired.severity_source,
        phase=desired.phase,
        phase_name=desired.phase_name,
        flags=list(desired.flags),
        roles=_roles_context(desired),
        first_actions=[
            _tickable(f"first:{fa.id}", ticks, done, numbers) | {"text": fa.text, "dri": dri_of(fa.dri)}
            for fa in desired.first_actions
        ],
        engagements=[
            {
                "name": e.name,
                "dri": dri_of(e.dri),
                "cadence": every(e.cadence),
                "cadence_source": e.cadence_source,
                "channel": e.channel,
                "reason": e.reason,
                "engaged": _engaged(observed.outbound.engaged.get(e.id)),
            }
            | _engagement_box(f"engagement:{e.id}", ticks, done, numbers, e.id in observed.outbound.engaged)
            for e in desired.engagements
        ],
        outbound=[
            {"label": label, "rows": [Safe(row.text) for row in rows]}
            for label, rows in observed.outbound.rows(desired.state.slots)
        ],
        channels=channels,
        proposed=[
            {"title": p.title, "label": p.channel, "short": p.short, "reason": p.reason}
            for p in desired.proposals
            if p.channel not in observed.children
        ],
        status=_status(desired),
        bot=cfg.bot.username,
        **_clock_context(desired, cfg),
        approvals=approvalnotes.rows(desired, observed),
    )


def _clock_context(desired: Desired, cfg: Config) -> dict[str, Any]:
    return {"clocks": clockbodies.rows(desired), "clock_offers": clockbodies.offers(desired, cfg)}


def find_checklist_marker(body: str) -> bool:
    return any(m.kind == CHECKLIST for m in parse_markers(body))


def looks_like_checklist(body: str) -> bool:
    """The checklist, even if its state marker was edited away: it is the bot's only comment with items."""
    return any(m.kind in (CHECKLIST, ITEM) for m in parse_markers(body))
