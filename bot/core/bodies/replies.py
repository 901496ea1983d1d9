"""Replies to commands, and the status update template the ``status`` command returns."""

from __future__ import annotations

from typing import Any

from bot.config import Config
from bot.core import approvalnotes, commands
from bot.core.bodies.breaches import _order_marks
from bot.core.bodies.checklist import state_copy
from bot.core.bodies.common import LOG, Renderer, _incident_context, _log, _render, at
from bot.core.bodies.notes import _child_rows
from bot.core.bodies.refs import _ref_text
from bot.core.model import Desired, Observed
from bot.text.escape import code_span, escape_fragment, escape_inline, is_valid_username
from bot.text.markers import marker, strip_markers
from bot.text.safe import Safe


def status_update_body(desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    """The six points, with what the bot knows already filled in: timeline and the children's states."""
    inc = observed.incident
    events: list[tuple[Any, str]] = []
    if inc.created_at:
        events.append((inc.created_at, "incident declared"))
    if observed.checklist and observed.checklist.created_at:
        events.append((observed.checklist.created_at, "communications plan engaged"))
    for child in observed.children.values():
        if child.issue.created_at:
            events.append((child.issue.created_at, f"{_ref_text(child.issue, inc)} opened ({child.channel})"))
        if child.issue.closed_at and not child.issue.is_open:
            events.append((child.issue.closed_at, f"{_ref_text(child.issue, inc)} closed ({child.channel})"))
    for note in observed.updates:
        if note.created_at:
            events.append((note.created_at, f"status update by {note.author}"))
    points = cfg.status_update_points
    marks = _order_marks(desired, observed, cfg)
    return _render(
        r,
        cfg.templates.status_update,
        "status update template",
        marker=Safe(marker(LOG, keys=[])),
        incident=_incident_context(observed),
        points=list(points),
        timeline_point=points[2] if len(points) > 2 else "",
        status_point=points[4] if len(points) > 4 else "",
        timeline=[{"at": at, "text": text} for at, text in sorted(events, key=lambda e: e[0])],
        severity=desired.severity.label,
        phase_name=desired.phase_name,
        channels=[
            {**row, "order": marks.get(row["channel"], [])}
            for row in _child_rows(list(observed.children.values()), desired, cfg, observed.incident)
        ],
        order_rules=bool(cfg.comms_order),
        order_kept=not any(marks.values()),
    )


def reply_body(verdict: Any, desired: Desired, observed: Observed, cfg: Config, r: Renderer) -> str:
    cmd = verdict.command
    author = at(cmd.note.author) if is_valid_username(cmd.note.author) else escape_inline(cmd.note.author)
    status = status_update_body(desired, observed, cfg, r) if verdict.ok and verdict.reply == "status" else ""
    text = verdict.reply
    if isinstance(text, commands.Reply):
        text = Safe("".join(escape_fragment(p) if isinstance(p, str) else code_span(p.text) for p in text.parts))
    return _render(
        r,
        cfg.templates.reply,
        f"reply to comment {cmd.note.id} on {desired.ref}",
        marker=Safe(_log(observed, [cmd.key]) + state_copy(desired, observed)),
        author=author,
        command=" ".join((cmd.name, *cmd.args)),
        ok=verdict.ok,
        kind=verdict.reply if verdict.reply in ("help", "status") else "text",
        text=text,
        status=Safe(strip_markers(status)) if status else "",
        bot=cfg.bot.username,
        roles=list(cfg.roles),
        role_choices="|".join(cfg.roles),
        engagements=[e.id for e in cfg.engagements if e.cadence is not None],
        channel_example=commands.short_name(cfg.channels[0].label, cfg) if cfg.channels else "email",
        clocks=[c.id for c in cfg.clocks if c.enabled],
        integration_commands=[{"usage": c.usage, "help": c.help} for c in observed.outbound.commands],
        approvals=approvalnotes.rows(desired, observed) if verdict.ok and verdict.reply == "status" else [],
        signoff=cfg.approvals.enabled,
    )

