"""The policy's ``integrations: {pagerduty: ...}`` section as an operator writes it, mistypes it, and sets (or
not) the keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.integrations.pagerduty.config import (
    EXAMPLE_POLICY,
    PagingConfigError,
    When,
    describe,
    events_url,
    parse_paging,
    routing_key,
    routing_keys,
    webhook_secrets,
)
from bot.redact import redact

KEY = "a" * 32
CHANNELS = {"comms-email", "comms-faq", "comms-distribution-list", "comms-blog"}


def bundled():
    return parse_paging(yaml.safe_load(EXAMPLE_POLICY)["integrations"]["pagerduty"], known_channels=CHANNELS)


def test_the_bundled_targets_are_the_plans_two() -> None:
    config = bundled()
    assert [t.id for t in config.targets] == ["support-manager", "marketing-ops"]
    support, marketing = config.targets
    assert support.routing_key_env == "PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER"
    assert support.name == "Support Manager on call"
    assert support.when == When(("critical",), ("comms-email", "comms-faq"))
    assert marketing.routing_key_env == "PAGERDUTY_ROUTING_KEY_MARKETING_OPS"
    assert marketing.when == When(("critical",), ("comms-distribution-list",))


@pytest.mark.parametrize(("severity", "channels", "paged"), [
    ("critical", {"comms-email"}, True),
    ("critical", {"comms-faq", "comms-blog"}, True),
    ("critical", {"comms-blog"}, False),
    ("critical", set(), False),
    ("high", {"comms-email"}, False),
    (None, {"comms-email"}, False),
])
def test_support_manager_conditions(severity, channels, paged) -> None:
    when = bundled().targets[0].when
    assert when is not None and when.holds(severity, channels) is paged


def test_no_section_no_targets() -> None:
    assert parse_paging(None).targets == ()


@pytest.mark.parametrize(("section", "message"), [
    ([], "integrations.pagerduty: expected a mapping, got list"),
    ({"target": []}, "integrations.pagerduty.target: unknown key"),
    ({"targets": {"id": "x"}}, "integrations.pagerduty.targets: expected a list of targets, got dict"),
    ({"targets": [{"name": "X", "routing_key_env": "K"}]}, "integrations.pagerduty.targets[0].id: required"),
    ({"targets": [{"id": "Support Manager", "routing_key_env": "K"}]},
     "integrations.pagerduty.targets[0].id: 'Support Manager' is not an id"),
    ({"targets": [{"id": "sm"}]}, "integrations.pagerduty.targets[0].routing_key_env: required"),
    ({"targets": [{"id": "sm", "routing_key_env": "pd key"}]},
     "integrations.pagerduty.targets[0].routing_key_env: 'pd key' is not an"),
    ({"targets": [{"id": "sm", "routing_key_env": "K"}, {"id": "sm", "routing_key_env": "L"}]},
     "integrations.pagerduty.targets[1].id: 'sm' is listed twice"),
    ({"targets": [{"id": "sm", "routing_key_env": "K", "when": {"severity": ["urgent"]}}]},
     "integrations.pagerduty.targets[0].when.severity: 'urgent' is not one of critical, high, medium, low"),
    ({"targets": [{"id": "sm", "routing_key_env": "K", "when": {"channel": ["comms-email"]}}]},
     "integrations.pagerduty.targets[0].when.channel: unknown key"),
    ({"targets": [{"id": "sm", "routing_key_env": "K", "when": {"channels_any": ["comms-emial"]}}]},
     "integrations.pagerduty.targets[0].when.channels_any: 'comms-emial' is not a channel label of the policy"),
    ({"targets": [{"id": "sm", "routing_key_env": "K", "when": {"channels_any": {"a": 1}}}]},
     "integrations.pagerduty.targets[0].when.channels_any: expected a list of names, got dict"),
])
def test_a_mistyped_section_is_told_in_one_line_naming_the_key(section, message) -> None:
    with pytest.raises(PagingConfigError) as caught:
        parse_paging(section, known_channels=CHANNELS)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_target_without_its_key_is_off_and_check_config_says_so() -> None:
    config = bundled()
    env = {"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER": KEY}
    assert routing_keys(config, env) == {"support-manager": KEY}
    assert describe(config, env) == [
        "paging target support-manager (Support Manager on call): on",
        "paging target marketing-ops (Marketing Ops on call): off (PAGERDUTY_ROUTING_KEY_MARKETING_OPS is not set)",
    ]


def test_the_key_may_come_from_a_file_and_is_then_masked(tmp_path: Path) -> None:
    secret = "f" * 31 + "9"
    (tmp_path / "key").write_text(secret + "\n")
    target = bundled().targets[0]
    assert routing_key(target, {"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER_FILE": str(tmp_path / "key")}) == secret
    assert secret not in redact(f"POST failed with routing_key={secret}")


@pytest.mark.parametrize(("env", "message"), [
    ({"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER": KEY, "PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER_FILE": "/x"},
     "set PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER or PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER_FILE, not both"),
    ({"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER_FILE": "/nonexistent/key"},
     "PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER_FILE=/nonexistent/key: cannot read it"),
    ({"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER": "short"},
     "PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER: a routing key has 32 characters, this one has 5"),
])
def test_a_wrong_key_setting_is_told_in_one_line(env, message) -> None:
    with pytest.raises(PagingConfigError, match=message):
        routing_key(bundled().targets[0], env)


@pytest.mark.parametrize(("value", "expected"), [
    (None, "https://events.pagerduty.com"),
    ("https://events.eu.pagerduty.com/", "https://events.eu.pagerduty.com"),
    ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
])
def test_events_url(value, expected) -> None:
    assert events_url({} if value is None else {"PAGERDUTY_EVENTS_URL": value}) == expected


@pytest.mark.parametrize("value", ["http://events.pagerduty.com", "events.pagerduty.com",
                                   "https://user:pw@events.pagerduty.com"])
def test_events_url_refuses_plain_http_and_credentials(value) -> None:
    with pytest.raises(PagingConfigError, match="PAGERDUTY_EVENTS_URL=") as caught:
        events_url({"PAGERDUTY_EVENTS_URL": value})
    assert ":pw@" not in str(caught.value)


def test_webhook_secrets_current_and_previous(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("current-secret\n")
    env = {"PAGERDUTY_WEBHOOK_SECRET_FILE": str(tmp_path / "s"), "PAGERDUTY_WEBHOOK_SECRET_PREVIOUS": "old-secret"}
    assert webhook_secrets(env) == ["current-secret", "old-secret"]
    assert webhook_secrets({}) == []
    assert "current-secret" not in redact("signed with current-secret")
    with pytest.raises(PagingConfigError, match="PAGERDUTY_WEBHOOK_SECRET_PREVIOUS is set without"):
        webhook_secrets({"PAGERDUTY_WEBHOOK_SECRET_PREVIOUS": "old-secret"})
