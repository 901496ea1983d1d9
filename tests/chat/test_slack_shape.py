"""The sending logic and the escaping stay pure: they run (and are tested) without Slack or a network."""

from __future__ import annotations

import pytest

from tests.test_architecture import IMPURE, IMPURE_BOT, closure


@pytest.mark.parametrize("module", ["bot.integrations.slack.deliver", "bot.integrations.slack.ports",
                                    "bot.text.mrkdwn"])
def test_pure_modules_import_nothing_that_talks_to_slack(module: str) -> None:
    bad = sorted(m for m in closure(module) if m.split(".")[0] in IMPURE or m.startswith(IMPURE_BOT))
    assert bad == []
