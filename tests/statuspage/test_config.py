"""The ``status_page:`` section and the provider settings, as an operator who mistypes them would meet them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from bot.integrations.statuspage.config import (
    StatusIoSettings,
    StatusPageConfigError,
    StatuspageSettings,
    parse_policy,
    read_settings,
)
from bot.integrations.statuspage.settings import ROWS
from bot.redact import redact


def problems(data: object) -> list[str]:
    with pytest.raises(StatusPageConfigError) as err:
        parse_policy(data)
    return err.value.problems


def test_a_status_io_section_with_defaults() -> None:
    policy = parse_policy({"provider": "statusio", "components": ["c1"], "containers": ["k1", "k2"]})
    assert policy is not None
    assert (policy.impact_label, policy.name, policy.component_status, policy.notify) == (
        "live-incident", "Security incident update", "security_event", True)
    assert policy.infrastructure == ["c1-k1", "c1-k2"]


def test_no_section_means_no_status_page() -> None:
    assert parse_policy(None) is None


@pytest.mark.parametrize(("data", "expected"), [
    ({"provider": "status.io", "components": ["c"], "containers": ["k"]},
     ["status_page.provider: must be one of statusio, statuspage, not 'status.io'"]),
    ({"provider": "statusio", "components": ["c"]},
     ["status_page.containers: status.io marks a component in containers; name at least one"]),
    ({"provider": "statuspage", "components": ["c"], "containers": ["k"]},
     ["status_page.containers: only for provider statusio (Statuspage has no containers)"]),
    ({"provider": "statuspage"},
     ["status_page.components: name at least one component id to mark during a live incident"]),
    ({"provider": "statuspage", "components": ["c"], "component_status": "security_event"},
     ["status_page.component_status: must be one of degraded_performance, partial_outage, major_outage, "
      "under_maintenance, not 'security_event'"]),
    ({"provider": "statuspage", "components": ["c"], "allowed_hosts": ["https://status.example.com"]},
     ["status_page.allowed_hosts: not host names: 'https://status.example.com'"]),
    ({"provider": "statuspage", "components": ["c"], "notify": "yes"},
     ["status_page.notify: must be true or false, not 'yes'"]),
    ({"provider": "statuspage", "components": ["c"], "name": "Incident {{ title }}"},
     ["status_page.name: must be plain words (letters, digits, spaces, ,.:()'-; at most 120), "
      "not 'Incident {{ title }}'"]),
    ({"provider": "statuspage", "components": ["c"], "compnents": ["c"]},
     ["status_page.compnents: unknown key (known: provider, impact_label, name, allowed_hosts, components, "
      "containers, component_status, notify)"]),
    ("statusio", ["status_page: must be a mapping with at least `provider:`"]),
])
def test_each_mistake_is_one_line_naming_the_key(data: object, expected: list[str]) -> None:
    assert problems(data) == expected


STATUSIO_ENV = {"STATUSIO_API_ID": "api-id-1", "STATUSIO_API_KEY": "statusio-key-secret-1",
                "STATUSIO_STATUSPAGE_ID": "568d8a3e3cada8c2490000dd"}


def test_status_io_settings_with_the_default_url() -> None:
    assert read_settings("statusio", STATUSIO_ENV) == StatusIoSettings(
        "https://api.status.io/v2/", "api-id-1", "statusio-key-secret-1", "568d8a3e3cada8c2490000dd")


def test_statuspage_settings_key_from_a_file(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("statuspage-key-from-file-9\n")
    settings = read_settings("statuspage", {"STATUSPAGE_API_KEY_FILE": str(key), "STATUSPAGE_PAGE_ID": "pg1",
                                            "STATUSPAGE_API_URL": "https://api.statuspage.io/v1"})
    assert settings == StatuspageSettings("https://api.statuspage.io/v1/", "statuspage-key-from-file-9", "pg1")
    # A key read from a file is not in the environment redaction scans: it is registered when read.
    assert redact("failed with statuspage-key-from-file-9") == "failed with ***"


def test_every_missing_setting_is_its_own_line() -> None:
    with pytest.raises(StatusPageConfigError) as err:
        read_settings("statuspage", {"STATUSPAGE_API_URL": "http://statuspage.example.com/v1/"})
    assert err.value.problems == [
        "STATUSPAGE_API_URL: must use https (the API key travels in a header), not "
        "'http://statuspage.example.com/v1/'",
        "STATUSPAGE_API_KEY: not set; the policy's integrations.status_page.provider is statuspage",
        "STATUSPAGE_PAGE_ID: not set; the policy's integrations.status_page.provider is statuspage"]


def test_a_key_and_its_file_both_set_is_refused() -> None:
    with pytest.raises(StatusPageConfigError, match=r"^set STATUSIO_API_KEY or "
                                                    r"STATUSIO_API_KEY_FILE, not both$"):
        read_settings("statusio", {**STATUSIO_ENV, "STATUSIO_API_KEY_FILE": "/nonexistent"})


def test_an_unreadable_key_file_names_the_variable() -> None:
    with pytest.raises(StatusPageConfigError, match=r"^STATUSIO_API_KEY_FILE=/nonexistent/k: cannot read it "
                                                    r"\(FileNotFoundError\)$"):
        read_settings("statusio", {**STATUSIO_ENV, "STATUSIO_API_KEY": "", "STATUSIO_API_KEY_FILE":
                                   "/nonexistent/k"})


def test_a_loopback_http_url_is_allowed_for_the_simulators() -> None:
    settings = read_settings("statusio", {**STATUSIO_ENV, "STATUSIO_API_URL": "http://127.0.0.1:8099/v2"})
    assert isinstance(settings, StatusIoSettings) and settings.api_url == "http://127.0.0.1:8099/v2/"


class Recording(dict[str, str]):
    """An environment that remembers every name asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)


@pytest.mark.parametrize("provider", ["statusio", "statuspage"])
def test_the_settings_rows_list_every_variable_read(provider: Literal["statusio", "statuspage"]) -> None:
    env = Recording()
    with pytest.raises(StatusPageConfigError):
        read_settings(provider, env)
    rows = {var.name for var in ROWS.values()}
    files = {f"{var.name}_FILE" for var in ROWS.values() if var.secret}
    assert env.asked and env.asked <= rows | files
    assert {n for n in rows if n.startswith(provider.upper() + "_")} <= env.asked
