"""Which side knows which: the settings know no adapter; the simulated platforms know nothing of the bot."""

from __future__ import annotations

from tests.test_architecture import closure

ADAPTERS = ("bot.store", "bot.gitlab", "bot.web", "bot.chat", "bot.integrations", "bot.simgitlab", "bot.simslack",
            "bot.wiring", "bot.worker", "bot.reconciler", "bot.commands")
DRIVERS = ("gitlab", "slack_sdk", "psycopg", "sqlite3", "flask", "requests", "urllib3", "gunicorn")


def test_settings_import_no_adapter_even_in_a_function() -> None:
    """``bot.settings`` parses the environment; opening a database or a client is the adapters' business."""
    found = closure("bot.settings")
    assert sorted(m for m in found if m.startswith(ADAPTERS) or m.split(".")[0] in DRIVERS) == []
