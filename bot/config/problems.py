"""Problems with the policy, one readable line each, and how schema errors become them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bot.config.basics import BotSettings, LabelSettings, Phase, SeveritySettings, Templates
from bot.config.chat import ChatRoute, ChatSettings
from bot.config.clocks import Clock, ClockStage, HolidayCalendar
from bot.config.fields import ROLE_IDS
from bot.config.people import Override, Role, Rotation, Team
from bot.config.plan import CadenceBounds, CadenceRule, Channel, Condition, Engaged, Engagement, FirstAction, OrderRule
from bot.config.policy import Config


@dataclass(frozen=True)
class Problem:
    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# The key that names an entry of each top-level list: problems say ``engagements[e-group].dri``, which a
# person finds in the file, rather than ``engagements[3].dri``.
_ENTRY_KEYS = {
    "engagements": "id",
    "first_actions": "id",
    "channels": "label",
    "phases": "label",
    "comms_order": "id",
    "clocks": "id",
}


def _entry(section: str, index: int, data: Any) -> str:
    """``section[name]`` when the entry at ``index`` has a usable name, else ``section[index]``."""
    key = _ENTRY_KEYS.get(section)
    items = data.get(section) if isinstance(data, dict) else None
    if key and isinstance(items, list) and 0 <= index < len(items) and isinstance(items[index], dict):
        name = items[index].get(key)
        same = [i for i in items if isinstance(i, dict) and i.get(key) == name]
        if isinstance(name, str) and name and len(same) == 1 and not any(c in name for c in "[]"):
            return f"{section}[{name}]"
    return f"{section}[{index}]"


def _loc(loc: Iterable[Any], data: Any = None) -> str:
    out = ""
    for n, part in enumerate(loc):
        if isinstance(part, int):
            out = _entry(out, part, data) if n == 1 else out + f"[{part}]"
        elif part in ("function-before[_label(), str]",):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}? " if close else ""


def _known_keys() -> list[str]:
    models = (
        Config,
        BotSettings,
        LabelSettings,
        SeveritySettings,
        Phase,
        Override,
        Rotation,
        Role,
        Team,
        Condition,
        FirstAction,
        Engagement,
        Engaged,
        Channel,
        CadenceBounds,
        CadenceRule,
        OrderRule,
        Templates,
        ChatSettings,
        ChatRoute,
        Clock,
        ClockStage,
        HolidayCalendar,
    )
    return sorted({(f.alias or name) for m in models for name, f in m.model_fields.items()})


def _pydantic_problems(source: str, err: ValidationError, data: Any = None) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        path = _loc(loc, data)
        if path.startswith("chat.") and path.endswith(".to") and isinstance(e.get("input"), str):
            path = path[: -len(".to")]  # a route written as a plain target
        kind = e["type"]
        if kind == "extra_forbidden":
            parent, _, key = path.rpartition(".")
            close = difflib.get_close_matches(str(key), _known_keys(), n=1)
            msg = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            path = parent
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "value_error":
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
        elif kind == "literal_error":
            msg = f"unknown key (expected one of: {e.get('ctx', {}).get('expected', '')})"
            parent, _, key = path.rpartition(".")
            msg = f"unknown role {key!r} ({_did_you_mean(key, ROLE_IDS)}expected one of: {', '.join(ROLE_IDS)})"
            path = parent
        else:
            msg = f"{e['msg'].lower()} (got {e.get('input')!r})"
        problems.append(Problem(source, path, msg))
    return problems
