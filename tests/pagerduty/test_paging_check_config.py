"""``check-config`` says which paging targets are on and which are off, as the operator set their routing keys
(issue: "A target whose key is not set is off, and check-config says so")."""

from __future__ import annotations

import pytest

from bot.commands.cli import main

SUPPORT, MARKETING = "PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER", "PAGERDUTY_ROUTING_KEY_MARKETING_OPS"


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SUPPORT, MARKETING):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


def test_a_target_without_its_key_is_off_and_check_config_says_so(monkeypatch, capsys) -> None:
    monkeypatch.setenv(SUPPORT, "a" * 32)
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "paging target support-manager (Support Manager on call): on" in out
    assert f"paging target marketing-ops (Marketing Ops on call): off ({MARKETING} is not set)" in out
    assert "a" * 32 not in "\n".join(out)  # the key itself is never printed


def test_an_operator_who_mistypes_a_routing_key_is_told_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv(MARKETING, "R0UTING-KEY")
    assert main(["check-config"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"PagerDuty: {MARKETING}: a routing key has 32 characters, this one has 11"]
