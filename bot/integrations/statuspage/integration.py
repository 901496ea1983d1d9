"""The public status page as an :class:`~bot.integrations.base.Integration`: status.io or Atlassian Statuspage,
by the policy's ``integrations.status_page.provider``. Each hook imports its adapter only when called."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.integrations.base import Check, Integration, Item, Outbound
from bot.integrations.statuspage.command import PUBLISH
from bot.integrations.statuspage.config import (
    SECTION,
    ProviderSettings,
    StatusIoSettings,
    StatusPageConfigError,
    StatusPagePolicy,
    parse_policy,
    read_settings,
)
from bot.integrations.statuspage.facts import LABEL, NAME, status_page_facts
from bot.integrations.statuspage.settings import ENV_OF, ROWS

if TYPE_CHECKING:
    from bot.config import Config
    from bot.core.model import Desired, Observed
    from bot.integrations.statuspage.job import Publisher
    from bot.settings import Settings

KEY_OF = {"statusio": "STATUSIO_API_KEY", "statuspage": "STATUSPAGE_API_KEY"}


def parse_config(data: Any) -> StatusPagePolicy | None:
    """The policy's ``integrations.status_page`` section; a ``ValueError`` says what is wrong in one line."""
    try:
        return parse_policy(data, where=SECTION)
    except StatusPageConfigError as exc:
        raise ValueError("; ".join(p.removeprefix(f"{SECTION}.").removeprefix(f"{SECTION}: ")
                                   for p in exc.problems)) from None


def policy_of(cfg: Config | None) -> StatusPagePolicy | None:
    if cfg is None:
        return None
    try:
        return parse_config(cfg.integrations.get(SECTION))
    except ValueError:
        return None


def environ_of(settings: Settings) -> Mapping[str, str]:
    """The provider's variables as :func:`~.config.read_settings` reads them, from the parsed settings."""
    return {env: value for attr, env in ENV_OF.items() if (value := getattr(settings, attr, None))}


def enabled(cfg: Config | None, settings: Settings) -> bool:
    """With an ``integrations.status_page`` section and its provider's API key."""
    policy = policy_of(cfg)
    return policy is not None and KEY_OF[policy.provider] in environ_of(settings)


def provider_settings(policy: StatusPagePolicy, settings: Settings) -> ProviderSettings:
    """The provider's settings, or a ``UserError`` with one line per missing or wrong variable."""
    return read_settings(policy.provider, environ_of(settings))


def publisher(policy: StatusPagePolicy, settings: Settings) -> Publisher:
    """The adapter of the policy's provider."""
    from bot.integrations.statuspage.atlassian import Statuspage
    from bot.integrations.statuspage.statusio import StatusIo

    found = provider_settings(policy, settings)
    if isinstance(found, StatusIoSettings):
        return StatusIo(found, policy)
    return Statuspage(found, policy)


def build(settings: Settings, cfg: Config, store: Any, *, metrics: Any = None, clock: Any,
          worker_id: str) -> tuple[Outbound | None, Any]:
    """The planner the GitLab worker calls around a reconcile, and the sender of ``status_page`` jobs."""
    from bot.integrations.statuspage.job import StatusPagePlanner, StatusPageSender
    from bot.statekey import build_state_key

    policy = policy_of(cfg)
    if policy is None:
        return None, None
    provider_settings(policy, settings)  # every missing variable said now, not at the first publish
    secret = build_state_key(settings.state_key, settings.state_key_previous, settings.gitlab_token).current
    planner = StatusPagePlanner(policy, secret, policy.provider)
    sender = StatusPageSender(store, lambda: publisher(policy, settings), policy, worker_id=worker_id,
                              clock=clock, lease=settings.lease, metrics=metrics)
    return planner, sender


def live_checks(cfg: Config | None, settings: Settings) -> list[Check]:
    """The key works and every configured component (and status.io container) exists: reads only."""
    policy = policy_of(cfg)
    if policy is None:
        return []
    label = "status.io" if policy.provider == "statusio" else "Statuspage"
    try:
        problems = publisher(policy, settings).check()
    except StatusPageConfigError as exc:
        return [Check(False, f"{label}: {p}") for p in exc.problems]
    if problems:
        return [Check(False, f"{label}: {p}") for p in problems]
    return [Check(True, f"{label}: the key works; components {', '.join(policy.components)} found")]


def not_checked(cfg: Config | None) -> str:
    policy = policy_of(cfg)
    if policy is None:
        return ""
    return (f"{KEY_OF[policy.provider]} is not set: the integrations.status_page section is not used and the "
            "status page is not checked")


def plan(cfg: Config, desired: Desired, observed: Observed) -> list[Item]:
    """The publish the incident calls for now (a dry run: it cannot know what the provider holds already, so a
    first publish is listed as a create)."""
    from bot.integrations.statuspage.job import wanted

    policy = policy_of(cfg)
    if policy is None:
        return []
    action = wanted(policy, b"preview", desired, observed, [])
    if action is None:
        return []
    target = "status.io" if policy.provider == "statusio" else "Statuspage"
    return [Item(f"{action.kind}:{action.digest}", target, action)]


def describe(item: Item) -> str:
    kind, _, digest = item.key.partition(":")
    return f"{kind} the status page incident at {item.target} with the approved draft {digest}"


STATUS_PAGE = Integration(
    name=NAME,
    label=LABEL,
    enabled=enabled,
    plan=plan,
    facts=status_page_facts,
    build=build,
    settings_rows=ROWS,
    live_checks=live_checks,
    not_checked=not_checked,
    config_section=SECTION,
    parse_config=parse_config,
    commands=(PUBLISH,),
    describe=describe,
)

