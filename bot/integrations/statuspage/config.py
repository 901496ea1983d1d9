"""The policy's ``integrations.status_page`` section and the provider's settings, parsed with one-line errors
naming the key.

Policy (YAML), under ``integrations:``::

    status_page:
      provider: statusio            # or: statuspage (Atlassian)
      impact_label: live-incident   # the incident must carry it for a publish
      name: Security incident update
      allowed_hosts: [status.gitlab.com, "*.gitlab.io"]   # the only hosts a draft may link to
      components: [5f3e...]         # status.io component ids, or Statuspage component ids
      containers: [5f3f...]         # status.io only: every component is marked in every container
      component_status: security_event
      notify: true                  # the provider tells its subscribers

Environment (``*_KEY`` also as ``*_KEY_FILE``): ``STATUSIO_API_URL`` (default ``https://api.status.io/v2/``),
``STATUSIO_API_ID``, ``STATUSIO_API_KEY``, ``STATUSIO_STATUSPAGE_ID``; ``STATUSPAGE_API_URL`` (default
``https://api.statuspage.io/v1/``), ``STATUSPAGE_API_KEY``, ``STATUSPAGE_PAGE_ID``. Nothing here reads the
process environment itself: the caller passes the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.errors import UserError
from bot.settingsrows import read_value

Provider = Literal["statusio", "statuspage"]
PROVIDERS: tuple[Provider, ...] = ("statusio", "statuspage")
SECTION = "status_page"
DEFAULT_NAME = "Security incident update"
DEFAULT_LABEL = "live-incident"
STATUSIO_URL = "https://api.status.io/v2/"
STATUSPAGE_URL = "https://api.statuspage.io/v1/"

STATUSIO_STATUS = {"operational": 100, "degraded_performance": 300, "partial_service_disruption": 400,
                   "service_disruption": 500, "security_event": 600}
"""status.io's component status codes (statusio/statusio-go ``statusio.go``: ``STATUS_OPERATIONAL = 100`` ...
``STATUS_SECURITY_EVENT = 600``)."""
STATUSPAGE_STATUS = ("degraded_performance", "partial_outage", "major_outage", "under_maintenance")
"""Statuspage's component statuses besides ``operational`` (its API reference, component ``status``)."""
DEFAULT_STATUS: dict[Provider, str] = {"statusio": "security_event", "statuspage": "partial_outage"}
_KEYS = ("provider", "impact_label", "name", "allowed_hosts", "components", "containers", "component_status",
         "notify")
_HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[A-Za-z0-9 ,.:()'-]{1,120}")


class StatusPageConfigError(UserError, ValueError):
    """The ``status_page:`` section or the provider's settings are wrong: one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class StatusPagePolicy:
    """The parsed ``status_page:`` section."""

    provider: Provider
    impact_label: str = DEFAULT_LABEL
    name: str = DEFAULT_NAME
    """The neutral stem of every provider incident's name (never the GitLab title)."""
    allowed_hosts: tuple[str, ...] = ()
    """Hosts a draft may link to; ``*.example.com`` allows its subdomains."""
    components: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    component_status: str = "security_event"
    notify: bool = True

    @property
    def infrastructure(self) -> list[str]:
        """status.io's ``infrastructure_affected``: every ``component-container`` pair (statusio-go tests)."""
        return [f"{c}-{k}" for c in self.components for k in self.containers]


@dataclass(frozen=True)
class StatusIoSettings:
    api_url: str = STATUSIO_URL
    api_id: str = ""
    api_key: str = field(default="", repr=False)
    statuspage_id: str = ""


@dataclass(frozen=True)
class StatuspageSettings:
    api_url: str = STATUSPAGE_URL
    api_key: str = field(default="", repr=False)
    page_id: str = ""


ProviderSettings = StatusIoSettings | StatuspageSettings


def parse_policy(data: Any, *, where: str = SECTION) -> StatusPagePolicy | None:
    """The section's value (None or absent: no status page) as a policy; :class:`StatusPageConfigError` else."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise StatusPageConfigError([f"{where}: must be a mapping with at least `provider:`"])
    problems: list[str] = []
    for key in data:
        if key not in _KEYS:
            problems.append(f"{where}.{key}: unknown key (known: {', '.join(_KEYS)})")
    provider: Provider = "statusio"
    if data.get("provider") in PROVIDERS:
        provider = data["provider"]
    else:
        problems.append(f"{where}.provider: must be one of {', '.join(PROVIDERS)}, not {_show(data.get('provider'))}")
    label = data.get("impact_label", DEFAULT_LABEL)
    if not isinstance(label, str) or not label.strip() or "," in label or len(label) > 255:
        problems.append(f"{where}.impact_label: must be a GitLab label name, not {_show(label)}")
        label = DEFAULT_LABEL
    name = data.get("name", DEFAULT_NAME)
    if not isinstance(name, str) or not _NAME.fullmatch(name.strip()):
        problems.append(f"{where}.name: must be plain words (letters, digits, spaces, ,.:()'-; at most 120), "
                        f"not {_show(name)}")
        name = DEFAULT_NAME
    hosts = _list(data, "allowed_hosts", where, problems, lambda h: bool(_HOST.fullmatch(h.lower())), "host names")
    components = _list(data, "components", where, problems, lambda v: bool(_ID.fullmatch(v)), "component ids")
    containers = _list(data, "containers", where, problems, lambda v: bool(_ID.fullmatch(v)), "container ids")
    if not components:
        problems.append(f"{where}.components: name at least one component id to mark during a live incident")
    if provider == "statusio" and not containers:
        problems.append(f"{where}.containers: status.io marks a component in containers; name at least one")
    if provider == "statuspage" and containers:
        problems.append(f"{where}.containers: only for provider statusio (Statuspage has no containers)")
    status = data.get("component_status", DEFAULT_STATUS[provider])
    known = tuple(STATUSIO_STATUS)[1:] if provider == "statusio" else STATUSPAGE_STATUS
    if status not in known:
        problems.append(f"{where}.component_status: must be one of {', '.join(known)}, not {_show(status)}")
        status = DEFAULT_STATUS[provider]
    notify = data.get("notify", True)
    if not isinstance(notify, bool):
        problems.append(f"{where}.notify: must be true or false, not {_show(notify)}")
        notify = True
    if problems:
        raise StatusPageConfigError(problems)
    return StatusPagePolicy(provider=provider, impact_label=label.strip(), name=name.strip(),
                            allowed_hosts=tuple(h.lower() for h in hosts), components=components,
                            containers=containers, component_status=status, notify=notify)


def read_settings(provider: Provider, environ: Mapping[str, str]) -> ProviderSettings:
    """The provider's settings from ``environ`` (keys also from ``NAME_FILE``); every problem on its own line.

    Every key read is registered for redaction, so no log line or error can carry it.
    """
    problems: list[str] = []
    unreadable: set[str] = set()

    def get(name: str, *, secret: bool = False, default: str = "") -> str:
        try:
            return _value(environ, name, secret=secret) or default
        except ValueError as exc:
            problems.append(str(exc))
            unreadable.add(name)
            return default

    s: ProviderSettings
    if provider == "statusio":
        io = StatusIoSettings(api_url=_url(get("STATUSIO_API_URL", default=STATUSIO_URL), "STATUSIO_API_URL",
                                           problems),
                              api_id=get("STATUSIO_API_ID", secret=True), api_key=get("STATUSIO_API_KEY", secret=True),
                              statuspage_id=get("STATUSIO_STATUSPAGE_ID"))
        required = {"STATUSIO_API_ID": io.api_id, "STATUSIO_API_KEY": io.api_key,
                    "STATUSIO_STATUSPAGE_ID": io.statuspage_id}
        s = io
    else:
        sp = StatuspageSettings(api_url=_url(get("STATUSPAGE_API_URL", default=STATUSPAGE_URL),
                                             "STATUSPAGE_API_URL", problems),
                                api_key=get("STATUSPAGE_API_KEY", secret=True), page_id=get("STATUSPAGE_PAGE_ID"))
        required = {"STATUSPAGE_API_KEY": sp.api_key, "STATUSPAGE_PAGE_ID": sp.page_id}
        s = sp
    for name, value in required.items():
        if name in unreadable:
            continue
        if not value:
            problems.append(f"{name}: not set; the policy's integrations.status_page.provider is {provider}")
        elif name.endswith("_ID") and not _ID.fullmatch(value):
            problems.append(f"{name}: must be an id (letters, digits, - or _), not {value!r}")
    if problems:
        raise StatusPageConfigError(problems)
    return s


def _value(environ: Mapping[str, str], name: str, *, secret: bool) -> str:
    return (read_value(environ, name, secret=secret) or "").strip()


def _url(text: str, name: str, problems: list[str]) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{name}: must be an http(s) URL like {STATUSIO_URL if 'IO' in name else STATUSPAGE_URL}, "
                        f"not {text!r}")
        return text
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        problems.append(f"{name}: must use https (the API key travels in a header), not {text!r}")
    return text if text.endswith("/") else text + "/"


def _list(data: Mapping[str, Any], key: str, where: str, problems: list[str], ok: Callable[[str], bool],
          what: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}.{key}: must be a list of {what}, not {_show(value)}")
        return ()
    bad = [v for v in value if not ok(v)]
    if bad:
        problems.append(f"{where}.{key}: not {what}: {', '.join(repr(b) for b in bad[:5])}")
    return tuple(dict.fromkeys(v for v in value if ok(v)))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
