"""One environment variable as the settings table lists it (:class:`Variable`), and the small readers that
integrations' settings rows share. Imports no adapter: ``bot.settings`` and each integration's folder use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.redact import redact, register_secret, url_password


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default as the docs show it, what it means, how it is read."""

    name: str
    default: str
    meaning: str
    parse: Callable[[str], Any]
    secret: bool = False
    """May come as a file (``NAME_FILE``); its value is registered for redaction."""
    carries: str = ""
    """For a URL: the secret the bot sends there (``GITLAB_TOKEN``), so a plain ``http://`` one is refused."""


def read_value(env: Mapping[str, str], name: str, *, secret: bool = True) -> str | None:
    """``env[name]``, or for a secret the contents of the file ``env[name_FILE]`` (one trailing line break
    dropped); None when unset or blank. A secret is registered for redaction (read from a file, it is not in the
    environment that redaction scans). Both set, or a file that cannot be read: a ``ValueError`` in one line."""
    value = env.get(name, "")
    path = env.get(f"{name}_FILE", "") if secret else ""
    if value and path:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}_FILE={path}: cannot read it ({exc.__class__.__name__})") from None
        value = value.removesuffix("\n").removesuffix("\r")
    if secret:
        register_secret(value)
    return value if value.strip() else None


def strip(text: str) -> str:
    return text.strip()


def http_url(name: str, example: str, *, slash: bool = False) -> Callable[[str], str]:
    """An http(s) base URL (a proxy, a test double); ``slash``: always ending in ``/``."""

    def parse(text: str) -> str:
        url = text.strip()
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"{name} must be an http(s) URL such as {example}, got {redact(text)!r}")
        register_secret(url_password(url))
        return url if not slash or url.endswith("/") else url + "/"

    return parse
