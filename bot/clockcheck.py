"""The ``clocks:`` section of a policy checked beyond its schema, and the holiday calendars its clocks name
read: ``calendars/<name>.yaml`` next to the policy file, else the bundled one. One line per problem, as
``(where, what)``; ``bot.config`` turns them into its problems (this module knows nothing of it)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from bot import paths

SPANS = ("hours", "business_days", "days", "months")


def calendar_file(name: str, base_dir: Path) -> Path:
    """Where the calendar ``name`` is read from: the policy's own ``calendars/`` folder first."""
    own = base_dir / "calendars" / f"{name}.yaml"
    return own if own.is_file() else paths.bundled_calendars_dir() / f"{name}.yaml"


def read_calendar(name: str, base_dir: Path) -> tuple[Any, str, str]:
    """(the file's data, the file, why it could not be read or '')."""
    file = calendar_file(name, base_dir)
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8")), str(file), ""
    except FileNotFoundError:
        return None, str(file), f"no holiday calendar {name!r} (expected the file {file})"
    except (OSError, yaml.YAMLError) as exc:
        return None, str(file), f"cannot read the holiday calendar {file}: {exc}".splitlines()[0]


def clock_problems(clocks: Sequence[Any], where: Callable[[int], str]) -> list[tuple[str, str]]:
    """Duplicate ids, stages with no or several spans, an ``after`` naming no earlier stage, business days
    without a calendar."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, clock in enumerate(clocks):
        at_clock = where(i)
        if clock.id in seen:
            out.append((f"clocks[{i}].id", f"duplicate clock id {clock.id!r}"))
        seen.add(clock.id)
        if not clock.stages:
            out.append((f"{at_clock}.stages", "a clock needs at least one stage"))
        stage_ids: list[str] = []
        for j, stage in enumerate(clock.stages):
            at = f"{at_clock}.stages[{j}]"
            spans = [s for s in SPANS if getattr(stage, s) is not None]
            if len(spans) != 1:
                out.append((at, f"give exactly one of: {', '.join(SPANS)} (got {len(spans)})"))
            known = ["start", "fix", *stage_ids]
            if stage.after not in known:
                close = difflib.get_close_matches(stage.after, known, n=1, cutoff=0.75)
                hint = f"did you mean {close[0]!r}? " if close else ""
                out.append((f"{at}.after", f"unknown {stage.after!r} ({hint}expected start, fix or an earlier "
                            "stage's id)"))
            if stage.business_days is not None and clock.calendar is None:
                out.append((at, "business days need the clock's calendar (e.g. calendar: us-federal)"))
            if stage.id in stage_ids:
                out.append((f"{at}.id", f"duplicate stage id {stage.id!r}"))
            stage_ids.append(stage.id)
    return out
