"""Every ``GITLAB_*`` and ``INCIDENT_BOT_*`` environment variable, read in one place into one frozen object.

:func:`Settings.from_env` checks every variable at once and raises :class:`SettingsError` with one line per
problem. Secrets may come as files (``NAME_FILE``); every secret read is registered for redaction. The
README's table of variables is generated from :data:`VARIABLES` (:func:`markdown_table`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import textwrap
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.config import gitlab_path, parse_duration
from bot.dblocation import is_postgres_url
from bot.errors import UserError
from bot.integrations.rows import ROWS as INTEGRATION_ROWS
from bot.redact import SECRET_ENV, URL_ENV, redact, register_secret, url_password
from bot.settingsrows import Variable, read_value, strip

DEFAULT_DB = "var/incident-bot.sqlite3"
DEFAULT_SPOOL = "var/incident-bot-spool.sqlite3"
DEFAULT_LEASE = timedelta(seconds=60)
GITLAB_MAX_BODY = 25 * 1024 * 1024
"""GitLab never sends a webhook body larger than 25 MB (``REQUEST_BODY_SIZE_LIMIT``)."""
MIN_STATE_KEY = 16

Durability = Literal["full", "normal"]
Need = str
"""What a command needs: ``gitlab`` (URL and token), ``webhook`` (a secret or signing token)."""


class SettingsError(UserError, ValueError):
    """One or more settings are wrong or missing: one line per problem in ``problems``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, init=False)
