"""One environment variable as the settings table lists it (:class:`Variable`), and the small readers that
integrations' settings rows share. Imports no adapter: ``bot.settings`` and each integration's folder use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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
