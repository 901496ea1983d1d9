"""``incident-bot plan`` lists the pages an incident calls for under PagerDuty (a dry run: nothing is sent)."""

from __future__ import annotations

import json

from bot.commands.cli import main
from tests.conftest import ROOT


def test_plan_lists_the_pages_of_the_bundled_policy(capsys) -> None:
    payload = str(ROOT / "examples" / "payloads" / "s1-incident.json")
    assert main(["plan", "--payload", payload, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["outbound"]["pagerduty"]
    assert [(p["target"], p["text"].split(" (")[0]) for p in listed] == [("support-manager", "trigger support-manager")]
    assert "policy: critical incident" in listed[0]["text"]
