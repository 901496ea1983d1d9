"""Incidents as the paging plan sees them, for the PagerDuty tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import yaml

from bot.integrations.pagerduty.config import EXAMPLE_POLICY, Target, parse_paging
from bot.integrations.pagerduty.plan import Facts, PageRequest

TARGETS: tuple[Target, ...] = parse_paging(yaml.safe_load(EXAMPLE_POLICY)["integrations"]["pagerduty"]).targets
SUPPORT, MARKETING = TARGETS
INSTANCE = "https://gitlab.example.com"
SECRET_TITLE = "Leaked customer database of ACME Corp via CVE-2026-0001"


def incident(**changes: Any) -> Facts:
    """A confidential critical incident in group/project#12 with the customer email channel selected."""
    facts = Facts(
        instance_url=INSTANCE,
        project_id=7,
        project_path="group/project",
        iid=12,
        severity="critical",
        channels=frozenset({"comms-email"}),
        confidential=True,
        web_url=f"{INSTANCE}/group/project/-/issues/12",
        state="open",
        role_holders={"seoc": "sec-oncall", "simoc": "sim-oncall"},
        title=SECRET_TITLE,
    )
    return replace(facts, **changes)


def request(target: str, reason: str = "customers are calling", generation: int = 901,
            by: str = "maintainer") -> PageRequest:
    return PageRequest(target, reason, generation, by, datetime(2026, 12, 7, 10, 2, tzinfo=UTC))
