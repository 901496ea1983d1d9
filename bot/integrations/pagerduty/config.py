"""The policy's ``integrations: {pagerduty: ...}`` section: who can be paged, when, and with which routing key.

Pure parsing into frozen dataclasses; every error is one line naming the key
(``integrations.pagerduty.targets[1].when.severity``).
A target's routing key is read from the environment variable the policy names, or ``<VAR>_FILE``; a target
whose key is not set is *off* (nothing is sent for it, ``check-config`` says so).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.integrations.pagerduty.settings import DEFAULT_EVENTS_URL, EVENTS_URL_ENV, WEBHOOK_SECRET_ENV
from bot.redact import redact, register_secret
from bot.settingsrows import read_value

SEVERITIES = ("critical", "high", "medium", "low")
"""The incident severities a condition may name (the policy's ``severity`` levels)."""

_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

EXAMPLE_POLICY = """\
# plan: "If it's urgent page the Support Manager On-call" and "page the on-call marketing ops via
# /pd-emergency-ops" (for a custom distribution list in an urgent incident). Each target's Events API v2
# routing key comes from the environment variable named here (or <VAR>_FILE); a target whose key is not
# set is off. `@incident-bot page TARGET [reason]` pages a target on any incident.
integrations:
  pagerduty:
    targets:
      - id: support-manager
        name: Support Manager on call
        routing_key_env: PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER
        when: {severity: [critical], channels_any: [comms-email, comms-faq]}
      - id: marketing-ops
        name: Marketing Ops on call
        routing_key_env: PAGERDUTY_ROUTING_KEY_MARKETING_OPS
        when: {severity: [critical], channels_any: [comms-distribution-list]}
"""
"""The bundled ``integrations: {pagerduty: ...}`` section (the issue's two targets), as in ``config/bot.yaml``."""


class PagingConfigError(ValueError):
    """A wrong ``integrations.pagerduty`` section or routing key setting; the message is one line naming the key."""


@dataclass(frozen=True)
class When:
    """The conditions for an automatic page: every listed condition must hold (an empty list is no condition)."""

    severities: tuple[str, ...] = ()
    channels_any: tuple[str, ...] = ()

    def holds(self, severity: str | None, channels: Collection[str]) -> bool:
        """Whether an incident of ``severity`` with the channel labels ``channels`` is to be paged."""
        if self.severities and severity not in self.severities:
            return False
        return not self.channels_any or any(label in channels for label in self.channels_any)


@dataclass(frozen=True)
class Target:
    """One pageable party: an Events API v2 integration (a PagerDuty service) with its routing key's variable."""

    id: str
    name: str
    routing_key_env: str
    when: When | None = None
    """``None``: paged only by hand (``page TARGET``)."""


@dataclass(frozen=True)
class PagingConfig:
    targets: tuple[Target, ...] = ()

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)


def parse_paging(section: object, *, known_channels: Collection[str] | None = None,
                 where: str = "integrations.pagerduty") -> PagingConfig:
    """The ``integrations: {pagerduty: ...}`` section (``None`` when absent: no targets). ``known_channels``: the
    policy's channel labels, to catch a mistyped one in ``channels_any``."""
    if section is None:
        return PagingConfig()
    data = _mapping(section, where, {"targets"})
    raw_targets = data.get("targets") or []
    if not isinstance(raw_targets, list):
        raise PagingConfigError(f"{where}.targets: expected a list of targets, got {_kind(raw_targets)}")
    targets: list[Target] = []
    for index, raw in enumerate(raw_targets):
        target = _target(raw, f"{where}.targets[{index}]", known_channels)
        if any(t.id == target.id for t in targets):
            raise PagingConfigError(f"{where}.targets[{index}].id: {target.id!r} is listed twice")
        targets.append(target)
    return PagingConfig(tuple(targets))


def _target(raw: object, where: str, known_channels: Collection[str] | None) -> Target:
    data = _mapping(raw, where, {"id", "name", "routing_key_env", "when"})
    target_id = _text(data, "id", where)
    if not _ID.fullmatch(target_id):
        raise PagingConfigError(f"{where}.id: {target_id!r} is not an id (lower-case letters, digits and '-')")
    env = _text(data, "routing_key_env", where)
    if not _ENV_NAME.fullmatch(env):
        raise PagingConfigError(f"{where}.routing_key_env: {env!r} is not an environment variable name")
    name = _text(data, "name", where) if "name" in data else target_id
    when = None if data.get("when") is None else _when(data["when"], f"{where}.when", known_channels)
    return Target(target_id, name, env, when)


