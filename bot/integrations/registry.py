"""The one place outbound integrations are registered. Adding one is one line in ``INTEGRATIONS``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bot.core.outbound import CommandSpec
from bot.integrations.base import Integration
from bot.integrations.pagerduty.integration import PAGERDUTY
from bot.integrations.slack.integration import SLACK
from bot.integrations.statuspage.integration import STATUS_PAGE

if TYPE_CHECKING:
    from bot.config import Config
    from bot.settings import Settings
    from bot.settingsrows import Variable

INTEGRATIONS: tuple[Integration, ...] = (SLACK, PAGERDUTY, STATUS_PAGE)


def check(integrations: tuple[Integration, ...], core_commands: tuple[str, ...] = ()) -> None:
    """Names, settings attributes and command names are each unique, and no command hides one of the core's."""
    names = [i.name for i in integrations]
    if len(set(names)) != len(names):
        raise ValueError(f"integration names repeat: {names}")
    rows = [attr for i in integrations for attr in i.settings_rows]
    if len(set(rows)) != len(rows):
        raise ValueError(f"integrations' settings rows repeat: {rows}")
    verbs = [c.name for i in integrations for c in i.commands]
    clash = sorted({v for v in verbs if verbs.count(v) > 1 or v in core_commands})
    if clash:
        raise ValueError(f"integrations' commands clash with others: {clash}")


def settings_rows() -> dict[str, Variable]:
    """Every integration's environment variables, by ``Settings`` attribute, in registration order."""
    return {attr: var for i in INTEGRATIONS for attr, var in i.settings_rows.items()}


def enabled(cfg: Config | None, settings: Settings) -> Iterator[Integration]:
    return (i for i in INTEGRATIONS if i.enabled(cfg, settings))


def commands() -> tuple[CommandSpec, ...]:
    return tuple(c for i in INTEGRATIONS for c in i.commands)


def section(cfg: Config, integration: Integration) -> Any:
    """The integration's section of the policy, parsed (None when it reads none)."""
    if integration.parse_config is None:
        return None
    return integration.parse_config(cfg.integrations.get(integration.config_section or integration.name))


def config_problems(cfg: Config) -> list[str]:
    """One line per problem with the policy's ``integrations:`` sections: an unknown name, or what the
    integration's own parser says is wrong."""
    known = {i.config_section or i.name: i for i in INTEGRATIONS if i.parse_config is not None}
    listing = ", ".join(sorted(known)) or "none"
    problems = [
        f"{cfg.source}: integrations.{name}: no integration reads this section (known: {listing})"
        for name in sorted(cfg.integrations)
        if name not in known
    ]
    for name, integration in known.items():
        try:
            section(cfg, integration)
        except ValueError as exc:
            problems.append(f"{cfg.source}: integrations.{name}: {exc}")
    return problems


def by_name(name: str) -> Integration | None:
    return next((i for i in INTEGRATIONS if i.name == name), None)
