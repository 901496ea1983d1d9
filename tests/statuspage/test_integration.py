"""The status page as a registered integration: enabled by its section and its provider's key, its live checks
against the simulated status.io over HTTP, and an operator's missing variable told one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import UserError
from bot.integrations import registry
from bot.integrations.statuspage.integration import STATUS_PAGE, build, live_checks, not_checked
from bot.settings import Settings
from bot.simgitlab import ManualClock
from bot.simstatus import SimulatedStatusIo
from tests.conftest import T0
from tests.statuspage.test_acceptance import COMPONENT, CONTAINER, policy


def env(sim: SimulatedStatusIo, **extra: str) -> Settings:
    return Settings.from_env({"STATUSIO_API_URL": sim.url, "STATUSIO_API_ID": sim.api_id,
                              "STATUSIO_API_KEY": sim.api_key, "STATUSIO_STATUSPAGE_ID": sim.statuspage_id,
                              "GITLAB_TOKEN": "glpat-abcdefghijklmnopqrst", **extra})


@pytest.fixture
def statusio() -> SimulatedStatusIo:
    with SimulatedStatusIo(components={COMPONENT: [CONTAINER]}) as sim:
        yield sim


def test_enabled_only_with_its_section_and_its_providers_key(tmp_path: Path, statusio: SimulatedStatusIo) -> None:
    cfg = policy(tmp_path)
    assert STATUS_PAGE in registry.enabled(cfg, env(statusio))
    assert STATUS_PAGE not in registry.enabled(cfg, Settings.from_env({}))
    assert not_checked(cfg).startswith("STATUSIO_API_KEY is not set")
    assert "publish" in [c.name for c in registry.commands()]


def test_live_checks_read_the_page_and_name_a_missing_component(tmp_path: Path, statusio: SimulatedStatusIo) -> None:
    (ok,) = live_checks(policy(tmp_path), env(statusio))
    assert ok.ok and COMPONENT in ok.text
    bad = live_checks(policy(tmp_path, components=["000000000000000000000000"]), env(statusio))
    assert [c.ok for c in bad] == [False] and "has no component 000000000000000000000000" in bad[0].text
    assert [r.method for r in statusio.requests] == ["GET", "GET"]  # reads only


def test_a_missing_variable_is_one_line_when_the_worker_starts(tmp_path: Path, statusio: SimulatedStatusIo) -> None:
    settings = Settings.from_env({"STATUSIO_API_KEY": "k", "GITLAB_TOKEN": "glpat-abcdefghijklmnopqrst"})
    with pytest.raises(UserError) as err:
        build(settings, policy(tmp_path), None, clock=ManualClock(T0), worker_id="w")
    assert str(err.value).splitlines() == [
        "STATUSIO_API_ID: not set; the policy's integrations.status_page.provider is statusio",
        "STATUSIO_STATUSPAGE_ID: not set; the policy's integrations.status_page.provider is statusio"]