def _when(raw: object, where: str, known_channels: Collection[str] | None) -> When:
    data = _mapping(raw, where, {"severity", "channels_any"})
    severities = _strings(data.get("severity"), f"{where}.severity")
    for level in severities:
        if level not in SEVERITIES:
            raise PagingConfigError(f"{where}.severity: {level!r} is not one of {', '.join(SEVERITIES)}")
    channels = _strings(data.get("channels_any"), f"{where}.channels_any")
    if known_channels is not None:
        for label in channels:
            if label not in known_channels:
                raise PagingConfigError(f"{where}.channels_any: {label!r} is not a channel label of the policy")
    return When(severities, channels)


def _mapping(raw: object, where: str, allowed: set[str]) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise PagingConfigError(f"{where}: expected a mapping, got {_kind(raw)}")
    for key in raw:
        if key not in allowed:
            raise PagingConfigError(f"{where}.{key}: unknown key (expected one of {', '.join(sorted(allowed))})")
    return raw


def _text(data: Mapping[str, object], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PagingConfigError(f"{where}.{key}: required, a non-empty string")
    return value.strip()


def _strings(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() for item in raw):
        raise PagingConfigError(f"{where}: expected a list of names, got {_kind(raw)}")
    return tuple(item.strip() for item in raw)


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


# ------------------------------------------------------------------------------------ settings


def routing_key(target: Target, env: Mapping[str, str]) -> str | None:
    """The target's routing key from ``env[VAR]`` or the file ``env[VAR_FILE]`` (registered for redaction);
    ``None`` when neither is set: the target is off."""
    var = target.routing_key_env
    try:
        value = read_value(env, var)
    except ValueError as exc:
        raise PagingConfigError(f"paging target {target.id}: {exc}") from None
    if value is None:
        return None
    value = value.strip()
    path = env.get(f"{var}_FILE", "")
    if len(value) != 32:
        raise PagingConfigError(f"{var}{'_FILE' if path else ''}: a routing key has 32 characters, this one "
                                f"has {len(value)}")
    return value


def routing_keys(config: PagingConfig, env: Mapping[str, str]) -> dict[str, str]:
    """Target id → routing key, for the targets that are on."""
    keys = {target.id: routing_key(target, env) for target in config.targets}
    return {target_id: key for target_id, key in keys.items() if key is not None}


def describe(config: PagingConfig, env: Mapping[str, str]) -> list[str]:
    """One line per target for ``check-config``: on, or off and why."""
    lines = []
    for target in config.targets:
        on = routing_key(target, env) is not None
        state = "on" if on else f"off ({target.routing_key_env} is not set)"
        lines.append(f"paging target {target.id} ({target.name}): {state}")
    return lines


def webhook_secrets(env: Mapping[str, str]) -> list[str]:
    """The V3 webhook signing secrets: ``PAGERDUTY_WEBHOOK_SECRET`` (or ``_FILE``) and, during a rotation,
    ``PAGERDUTY_WEBHOOK_SECRET_PREVIOUS``; empty when the receiver is off. Registered for redaction."""
    secrets = []
    for var in (WEBHOOK_SECRET_ENV, f"{WEBHOOK_SECRET_ENV}_PREVIOUS"):
        try:
            value = read_value(env, var) or ""
        except ValueError as exc:
            raise PagingConfigError(str(exc)) from None
        if value.strip():
            register_secret(value)
            secrets.append(value)
    if secrets and not env.get(WEBHOOK_SECRET_ENV) and not env.get(f"{WEBHOOK_SECRET_ENV}_FILE"):
        raise PagingConfigError(f"{WEBHOOK_SECRET_ENV}_PREVIOUS is set without {WEBHOOK_SECRET_ENV}")
    return secrets


def events_url(env: Mapping[str, str]) -> str:
    """``PAGERDUTY_EVENTS_URL`` (default ``https://events.pagerduty.com``), without a trailing ``/``: https, or
    plain http to a loopback address only (a simulator)."""
    raw = env.get(EVENTS_URL_ENV, "").strip() or DEFAULT_EVENTS_URL
    parts = urlsplit(raw)
    loopback = parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK
    if not parts.hostname or (parts.scheme != "https" and not loopback):
        raise PagingConfigError(f"{EVENTS_URL_ENV}={redact(raw)}: expected an https:// URL "
                                "(plain http only to 127.0.0.1 or localhost)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise PagingConfigError(f"{EVENTS_URL_ENV}={redact(raw)}: expected a base URL without credentials, "
                                "query or fragment")
    return raw.rstrip("/")
