"""Cross-reference checks the schema cannot express (unknown roles, teams, labels; scoped-label clashes)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from bot import clockcheck
from bot.config.clocks import HolidayCalendar
from bot.config.fields import ROLE_IDS
from bot.config.plan import Condition
from bot.config.policy import Config
from bot.config.problems import Problem, _did_you_mean, _entry


def scope_conflicts(scope: Iterable[str], cfg: Config) -> list[tuple[str, str]]:
    """Channels whose team project is also named as a project of the incident scope: (where, why) each.
    A team project never holds incidents, so naming it in both is a contradiction."""
    named = {s.lower() for s in scope}
    return [
        (
            f"channels[{ch.label}].project",
            f"project {ch.project!r} is also named in the incident scope: a team project never holds incidents; "
            "remove it from the scope, or point the channel at another project",
        )
        for ch in cfg.channels
        if ch.project and ch.project.lower() in named
    ]


def _scope_key(label: str) -> str | None:
    """GitLab's scope key: everything before the last ``::`` (nested scopes are greedy)."""
    return label.rsplit("::", 1)[0] if "::" in label else None


def semantic_problems(cfg: Config) -> list[Problem]:
    """Cross-references the schema cannot express: unknown roles, teams, labels; scoped-label clashes."""
    src = cfg.source
    out: list[Problem] = []
    teams = set(cfg.teams)
    phase_labels = [p.label for p in cfg.phases]
    flags = set(cfg.impact_flags)

    def check_party(path: str, party: str) -> None:
        kind, _, name = party.partition(":")
        if kind == "role" and name not in ROLE_IDS:
            hint = _did_you_mean(name, ROLE_IDS)
            out.append(Problem(src, path, f"unknown role {name!r} ({hint}expected one of: {', '.join(ROLE_IDS)})"))
        if kind == "team" and name not in teams:
            hint = _did_you_mean(name, teams)
            out.append(
                Problem(src, path, f"unknown team {name!r} ({hint}expected one of: {', '.join(sorted(teams))})")
            )

    def check_condition(path: str, cond: Condition) -> None:
        for key in ("any_flags", "all_flags"):
            for i, flag in enumerate(getattr(cond, key) or []):
                if flag not in flags:
                    hint = _did_you_mean(flag, flags)
                    out.append(
                        Problem(
                            src,
                            f"{path}.{key}[{i}]",
                            f"unknown impact flag {flag!r} ({hint}or declare it in impact_flags)"
                            if hint
                            else f"unknown impact flag {flag!r} (declare it in impact_flags)",
                        )
                    )
        if cond.phase_at_least is not None and cond.phase_at_least not in phase_labels:
            hint = _did_you_mean(cond.phase_at_least, phase_labels)
            out.append(
                Problem(
                    src,
                    f"{path}.phase_at_least",
                    f"unknown phase {cond.phase_at_least!r} ({hint}expected one of: {', '.join(phase_labels)})",
                )
            )
        for i, sub in enumerate(cond.any or []):
            check_condition(f"{path}.any[{i}]", sub)

    for role_id in ROLE_IDS:
        if role_id not in cfg.roles:
            out.append(Problem(src, "roles", f"role {role_id!r} is missing"))
    for role_id, role in cfg.roles.items():
        if role.rotation and not role.roster:
            out.append(Problem(src, f"roles.{role_id}.rotation", "a rotation needs a non-empty roster"))
    raw = {
        "first_actions": [a.model_dump() for a in cfg.first_actions],
        "engagements": [e.model_dump() for e in cfg.engagements],
        "channels": [c.model_dump() for c in cfg.channels],
    }

    def entry(section: str, i: int) -> str:
        return _entry(section, i, raw)

    for i, fa in enumerate(cfg.first_actions):
        check_party(f"{entry('first_actions', i)}.dri", fa.dri)

    def check_unique(section: str, key: str, values: list[str], what: str) -> None:
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                out.append(Problem(src, f"{section}[{i}].{key}", f"duplicate {what} {value!r}"))
            seen.add(value)

    check_unique("engagements", "id", [e.id for e in cfg.engagements], "engagement id")
    check_unique("channels", "label", [c.label for c in cfg.channels], "channel label")
    for i, eng in enumerate(cfg.engagements):
        check_party(f"{entry('engagements', i)}.dri", eng.dri)
        check_condition(f"{entry('engagements', i)}.when", eng.when)
    for i, eng in enumerate(cfg.engagements):
        if eng.escalate_to and ":" in eng.escalate_to:
            check_party(f"{entry('engagements', i)}.escalate_to", eng.escalate_to)
    for role_id, role in cfg.roles.items():
        if role.escalate_to and ":" in role.escalate_to:
            check_party(f"roles.{role_id}.escalate_to", role.escalate_to)
    for team_id, team in cfg.teams.items():
        if team.escalate_to and ":" in team.escalate_to:
            check_party(f"teams.{team_id}.escalate_to", team.escalate_to)
    for i, ch in enumerate(cfg.channels):
        check_party(f"{entry('channels', i)}.assignee", ch.assignee)
        if ch.proposed_when is not None:
            check_condition(f"{entry('channels', i)}.proposed_when", ch.proposed_when)
        for j, engaged in enumerate(ch.engaged):
            check_party(f"{entry('channels', i)}.engaged[{j}].party", engaged.party)
    out.extend(Problem(src, where, why) for where, why in scope_conflicts(cfg.scope, cfg))
    if not cfg.phases:
        out.append(Problem(src, "phases", "at least one phase is needed"))
    out.extend(_cadence_problems(cfg))
    out.extend(_order_problems(cfg))
    out.extend(_chat_problems(cfg))
    for i, clk in enumerate(cfg.clocks):
        check_party(f"{_entry('clocks', i, {'clocks': [c.model_dump() for c in cfg.clocks]})}.owner", clk.owner)
        check_condition(f"{_entry('clocks', i, {'clocks': [c.model_dump() for c in cfg.clocks]})}.when", clk.when)

    # Labels that must sit on one issue together may not share a scope key: GitLab Premium keeps only
    # one label per scope, so adding the second silently removes the first.
    coexist = [("labels.trigger", cfg.labels.trigger), ("labels.child", cfg.labels.child)]
    coexist += [(f"impact_flags.{f}", f) for f in cfg.impact_flags]
    coexist += [(f"{entry('channels', i)}.label", c.label) for i, c in enumerate(cfg.channels)]
    exclusive = {
        _scope_key(label): kind
        for kind, labels in (("the severity labels", list(cfg.severity.labels)), ("the phase labels", phase_labels))
        for label in labels
        if _scope_key(label)
    }
    scopes: dict[str, str] = {}
    for path, label in coexist:
        key = _scope_key(label)
        if key is None:
            continue
        other = f"{scopes[key]!r}" if key in scopes else exclusive.get(key)
        if other:
            out.append(
                Problem(
                    src,
                    path,
                    f"scoped label {label!r} shares the scope '{key}::' with {other}; GitLab Premium keeps one label "
                    "per scope, so use an unscoped label (no '::') here",
                )
            )
        scopes.setdefault(key, label)
    return out


