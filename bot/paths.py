"""Where the bundled policy and templates live, in a source checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CANDIDATES = (
    _PACKAGE.parent / "config" / "bot.yaml",  # a source checkout or an editable install
    _PACKAGE / "_defaults" / "config" / "bot.yaml",  # a wheel (see pyproject's force-include)
)
_TEMPLATE_CANDIDATES = (
    _PACKAGE.parent / "issue_templates",
    _PACKAGE / "_defaults" / "issue_templates",
)


def bundled_templates_dir() -> Path:
    """The templates shipped with the bot, used unless a policy names its own ``templates_dir``."""
    for candidate in _TEMPLATE_CANDIDATES:
        if candidate.is_dir():
            return candidate
    return _TEMPLATE_CANDIDATES[0]

_CALENDAR_CANDIDATES = (
    _PACKAGE.parent / "config" / "calendars",
    _PACKAGE / "_defaults" / "config" / "calendars",
)


def bundled_calendars_dir() -> Path:
    """The holiday calendars shipped with the bot (``us-federal.yaml``), used when the policy's folder has none."""
    for candidate in _CALENDAR_CANDIDATES:
        if candidate.is_dir():
            return candidate
    return _CALENDAR_CANDIDATES[0]


def default_config_path() -> Path:
    """``config/bot.yaml`` in the working directory, else the bundled one (``INCIDENT_BOT_CONFIG`` is
    applied by the command line, from :class:`bot.settings.Settings`)."""
    local = Path("config/bot.yaml")
    if local.is_file():
        return local
    for candidate in _CANDIDATES:
        if candidate.is_file():
            return candidate
    return local
