"""The ``clocks:`` section of a policy checked beyond its schema, and the holiday calendars its clocks name
loaded: ``calendars/<name>.yaml`` next to the policy file, else the bundled one. One line per problem."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from bot import paths

if TYPE_CHECKING:
    from bot.config import Config, HolidayCalendar, Problem

_SPANS = ("hours", "business_days", "days", "months")


def _where(cfg: Config, i: int) -> str:
    from bot.config import _entry

    return _entry("clocks", i, {"clocks": [c.model_dump() for c in cfg.clocks]})


def calendar_file(name: str, base_dir: Path) -> Path:
    """Where the calendar ``name`` is read from: the policy's own ``calendars/`` folder first."""
    own = base_dir / "calendars" / f"{name}.yaml"
    return own if own.is_file() else paths.bundled_calendars_dir() / f"{name}.yaml"


def _read(name: str, base_dir: Path, src: str, where: str) -> tuple[HolidayCalendar | None, Problem | None]:
    from bot.config import HolidayCalendar, Problem

    file = calendar_file(name, base_dir)
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, Problem(src, where, f"no holiday calendar {name!r} (expected the file {file})")
    except (OSError, yaml.YAMLError) as exc:
        return None, Problem(src, where, f"cannot read the holiday calendar {file}: {exc}".splitlines()[0])
    try:
        return HolidayCalendar.model_validate(data), None
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return None, Problem(src, where, f"holiday calendar {file}: {loc}: {first['msg'].lower()}")


def load_calendars(cfg: Config, base_dir: Path) -> tuple[dict[str, HolidayCalendar], list[Problem]]:
    """The calendars the clocks name, and every problem of the ``clocks`` section."""
    from bot.config import Problem, _did_you_mean

    src = cfg.source
    out: list[Problem] = []
    calendars: dict[str, HolidayCalendar] = {}
    seen: set[str] = set()
    for i, clock in enumerate(cfg.clocks):
        where = _where(cfg, i)
        if clock.id in seen:
            out.append(Problem(src, f"clocks[{i}].id", f"duplicate clock id {clock.id!r}"))
        seen.add(clock.id)
        if not clock.stages:
            out.append(Problem(src, f"{where}.stages", "a clock needs at least one stage"))
        stage_ids: list[str] = []
        for j, stage in enumerate(clock.stages):
            at = f"{where}.stages[{j}]"
            spans = [s for s in _SPANS if getattr(stage, s) is not None]
            if len(spans) != 1:
                out.append(Problem(src, at, f"give exactly one of: {', '.join(_SPANS)} (got {len(spans)})"))
            if stage.after not in ("start", "fix", *stage_ids):
                known = ["start", "fix", *stage_ids]
                hint = _did_you_mean(stage.after, known)
                out.append(Problem(src, f"{at}.after", f"unknown {stage.after!r} ({hint}expected start, fix or an "
                                   "earlier stage's id)"))
            if stage.business_days is not None and clock.calendar is None:
                out.append(Problem(src, at, "business days need the clock's calendar (e.g. calendar: us-federal)"))
            if stage.id in stage_ids:
                out.append(Problem(src, f"{at}.id", f"duplicate stage id {stage.id!r}"))
            stage_ids.append(stage.id)
        if clock.calendar is not None and clock.calendar not in calendars:
            calendar, problem = _read(clock.calendar, base_dir, src, f"{where}.calendar")
            if calendar is not None:
                calendars[clock.calendar] = calendar
            if problem is not None:
                out.append(problem)
    return calendars, out
