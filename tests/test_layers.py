"""Which side knows which: the settings know no adapter; the simulated platforms know nothing of the bot."""

from __future__ import annotations

from tests.test_architecture import BOT, closure, modules

ADAPTERS = ("bot.store", "bot.gitlab", "bot.web", "bot.integrations", "bot.simgitlab", "bot.simslack",
            "bot.simpagerduty", "bot.simstatus", "bot.simhttp",
            "bot.wiring", "bot.worker", "bot.reconciler", "bot.commands")

DRIVERS = ("gitlab", "slack_sdk", "psycopg", "sqlite3", "flask", "requests", "urllib3", "gunicorn")


def test_settings_import_no_adapter_even_in_a_function() -> None:
    """``bot.settings`` parses the environment; opening a database or a client is the adapters' business."""
    found = {m for m in closure("bot.settings") if not _settings_rows(m)}
    assert sorted(m for m in found if m.startswith(ADAPTERS) or m.split(".")[0] in DRIVERS) == []


def _settings_rows(name: str) -> bool:
    """What the settings may read of the integrations: their settings rows (``bot.integrations.rows`` and each
    folder's ``settings`` module, with the packages holding them), nothing that sends."""
    parts = name.split(".")
    if parts[:2] != ["bot", "integrations"]:
        return False
    rest = parts[2:-1] if parts[-1].isupper() else parts[2:]  # ``module.ROWS``: the name imported from it
    folder = len(rest) >= 1 and (BOT / "integrations" / rest[0] / "__init__.py").is_file()
    return rest in ([], ["rows"]) or (folder and rest[1:] in ([], ["settings"]))


def test_the_simulated_platforms_import_nothing_of_the_bot() -> None:
    """A simulator models GitLab, Slack, PagerDuty or a status page, not the bot: the bot's assembly against it
    (``bot.commands.world``) lives with the command line, so a simulator cannot agree with the bot by sharing its
    code. The one thing they share is ``bot.simhttp``, the loopback server, which imports nothing of the bot."""
    packages = sorted({m.split(".")[1] for m in modules() if m.startswith("bot.sim") and m.count(".") >= 1})
    assert {"simgitlab", "simslack", "simpagerduty", "simstatus", "simhttp"} <= set(packages)
    for package in (f"bot.{p}" for p in packages):
        for name in [m for m in modules() if m == package or m.startswith(package + ".")]:
            bot = sorted(m for m in closure(name) if m.startswith("bot.")
                         and m.split(".")[1] not in (package.split(".")[1], "simhttp"))
            assert bot == [], name
