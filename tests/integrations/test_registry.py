"""The registry as the bot's assembly reads it: settings rows, the worker's planners, inbound routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask, jsonify

from bot import settings as settings_module
from bot import wiring
from bot.core.outbound import CommandSpec, Judged, OutboundFacts, Refused
from bot.integrations import registry
from bot.integrations.base import Integration, Planners, Route
from bot.settings import Settings
from tests.conftest import T0


class FakePlanner:
    """Counts the worker's calls; says one target refused."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.offers: list[str] = []

    def facts(self, store: Any, incident_key: str) -> OutboundFacts:
        return OutboundFacts(refused=(Refused(self.name, self.name.title(), "#x", "no"),))

    def offer(self, store: Any, incident_key: str, desired: Any, observed: Any, now: datetime) -> bool:
        self.offers.append(incident_key)
        return self.name == "beacon"


def _ok(said: Any, slot: Any) -> Judged:
    return Judged(True, "ok")


def beacon(**kw: Any) -> Integration:
    planner = FakePlanner("beacon")
    return Integration(
        name="beacon", label="Beacon", enabled=lambda cfg, s: True,
        build=lambda settings, cfg, store, **_: (planner, "the beacon sender"),
        commands=(CommandSpec("beacon", "beacon", "beacon", "light it", _ok),),
        route=Route("/beacon", ("POST",), lambda settings, cfg, store: lambda: jsonify(store=store)), **kw)


def test_the_worker_gets_every_enabled_integrations_facts_and_offers(monkeypatch, default_config) -> None:
    monkeypatch.setattr(registry, "INTEGRATIONS", (beacon(), *registry.INTEGRATIONS))
    planner, senders = wiring.outbound(Settings(), default_config, store=None, clock=lambda: T0, worker_id="w")
    assert isinstance(planner, Planners) and senders == {"beacon": "the beacon sender"}  # no Slack token: no Slack
    facts = planner.facts(None, "11#1")
    assert [r.key for r in facts.refused] == ["beacon:#x"] and [c.name for c in facts.commands] == ["beacon"]
    assert planner.offer(None, "11#1", None, None, T0) is True


def test_no_integration_enabled_means_no_planner(default_config) -> None:
    assert wiring.outbound(Settings(), default_config, store=None, clock=lambda: T0, worker_id="w") == (None, {})


def test_an_enabled_integrations_route_is_on_the_receiver(monkeypatch, default_config) -> None:
    monkeypatch.setattr(registry, "INTEGRATIONS", (beacon(), *registry.INTEGRATIONS))
    app = Flask(__name__)
    assert wiring.add_routes(app, Settings(), default_config, "the store") == ["/beacon"]
    client = app.test_client()
    assert client.post("/beacon").get_json() == {"store": "the store"}
    assert client.get("/beacon").status_code == 405


def test_slacks_rows_come_from_its_folder_and_read_like_the_bots_own() -> None:
    from bot.integrations.slack.settings import ROWS

    assert set(ROWS) <= set(settings_module.FIELDS)
    env = {"SLACK_BOT_TOKEN": " xoxb-1 ", "SLACK_API_URL": "https://proxy.example/api"}
    read = Settings.from_env(env)
    assert (read.slack_bot_token, read.slack_api_url) == ("xoxb-1", "https://proxy.example/api/")
    with pytest.raises(settings_module.SettingsError, match=r"SLACK_API_URL=.*plain HTTP"):
        Settings.from_env({"SLACK_API_URL": "http://proxy.example/api/"})
    assert "SLACK_BOT_TOKEN" in settings_module.help_epilog("worker")


def test_a_mistyped_setting_name_in_code_is_an_error_not_a_silent_none() -> None:
    with pytest.raises(TypeError, match="slack_bot_tokn"):
        Settings(slack_bot_tokn="x")
    with pytest.raises(AttributeError):
        _ = Settings().no_such_setting


def test_the_bots_reconciler_knows_the_enabled_integrations_commands(monkeypatch, default_config) -> None:
    monkeypatch.setattr(registry, "INTEGRATIONS", (beacon(), *registry.INTEGRATIONS))
    env = Settings(gitlab_url="https://gitlab.example", gitlab_token="glpat-" + "x" * 20)
    r = wiring.reconciler(env, default_config, gitlab=object())  # type: ignore[arg-type]
    try:
        assert [c.name for c in r.commands] == ["beacon"]
    finally:
        r.close()


def _targets(raw: Any) -> tuple[str, ...]:
    """The beacon's section: ``targets`` (a list of names)."""
    if raw is None:
        return ()
    targets = raw.get("targets") if isinstance(raw, dict) else None
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ValueError("targets must be a list of names, e.g. targets: [north]")
    return tuple(targets)


def _policy(tmp_path, section: str) -> str:
    import yaml

    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["integrations"] = yaml.safe_load(section)
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("section", "said"), [
    ("{beacon: {targets: [north]}}", None),
    ("{beakon: {targets: [north]}}",
     "integrations.beakon: no integration reads this section (known: beacon, pagerduty, status_page)"),
    ("{beacon: {targets: north}}", "integrations.beacon: targets must be a list of names, e.g. targets: [north]"),
])
def test_an_operators_integration_section_is_checked_in_one_line(monkeypatch, tmp_path, capsys, section, said) -> None:
    from bot.commands.cli import main

    monkeypatch.setattr(registry, "INTEGRATIONS", (beacon(parse_config=_targets), *registry.INTEGRATIONS))
    monkeypatch.delenv("INCIDENT_BOT_CONFIG", raising=False)
    code = main(["check-config", "--config", _policy(tmp_path, section)])
    out, err = capsys.readouterr()
    if said is None:
        assert code == 0 and "OK" in out
        return
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].endswith(said) and "bot.yaml" in lines[0]


def test_plan_lists_an_integrations_items_under_its_label(monkeypatch, capsys) -> None:
    """``plan`` shows what each integration that lists its items would do (a dry run: nothing is sent)."""
    import json

    from bot.commands.cli import main
    from bot.integrations.base import Item
    from tests.conftest import ROOT

    def plan(cfg: Any, desired: Any, observed: Any) -> list[Item]:
        return [Item("beacon|north", "north", None)] if desired.severity.label == "critical" else []

    monkeypatch.setattr(registry, "INTEGRATIONS", (beacon(plan=plan, describe=lambda item: "light it"),
                                                   *registry.INTEGRATIONS))
    payload = str(ROOT / "examples" / "payloads" / "s1-incident.json")
    assert main(["plan", "--payload", payload]) == 0
    assert "Beacon (1):\n  - north: light it" in capsys.readouterr().out
    assert main(["plan", "--payload", payload, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["outbound"]
    assert listed["beacon"] == [{"key": "beacon|north", "target": "north", "text": "light it"}]


def test_the_settings_rows_list_is_exactly_the_registered_integrations_rows() -> None:
    """``bot.integrations.rows`` (what the settings read, no adapter) cannot forget or invent an integration."""
    from bot.integrations.rows import ROWS

    assert registry.settings_rows() == ROWS
