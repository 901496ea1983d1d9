"""What of a team's issue template the bot applies to a child itself, through the API, and what it drops. Pure.

GitLab would run a template's quick actions as the bot user when the bot opens the child: labels that make the
child an incident, ``/assign me`` assigning the bot instead of the DRI, ``/relate`` or ``/copy_metadata`` with
the bot's reach into confidential incidents. So no quick action is ever sent (``bot.text.quickactions``
neutralises them), and of what the team asked for, only a small allow-list that cannot widen the bot's reach is
applied: labels that are not the bot's own (trigger, child, channel, severity, phase, impact flags, or a label in
one of their scopes); more assignees (the channel's DRI always stays; each must be able to read the confidential
child already, which ``bot.gitlab.targets`` checks); a milestone, a due date, a weight. Everything else is
dropped, and the child's status-log line says which template lines were dropped and why.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from bot.config import Config
from bot.core.model import Dropped, TemplateIntent
from bot.text.escape import code_span, escape_inline
from bot.text.quickactions import QuickAction

_LABEL_ARG = re.compile(r'~"([^"]+)"|~([^\s~,"]+)|([^\s~,"]+)')
_MILESTONE_ARG = re.compile(r'%"([^"]+)"|%(\S+)')
_RELATIVE = re.compile(r"in\s+(\d{1,3})\s+(day|week)s?", re.I)

_INCIDENT = "only the plan decides what is an incident, and who is paged"
_OTHER_ISSUES = "it would act on other issues with the bot's access"
_UNDO = "it would undo what the bot set on the child"
_STATE = "the child's state is the team's to change, by hand"
_REASONS: dict[str, str] = {
    **dict.fromkeys(("severity", "type", "promote_to_incident", "promote", "promote_to", "escalate", "page",
                     "timeline", "publish"), _INCIDENT),
    **dict.fromkeys(("relate", "unrelate", "link", "unlink", "copy_metadata", "clone", "move", "duplicate",
                     "blocks", "blocked_by", "epic", "remove_epic", "parent", "parent_epic", "set_parent",
                     "remove_parent", "remove_parent_epic", "add_child", "remove_child", "child_epic",
                     "remove_child_epic", "board_move", "create_merge_request"), _OTHER_ISSUES),
    **dict.fromkeys(("unlabel", "remove_label", "relabel", "unassign", "reassign", "remove_milestone",
                     "remove_due_date", "clear_weight", "title"), _UNDO),
    **dict.fromkeys(("close", "reopen", "lock", "unlock", "done", "todo", "subscribe", "unsubscribe"), _STATE),
    "cc": "the bot mentions nobody on a team's behalf",
    "confidential": "the child is always confidential",
    "invite_email": "the bot invites nobody on a team's behalf",
    "add_email": "the bot invites nobody on a team's behalf",
}
#: Each assignee a template names costs two look-ups when a child is opened; more than this are dropped.
MAX_ASSIGNEES = 10

_DEFAULT = "the bot applies only labels, assignees, a milestone, a due date and a weight from a team's template"


def bot_labels(cfg: Config) -> set[str]:
    """The labels that mean something to the bot (lower case)."""
    names = {cfg.labels.trigger, cfg.labels.child, *cfg.severity.labels, *cfg.impact_flags}
    names |= {p.label for p in cfg.phases} | {c.label for c in cfg.channels}
    return {n.lower() for n in names}


def _scope(label: str) -> str | None:
    return label.rsplit("::", 1)[0].lower() if "::" in label else None


def label_problem(label: str, cfg: Config) -> str | None:
    """Why a team's template may not put ``label`` on a child, or None when it may."""
    own = bot_labels(cfg)
    if label.lower() in own:
        return f"~{label} is one of the bot's labels"
    scope = _scope(label)
    if scope is not None and scope in {_scope(n) for n in own}:
        return f"~{label} is in the scope of the bot's labels"
    return None