class Settings:
    """The process's settings. ``None`` means unset (and, for durations, ``off``). An integration's settings
    (its rows, :data:`INTEGRATION_FIELDS`) are attributes too (``settings.<row>``), kept in ``extra``."""

    gitlab_url: str | None = None
    gitlab_token: str | None = field(default=None, repr=False)
    webhook_secret: str = field(default="", repr=False)
    webhook_signing_token: str | None = field(default=None, repr=False)
    config: Path | None = None
    config_blank: bool = False
    """``INCIDENT_BOT_CONFIG`` is set but empty (what a compose file passes by default): no policy named."""
    scope: tuple[str, ...] | None = None
    """``INCIDENT_BOT_SCOPE``: the incident scope, overriding the policy's ``scope:``; None when unset."""
    db: str = DEFAULT_DB
    db_durability: Durability = "full"
    spool: str = DEFAULT_SPOOL
    sweep_every: timedelta | None = timedelta(seconds=300)
    lease: timedelta = DEFAULT_LEASE
    retry_base: timedelta | None = None
    dead_letter_retention: timedelta = timedelta(days=14)
    max_body_bytes: int = GITLAB_MAX_BODY
    state_key: str | None = field(default=None, repr=False)
    state_key_previous: str | None = field(default=None, repr=False)
    allow_insecure_http: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The integrations' settings, by attribute; an unset one reads as None."""
    variables: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The environment the settings were read from (:meth:`from_env`): for the variables a policy names (an
    integration's per-target keys), which no fixed row can list. Empty for settings built by hand."""

    def __init__(self, **values: Any) -> None:
        extra = dict(values.pop("extra", None) or {})
        extra.update({k: values.pop(k) for k in list(values) if k in INTEGRATION_FIELDS})
        for f in fields(self):
            if f.name == "extra":
                continue
            if f.name in values:
                value = values.pop(f.name)
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                value = f.default
            object.__setattr__(self, f.name, value)
        if values:
            raise TypeError(f"Settings: unknown settings {sorted(values)}")
        object.__setattr__(self, "extra", extra)

    def __getattr__(self, name: str) -> Any:
        if name in INTEGRATION_FIELDS:
            return self.__dict__.get("extra", {}).get(name)
        raise AttributeError(f"Settings has no setting {name!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, need: Collection[Need] = ()) -> Settings:
        """Read and check every variable; ``need`` names what the command cannot do without (``gitlab``:
        URL and token, ``webhook``: a secret or signing token). Raises ``SettingsError`` listing every problem."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, Any] = {}
        for attr, var in FIELDS.items():
            try:
                text = _raw(env, var)
                if text is not None:
                    values[attr] = var.parse(text)
            except ValueError as exc:
                problems.append(str(exc))
        values["config_blank"] = "INCIDENT_BOT_CONFIG" in env and not env["INCIDENT_BOT_CONFIG"].strip()
        values["variables"] = dict(env)
        settings = cls(**values)
        problems += settings.insecure()
        problems += settings.missing(need)
        if problems:
            raise SettingsError(problems)
        return settings

    def missing(self, need: Collection[Need]) -> list[str]:
        problems = []
        if "gitlab" in need and not self.gitlab_url:
            problems.append("GITLAB_URL is not set (e.g. https://gitlab.com)")
        if "gitlab" in need and not self.gitlab_token:
            problems.append("GITLAB_TOKEN is not set (the bot user's personal or project access token, api scope)")
        if "webhook" in need and not self.webhook_secret and not self.webhook_signing_token:
            problems.append(
                "neither GITLAB_WEBHOOK_SECRET nor GITLAB_WEBHOOK_SIGNING_TOKEN is set: "
                "the receiver refuses unauthenticated webhooks"
            )
        return problems

    def insecure(self) -> list[str]:
        """A plain ``http://`` URL the bot would send a token to in clear, one line each: refused unless its
        host is this machine (loopback) or ``INCIDENT_BOT_ALLOW_INSECURE_HTTP=1`` says it is meant."""
        if self.allow_insecure_http:
            return []
        return [
            f"{name}={redact(url)!r} is plain HTTP: the bot would send {token} in clear; use https:// "
            f"(plain HTTP is allowed for loopback only; to allow it here on purpose set {ALLOW_INSECURE_HTTP}=1)"
            for name, url, token in ((var.name, getattr(self, attr), var.carries) for attr, var in _URLS.items())
            if url and not secure_enough(url)
        ]

    def gitlab(self) -> tuple[str, str]:
        """``GITLAB_URL`` and ``GITLAB_TOKEN``, or ``SettingsError`` naming what is missing."""
        problems = self.missing(("gitlab",))
        if problems or not self.gitlab_url or not self.gitlab_token:
            raise SettingsError(problems)
        return self.gitlab_url, self.gitlab_token

    def is_postgres(self) -> bool:
        return is_postgres_url(self.db)


# ------------------------------------------------------------------------------------ parsing


def _raw(env: Mapping[str, str], var: Variable) -> str | None:
    """The variable's text, or its file's contents; None when unset."""
    return read_value(env, var.name, secret=var.secret)


_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def duration(name: str, *, unit: timedelta = timedelta(seconds=1), off: bool = False,
             at_least: timedelta | None = None, most: timedelta | None = None) -> Callable[[str], timedelta | None]:
    """A duration: a plain number (of ``unit``), ``300s``, or the config's form (``5m``, ``1h``, ``2d``), more
    than zero, within ``at_least`` and ``most`` when given. A refusal names the bounds in ``unit``."""
    plain = "days" if unit == timedelta(days=1) else "seconds"
    expected = f"a duration such as 300s, 5m or 1h (a plain number is {plain}){' or off' if off else ''}"
    if at_least is not None and most is not None:
        bounds = f"from {_show(at_least, unit)} to {_show(most, unit)}"
    elif at_least is not None:
        bounds = f"at least {_show(at_least, unit)}"
    elif most is not None:
        bounds = f"more than 0 and at most {_show(most, unit)}"
    else:
        bounds = f"more than 0 {plain}"

    def parse(text: str) -> timedelta | None:
        if off and text.strip().lower() == "off":
            return None
        number = _SECONDS.match(text)
        try:
            if number and text.strip()[-1:] == "s":
                value = timedelta(seconds=float(number.group(1)))
            elif number:
                value = unit * float(number.group(1))
            else:
                value = parse_duration(text)
        except (ValueError, OverflowError):
            raise ValueError(f"{name}={text!r} is not {expected}") from None
        too_short = value < at_least if at_least is not None else value <= timedelta(0)
        if too_short or (most is not None and value > most):
            raise ValueError(f"{name}={text!r} must be {bounds}")
        return value

    return parse


def _show(value: timedelta, unit: timedelta = timedelta(seconds=1)) -> str:
    """A bound in the setting's own unit: ``1 day``, ``3650 days``, ``10 s``."""
    if unit >= timedelta(days=1):
        days = value.total_seconds() / 86400
        return f"{days:g} day" if days == 1 else f"{days:g} days"
    return f"{value.total_seconds():g} s"


def _choice(name: str, *choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"{name} must be {' or '.join(choices)}, got {text!r}")
        return value

    return parse


def _bytes(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = text.strip()
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{name} must be a number of bytes, got {text!r}")
        return int(value)

    return parse


def _gitlab_url(text: str) -> str:
    """The instance's base URL; ``…/api/v4`` (as often copied from the API docs) is accepted and dropped."""
    url = text.strip().rstrip("/")
    url = url.removesuffix("/api/v4").rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"GITLAB_URL must be an http(s) URL such as https://gitlab.com, got {redact(text)!r}")
    register_secret(url_password(url))
    return url


ALLOW_INSECURE_HTTP = "INCIDENT_BOT_ALLOW_INSECURE_HTTP"


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``: a connection that never leaves this machine."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_enough(url: str) -> bool:
    """An ``https://`` URL, or a plain ``http://`` one to a loopback address (a simulator, a local proxy)."""
    parts = urlsplit(url)
    return parts.scheme.lower() != "http" or is_loopback(parts.hostname or "")


def _flag(name: str) -> Callable[[str], bool]:
    def parse(text: str) -> bool:
        value = text.strip().lower()
        if value not in ("1", "0", "true", "false", "yes", "no", ""):
            raise ValueError(f"{name} must be 1 or 0, got {text!r}")
        return value in ("1", "true", "yes")

    return parse


def _scope(text: str) -> tuple[str, ...]:
    """Comma-separated GitLab group or project paths (spaces around them are ignored)."""
    paths = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            paths.append(gitlab_path(part))
        except ValueError:
            raise ValueError(
                f"INCIDENT_BOT_SCOPE: {part.strip()!r} is not a GitLab group or project path (expected "
                "comma-separated full paths such as acme/security-incidents,acme-sec)"
            ) from None
    if not paths:
        raise ValueError("INCIDENT_BOT_SCOPE is set but names no group or project (e.g. acme/security-incidents)")
    return tuple(dict.fromkeys(paths))


def _db(text: str) -> str:
    register_secret(url_password(text))
    return text.strip()


def _state_key(name: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        register_secret(value)
        if len(value) < MIN_STATE_KEY:
            raise ValueError(
                f"{name} is too short: use at least {MIN_STATE_KEY} random characters (e.g. `openssl rand -hex 32`)"
            )
        return value

    return parse


_strip = strip


def _keep(text: str) -> str:
    return text


INTEGRATION_FIELDS: dict[str, Variable] = dict(INTEGRATION_ROWS)
"""The outbound integrations' settings (``bot.integrations.rows``), listed after the bot's own."""
_URL_NAMES = " or ".join(f"`{name}`" for name in ("GITLAB_URL", *(v.name for v in INTEGRATION_FIELDS.values()
                                                                         if v.carries)))

FIELDS: dict[str, Variable] = {
    "gitlab_url": Variable("GITLAB_URL", "", "the GitLab instance, e.g. `https://gitlab.com` (`…/api/v4` is accepted)",
                           _gitlab_url, carries="GITLAB_TOKEN"),
    "gitlab_token": Variable("GITLAB_TOKEN", "", "the bot user's access token (`api` scope)", _strip, secret=True),
    "webhook_secret": Variable(
        "GITLAB_WEBHOOK_SECRET", "", "the webhook's secret token (this or the signing token is required)", _keep,
        secret=True),
    "webhook_signing_token": Variable(
        "GITLAB_WEBHOOK_SIGNING_TOKEN", "", "the webhook's signing token (`whsec_…`); verifies `webhook-signature`",
        _strip, secret=True),
    "config": Variable(
        "INCIDENT_BOT_CONFIG", "`config/bot.yaml` where the bot runs", "the policy file; `serve`, `worker`, `sweep` "
        "and `reconcile` refuse to start when none is found (the bundled example runs only when named here)",
        lambda t: Path(t.strip())),
    "scope": Variable(
        "INCIDENT_BOT_SCOPE", "the policy's `scope:`", "the incident scope: comma-separated GitLab groups or projects "
        "(full paths) where incidents live, overriding the policy's `scope:`; `serve`, `worker`, `sweep` and "
        "`reconcile` refuse to start without one", _scope),
    "db": Variable("INCIDENT_BOT_DB", f"`{DEFAULT_DB}`", "the store: a SQLite file or a `postgresql://` URL", _db),
    "db_durability": Variable(
        "INCIDENT_BOT_DB_DURABILITY", "`full`",
        "`full`: every acknowledged delivery is flushed to disk; `normal`: survives a crash of the bot, "
        "not of the machine or database server", _choice("INCIDENT_BOT_DB_DURABILITY", "full", "normal")),
    "spool": Variable("INCIDENT_BOT_SPOOL", f"`{DEFAULT_SPOOL}`",
                      "with PostgreSQL: the replica's local spool file", _strip),
    "sweep_every": Variable(
        "INCIDENT_BOT_SWEEP_SECONDS", "`300s`", "how often each worker lists open incidents to catch missed webhooks "
        "(`off`: webhooks only; at least 10 s); reminders do not depend on it",
        duration("INCIDENT_BOT_SWEEP_SECONDS", off=True, at_least=timedelta(seconds=10))),
    "lease": Variable(
        "INCIDENT_BOT_LEASE_SECONDS", "`60s`", "how long a job a dead worker held waits before another takes it "
        "(at least 3 s)", duration("INCIDENT_BOT_LEASE_SECONDS", at_least=timedelta(seconds=3))),
    "retry_base": Variable("INCIDENT_BOT_RETRY_SECONDS", "`10s`",
                           "the first retry of a failed job, doubling after", duration("INCIDENT_BOT_RETRY_SECONDS")),
    "dead_letter_retention": Variable(
        "INCIDENT_BOT_DEAD_LETTER_DAYS", "`14` (days)", "how long dead letters and their payloads are kept "
        "(1 to 3650 days)", duration("INCIDENT_BOT_DEAD_LETTER_DAYS", unit=timedelta(days=1),
                                      at_least=timedelta(days=1), most=timedelta(days=3650))),
    "max_body_bytes": Variable("INCIDENT_BOT_MAX_BODY_BYTES", f"`{GITLAB_MAX_BODY}`",
                               "the largest webhook body accepted (GitLab's own limit is 25 MB)",
                               _bytes("INCIDENT_BOT_MAX_BODY_BYTES")),
    "state_key": Variable(
        "INCIDENT_BOT_STATE_KEY", "derived from `GITLAB_TOKEN`",
        "signs the bot's state in GitLab: at least 16 characters, the same for every replica",
        _state_key("INCIDENT_BOT_STATE_KEY"), secret=True),
    "state_key_previous": Variable(
        "INCIDENT_BOT_STATE_KEY_PREVIOUS", "", "the state key before a rotation; what it signed is still believed",
        _state_key("INCIDENT_BOT_STATE_KEY_PREVIOUS"), secret=True),
    **INTEGRATION_FIELDS,
    "allow_insecure_http": Variable(
        ALLOW_INSECURE_HTTP, "`0`", f"`1`: accept a plain `http://` {_URL_NAMES} for a host other "
        "than loopback (the tokens then travel in clear)", _flag(ALLOW_INSECURE_HTTP)),
}
VARIABLES = tuple(FIELDS.values())
_URLS = {attr: var for attr, var in FIELDS.items() if var.carries}

_GITLAB = ("GITLAB_URL", "GITLAB_TOKEN", "INCIDENT_BOT_STATE_KEY", "INCIDENT_BOT_STATE_KEY_PREVIOUS",
           ALLOW_INSECURE_HTTP)
_STORE = ("INCIDENT_BOT_DB", "INCIDENT_BOT_DB_DURABILITY")
_WORKER = (*_GITLAB, *_STORE, "INCIDENT_BOT_SPOOL", "INCIDENT_BOT_SWEEP_SECONDS", "INCIDENT_BOT_LEASE_SECONDS",
           "INCIDENT_BOT_RETRY_SECONDS", "INCIDENT_BOT_DEAD_LETTER_DAYS",
           *(v.name for v in INTEGRATION_FIELDS.values()))
_POLICY = ("INCIDENT_BOT_CONFIG", "INCIDENT_BOT_SCOPE")
COMMAND_VARIABLES: dict[str, tuple[str, ...]] = {
    "check-config": ("INCIDENT_BOT_CONFIG", "GITLAB_URL", "GITLAB_TOKEN", ALLOW_INSECURE_HTTP),  # --live only
    "plan": (*_POLICY, *_GITLAB),
    "reconcile": (*_POLICY, *_GITLAB),
    "report": (*_POLICY, *_GITLAB),  # reads only; the state key verifies the records it measures from
    "init": (*_POLICY, "GITLAB_URL", "GITLAB_TOKEN", "GITLAB_WEBHOOK_SECRET", ALLOW_INSECURE_HTTP),
    "demo": ("INCIDENT_BOT_CONFIG",),
    "serve": (*_POLICY, *_WORKER, "GITLAB_WEBHOOK_SECRET", "GITLAB_WEBHOOK_SIGNING_TOKEN",
              "INCIDENT_BOT_MAX_BODY_BYTES"),
    "worker": (*_POLICY, *_WORKER),
    "sweep": (*_POLICY, *_GITLAB, *_STORE),
    "db": _STORE,
    "dead-letters": _STORE,
}
"""The variables each command reads (its ``--help`` lists them); every one is in :data:`FIELDS`."""

_BY_NAME = {var.name: var for var in VARIABLES}


def help_epilog(command: str) -> str:
    """``--help``'s list of the environment variables ``command`` reads, one per line, from :data:`FIELDS`."""
    lines = ["environment variables (secrets may also be given as NAME_FILE; see the README's table):"]
    for name in COMMAND_VARIABLES.get(command, ()):
        var = _BY_NAME[name]
        default = f" (default {var.default.replace('`', '')})" if var.default else ""
        text = f"{name}{'[_FILE]' if var.secret else ''}: {var.meaning.replace('`', '')}{default}"
        lines.append(textwrap.fill(text, 100, initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False))
    return "\n".join(lines)


def environment() -> Mapping[str, str]:
    """The process environment as it is now, for the variables a policy names (a paging target's routing key):
    the one reader of the environment outside :meth:`Settings.from_env`."""
    return os.environ


def register_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register every secret-looking variable (``*_TOKEN``, ``*_SECRET``, ``*_KEY``, ``*_PASSWORD`` of
    ``GITLAB``/``INCIDENT_BOT``/an integration's, and every integration's secret rows) and the URL passwords for
    redaction, before anything is parsed."""
    env = os.environ if environ is None else environ
    secret_rows = {v.name for v in INTEGRATION_FIELDS.values() if v.secret}
    for name, value in env.items():
        if SECRET_ENV.fullmatch(name) or name in secret_rows:
            register_secret(value)
    for name in URL_ENV:
        register_secret(url_password(env.get(name, "")))


def markdown_table() -> str:
    """The README's table of environment variables."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in VARIABLES:
        name = f"`{var.name}`" + (f" (or `{var.name}_FILE`)" if var.secret else "")
        rows.append(f"| {name} | {var.default or '—'} | {var.meaning} |")
    return "\n".join(rows) + "\n"
