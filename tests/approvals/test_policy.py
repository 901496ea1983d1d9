"""The policy's ``approvals:`` section: the bundled seed rule, the documented example, and one line per mistake
naming the key (as an operator who mistypes a setting reads it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, Severity, parse_config

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "config" / "bot.yaml"


def _policy(**approvals: Any) -> dict[str, Any]:
    data = yaml.safe_load(BUNDLED.read_text())
    groups = {**data["approvals"]["groups"], **approvals.pop("groups", {})}
    data["approvals"] = {**data["approvals"], **approvals, "groups": groups}
    return data


def test_the_bundled_policy_encodes_the_seed_rule() -> None:
    cfg = parse_config(yaml.safe_load(BUNDLED.read_text()), base_dir=ROOT / "config")
    a = cfg.approvals
    assert a.approvers("comms-email") == ["sr_director"] and a.groups["sr_director"] == ["team:sr_director_security"]
    assert a.approvers("comms-status-page") == ["simoc"] and a.groups["simoc"] == ["role:simoc"]
    assert a.ready_label == "comms-approved" and a.target[Severity.CRITICAL].total_seconds() == 6 * 3600
    assert a.window.total_seconds() == 30 * 60 and a.customer_email == ["comms-email"]
    status = cfg.channel("comms-status-page")
    assert status is not None and status.title == "Status page updates" and status.assignee == "role:cmoc"
    assert "live-incident" in cfg.impact_flags and status.template == "status-page.md.j2"


def test_the_documented_example_switches_on_as_it_stands() -> None:
    """The plan's current matrix, commented in the bundled policy, is valid once uncommented (with its teams)."""
    text = BUNDLED.read_text()
    block = text.split("  # groups:\n", 1)[1].split("\n\n", 1)[0]
    example = yaml.safe_load("groups:\n" + re.sub(r"^  # ?", "", block, flags=re.M))
    data = yaml.safe_load(text)
    data["approvals"] = {**data["approvals"], **example}
    cfg = parse_config(data, base_dir=ROOT / "config")
    assert cfg.approvals.quorum is not None and cfg.approvals.quorum.at_least == 2
    assert cfg.approvals.approvers("comms-blog") == ["security", "legal", "cs", "ir"]
    assert cfg.approvals.fyi("comms-email") == ["support", "corpcomms"]
    assert cfg.approvals.groups["security"] == ["vp-security", "team:sr_director_security"]


@pytest.mark.parametrize(
    ("approvals", "problem"),
    [
        ({"matrix": {"comms-emial": {"sr_director": "approver"}}}, "approvals.matrix.comms-emial: unknown channel"),
        ({"matrix": {"comms-email": {"lgal": "approver"}}}, "approvals.matrix.comms-email.lgal: unknown group 'lgal'"),
        ({"matrix": {"comms-email": {"sr_director": "approve"}}},
         "approvals.matrix.comms-email.sr_director: invalid part 'approve' (expected approver or fyi)"),
        ({"matrix": {"comms-email": {"sr_director": "fyi"}}}, "approvals.matrix.comms-email: names no approver"),
        ({"groups": {"sr_director": ["team:sr_directr"]}}, "approvals.groups.sr_director[0]: unknown team"),
        ({"groups": {"sr_director": ["role:ceo"]}}, "approvals.groups.sr_director[0]: unknown role 'ceo'"),
        ({"groups": {"sr_director": ["not a user"]}}, "approvals.groups.sr_director[0]: invalid chain member"),
        ({"window": "half an hour"}, "approvals.window"),
        ({"target": {"critcal": "6h"}}, "approvals.target"),
        ({"quorum": {"of": ["sr_director", "cs"], "at_least": 1}}, "approvals.quorum.of[1]: unknown group 'cs'"),
        ({"quorum": {"of": ["sr_director"], "at_least": 2}}, "approvals.quorum.at_least: 2 is more than the 1"),
        ({"ready_label": "comms-email"}, "approvals.ready_label: 'comms-email' is already used"),
        ({"customer_email": ["comms-mail"]}, "approvals.customer_email: unknown channel 'comms-mail'"),
        ({"windw": "30m"}, "approvals"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(approvals: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_policy(**approvals), source="bot.yaml", base_dir=ROOT / "config")
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("bot.yaml: ") and problem in lines[0], lines[0]
