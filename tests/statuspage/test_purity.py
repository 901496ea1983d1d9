"""The status page's plan and safety check are pure: facts in, decisions out, nothing impure imported."""

from __future__ import annotations

import pytest

from tests.test_architecture import IMPURE, IMPURE_BOT, closure, modules, reads_environment


@pytest.mark.parametrize("module", ["bot.integrations.statuspage.plan", "bot.integrations.statuspage.safety"])
def test_imports_nothing_impure_even_indirectly(module: str) -> None:
    assert sorted(m for m in closure(module) if m.split(".")[0] in IMPURE or m.startswith(IMPURE_BOT)) == []


def test_no_status_page_module_reads_the_environment_itself() -> None:
    # Settings come in as a mapping (the caller passes the environment): only bot.settings reads it.
    assert [n for n, p in modules().items() if n.startswith(("bot.integrations", "bot.simstatus"))
            and reads_environment(p)] == []
