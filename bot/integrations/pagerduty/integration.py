"""PagerDuty as an :class:`~bot.integrations.base.Integration`: its hooks, each importing PagerDuty's client
only when called (``bot.settings`` reads the settings rows through the registry and must not load it).

The policy's section is ``integrations: {pagerduty: {targets: [...]}}``; a target whose routing key variable
is not set is off. The integration is enabled when at least one target is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot.errors import UserError
from bot.integrations.base import Check, Integration, Item, Outbound, Route
from bot.integrations.pagerduty.command import UNCONFIGURED, page_command
from bot.integrations.pagerduty.config import (
    EVENTS_URL_ENV,
    PagingConfig,
    PagingConfigError,
    events_url,
    parse_paging,
    routing_keys,
)
from bot.integrations.pagerduty.config import (
    describe as describe_targets,
)
from bot.integrations.pagerduty.facts import LABEL, NAME
from bot.integrations.pagerduty.settings import ROWS

if TYPE_CHECKING:
    from bot.config import Config
    from bot.core.model import Desired, Observed
    from bot.core.outbound import CommandSpec
    from bot.settings import Settings

SECTION = "pagerduty"


def parse(section: Any) -> PagingConfig:
    """The section (its routing keys are checked when the integration is built: one line each)."""
    return parse_paging(section, where=f"integrations.{SECTION}")


def paging_of(cfg: Config | None) -> PagingConfig:
    if cfg is None:
        return PagingConfig()
    try:
        return parse_paging(cfg.integrations.get(SECTION), where=f"integrations.{SECTION}")
    except PagingConfigError:
        return PagingConfig()


def keys(paging: PagingConfig, env: Mapping[str, str]) -> dict[str, str]:
    try:
        return routing_keys(paging, env)
    except PagingConfigError:
        return {}


def enabled(cfg: Config | None, settings: Settings) -> bool:
    """With at least one paging target whose routing key is set."""
    return bool(keys(paging_of(cfg), settings.variables))


def _instance(settings: Settings) -> str:
    return settings.gitlab_url or ""


def plan(cfg: Config, desired: Desired, observed: Observed) -> Sequence[Item]:
    """The pages the incident calls for as if nothing had been sent yet and every target were on."""
    from bot.integrations.pagerduty.job import PagingPlanner

    paging = paging_of(cfg)
    planner = PagingPlanner(cfg, paging, frozenset(t.id for t in paging.targets), "")
    return [Item(p.key, p.target, p) for p in planner.pages(desired, observed, [])]


def describe(item: Item) -> str:
    page = item.body
    return f"{page.action} {page.target} (generation {page.generation}): {page.reason or 'no reason'}"


def build(settings: Settings, cfg: Config, store: Any, *, metrics: Any = None, clock: Any,
          worker_id: str, transport: Any = None) -> tuple[Outbound | None, Any]:
    """The planner the GitLab worker calls around a reconcile, and the sender of ``pagerduty`` jobs. A wrong
    routing key or events URL is one line (``UserError``)."""
    from bot.integrations.pagerduty.adapter import PagerDutySender
    from bot.integrations.pagerduty.job import PagingPlanner, PagingSender

    paging = paging_of(cfg)
    try:
        on = routing_keys(paging, settings.variables)
        url = events_url({EVENTS_URL_ENV: settings.pagerduty_events_url or ""})
    except PagingConfigError as exc:
        raise UserError(str(exc)) from None
    if not on:
        return None, None
    planner = PagingPlanner(cfg, paging, frozenset(on), _instance(settings))
    sender = PagingSender(store, lambda: PagerDutySender(on, base_url=url, transport=transport),
                          worker_id=worker_id, clock=clock, lease=settings.lease)
    return planner, sender


def live_checks(cfg: Config | None, settings: Settings) -> list[Check]:
    """Each target on or off, then whether the events URL answers (a GET of its root: no event is sent)."""
    import httpx2

    paging = paging_of(cfg)
    try:
        checks = [Check(True, line) for line in describe_targets(paging, settings.variables)]
        url = events_url({EVENTS_URL_ENV: settings.pagerduty_events_url or ""})
    except PagingConfigError as exc:
        return [Check(False, str(exc))]
    try:
        answer = httpx2.get(url, timeout=10.0)
        checks.append(Check(True, f"PagerDuty events URL {url}: answers ({answer.status_code})"))
    except httpx2.HTTPError as exc:
        checks.append(Check(False, f"PagerDuty events URL {url}: does not answer ({type(exc).__name__}); "
                                   f"check {ROWS['pagerduty_events_url'].name}"))
    if not settings.pagerduty_webhook_secret:
        checks.append(Check(True, "PAGERDUTY_WEBHOOK_SECRET is not set: acknowledgements are not recorded"))
    return checks


def commands_for(cfg: Config | None, settings: Settings) -> tuple[CommandSpec, ...]:
    """``page`` knowing the policy's targets and which are on, for a reconcile without the planner."""
    paging = paging_of(cfg)
    try:
        on = frozenset(routing_keys(paging, settings.variables))
    except PagingConfigError:
        return (UNCONFIGURED,)
    return (page_command({t.id: t.name for t in paging.targets}, on),)


def summary(cfg: Config, env: Mapping[str, str]) -> list[str]:
    """``check-config``: each paging target on, or off because its routing key is not set."""
    return describe_targets(paging_of(cfg), env)


def not_checked(cfg: Config | None) -> str:
    paging = paging_of(cfg)
    if not paging.targets:
        return ""
    unset = ", ".join(t.routing_key_env for t in paging.targets)
    return f"no paging target is on ({unset} not set, or wrong): nothing is paged and PagerDuty is not checked"


def _demo(cfg: Config, gitlab_url: str, store: Any, clock: Any) -> Any:
    from bot.integrations.pagerduty.demo import demo_paging

    return demo_paging(cfg, gitlab_url, store, clock, build=build, targets=paging_of(cfg).targets)


def _route_view(settings: Settings, cfg: Config, store: Any) -> Any:
    from bot.integrations.pagerduty.receiver import view

    return view(settings, cfg, store)


PAGERDUTY = Integration(
    name=NAME,
    label=LABEL,
    enabled=enabled,
    plan=plan,
    build=build,
    settings_rows=ROWS,
    live_checks=live_checks,
    not_checked=not_checked,
    summary=summary,
    config_section=SECTION,
    parse_config=parse,
    commands=(UNCONFIGURED,),
    commands_for=commands_for,
    route=Route("/pagerduty", ("POST",), _route_view),
    describe=describe,
    demo=_demo,
)