def parse_due(arg: str, today: date) -> date | None:
    """A due date as GitLab's ``/due`` reads the common forms: ``YYYY-MM-DD``, ``today``, ``tomorrow``,
    ``in N days`` or ``in N weeks``. None for anything else."""
    text = arg.strip().lower()
    if text == "today":
        return today
    if text == "tomorrow":
        return today + timedelta(days=1)
    relative = _RELATIVE.fullmatch(text)
    if relative:
        n = int(relative.group(1))
        return today + timedelta(days=n if relative.group(2).lower() == "day" else 7 * n)
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def template_intent(actions: list[QuickAction], cfg: Config, bot: str, today: date) -> TemplateIntent:
    """The allow-listed part of a template's quick actions, and each line dropped with the reason.

    Assignees and the milestone are named here and checked against GitLab by ``bot.gitlab.targets``."""
    labels: list[str] = []
    assignees: list[str] = []
    milestone: str | None = None
    due: date | None = None
    weight: int | None = None
    dropped: list[Dropped] = []

    def drop(action: QuickAction, why: str) -> None:
        dropped.append(Dropped(action.text.strip(), why))

    for action in actions:
        name = {"labels": "label"}.get(action.name, action.name)
        if name == "label":
            names = [next(g for g in m.groups() if g) for m in _LABEL_ARG.finditer(action.arg)]
            refused = [(n, why) for n in names if (why := label_problem(n, cfg))]
            labels += [n for n in names if not label_problem(n, cfg) and n not in labels]
            if not names:
                drop(action, "it names no label")
            elif refused:
                drop(action, "; ".join(why for _, why in refused))
        elif name == "assign":
            tokens = [t for t in re.split(r"[\s,]+", action.arg) if t]
            refused_users = []
            for token in tokens:
                user = token.removeprefix("@")
                if user.lower() == "me":
                    refused_users.append("`me` would be the bot")
                elif user.lower() == bot.lower():
                    refused_users.append(f"@{user} is the bot")
                elif user.lower() in {a.lower() for a in assignees}:
                    continue
                elif len(assignees) >= MAX_ASSIGNEES:
                    refused_users.append(f"@{user}: the bot assigns at most {MAX_ASSIGNEES} people from a template")
                else:
                    assignees.append(user)
            if not tokens:
                drop(action, "it names nobody")
            elif refused_users:
                drop(action, "; ".join(refused_users))
        elif name == "milestone":
            found = _MILESTONE_ARG.fullmatch(action.arg.strip())
            if found:
                milestone = found.group(1) or found.group(2)
            else:
                drop(action, "it names no milestone (%title)")
        elif name == "due":
            parsed = parse_due(action.arg, today)
            if parsed is None:
                drop(action, "the bot reads a due date as YYYY-MM-DD, today, tomorrow, or in N days or weeks")
            else:
                due = parsed
        elif name == "weight":
            if action.arg.isdigit() and len(action.arg) <= 6:
                weight = int(action.arg)
            else:
                drop(action, "a weight is a whole number")
        else:
            drop(action, _REASONS.get(name, _DEFAULT))
    return TemplateIntent(
        labels=tuple(labels),
        assignees=tuple(assignees),
        milestone=milestone,
        due_date=due.isoformat() if due else None,
        weight=weight,
        dropped=tuple(dropped),
    )


def describe(intent: TemplateIntent, assigned: tuple[str, ...] | None = None, *, limit: int = 10) -> str:
    """Safe markdown for the child's status-log line: what of the team's template was applied and which of its
    lines were dropped, and why. ``assigned``: the child's assignees as GitLab answered (Free keeps one).
    Empty when the template had no quick action."""
    kept = {a.lower() for a in assigned} if assigned is not None else {a.lower() for a in intent.assignees}
    applied = [escape_inline(f"~{n}") for n in intent.labels]
    applied += [escape_inline(f"@{u}") for u in intent.assignees if u.lower() in kept]
    lost = [u for u in intent.assignees if u.lower() not in kept]
    if lost:
        extra = Dropped("/assign " + " ".join(f"@{u}" for u in lost), "GitLab kept only the DRI (one assignee here)")
        intent = replace(intent, dropped=(*intent.dropped, extra))
    if intent.milestone_id is not None and intent.milestone:
        applied.append(f"milestone {escape_inline(intent.milestone)}")
    if intent.due_date:
        applied.append(f"due {escape_inline(intent.due_date)}")
    if intent.weight is not None:
        applied.append(f"weight {intent.weight}")
    parts = []
    if applied:
        parts.append("applied from the team's template: " + ", ".join(applied))
    if intent.dropped:
        shown = [f"{code_span(d.line, max_len=200)} ({escape_inline(d.why)})" for d in intent.dropped[:limit]]
        more = f" and {len(intent.dropped) - limit} more" if len(intent.dropped) > limit else ""
        parts.append("template lines not applied (no quick action runs as the bot): " + "; ".join(shown) + more)
    return "; ".join(parts)