def _cadence_problems(cfg: Config) -> list[Problem]:
    src, out = cfg.source, []
    bounds = cfg.cadence_bounds
    if bounds.min > bounds.max:
        out.append(Problem(src, "cadence_bounds", "min is longer than max"))
    ids = [e.id for e in cfg.engagements]
    phase_labels = [p.label for p in cfg.phases]
    for i, rule in enumerate(cfg.cadence_defaults):
        path = f"cadence_defaults[{i}]"
        if rule.phase is not None and rule.phase not in phase_labels:
            hint = _did_you_mean(rule.phase, phase_labels)
            out.append(
                Problem(src, f"{path}.phase", f"unknown phase {rule.phase!r} ({hint}expected one of: "
                        f"{', '.join(phase_labels)})")
            )
        for j, eid in enumerate(rule.engagements or []):
            if eid not in ids:
                hint = _did_you_mean(eid, ids)
                out.append(
                    Problem(src, f"{path}.engagements[{j}]", f"unknown engagement {eid!r} ({hint}expected one "
                            f"of: {', '.join(ids)})")
                )
    return out


def _order_problems(cfg: Config) -> list[Problem]:
    src, out = cfg.source, []
    labels = [c.label for c in cfg.channels]
    seen: set[str] = set()
    raw = {"comms_order": [r.model_dump() for r in cfg.comms_order]}
    for i, rule in enumerate(cfg.comms_order):
        path = _entry("comms_order", i, raw)
        if rule.id in seen:
            out.append(Problem(src, f"comms_order[{i}].id", f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
        if not rule.before:
            out.append(Problem(src, f"{path}.before", "name at least one channel that comes later"))
        for where, label in [("channel", rule.channel), *((f"before[{j}]", b) for j, b in enumerate(rule.before))]:
            if label not in labels:
                hint = _did_you_mean(label, labels)
                out.append(
                    Problem(src, f"{path}.{where}", f"unknown channel {label!r} ({hint}expected one of: "
                            f"{', '.join(labels)})")
                )
        if rule.channel in rule.before:
            out.append(Problem(src, f"{path}.before", f"{rule.channel!r} cannot come before itself"))
    return out


def _chat_problems(cfg: Config) -> list[Problem]:
    """Chat routes that name no engagement or team of this policy."""
    if cfg.chat is None:
        return []
    src, out = cfg.source, []
    for section, known in (("engagements", [e.id for e in cfg.engagements]), ("teams", list(cfg.teams))):
        for name in getattr(cfg.chat, section):
            if name not in known:
                hint = _did_you_mean(name, known)
                out.append(Problem(src, f"chat.{section}.{name}", f"unknown {section[:-1]} {name!r} ({hint}expected "
                                   f"one of: {', '.join(known)})"))
    return out


def _clock_calendars(cfg: Config, base_dir: Path) -> tuple[dict[str, HolidayCalendar], list[Problem]]:
    """The holiday calendars the clocks name, and every problem of the ``clocks`` section."""
    raw = {"clocks": [c.model_dump() for c in cfg.clocks]}
    out = [Problem(cfg.source, where, what) for where, what in clockcheck.clock_problems(
        cfg.clocks, lambda i: _entry("clocks", i, raw))]
    calendars: dict[str, HolidayCalendar] = {}
    for i, clock in enumerate(cfg.clocks):
        if clock.calendar is None or clock.calendar in calendars:
            continue
        where = f"{_entry('clocks', i, raw)}.calendar"
        data, file, why = clockcheck.read_calendar(clock.calendar, base_dir)
        if why:
            out.append(Problem(cfg.source, where, why))
            continue
        try:
            calendars[clock.calendar] = HolidayCalendar.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            out.append(Problem(cfg.source, where, f"holiday calendar {file}: {loc}: {first['msg'].lower()}"))
    return calendars, out
