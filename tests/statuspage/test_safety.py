"""What may not reach the public status page, as a CMOC pasting a draft would write it."""

from __future__ import annotations

import pytest

from bot.integrations.statuspage.safety import check_draft

ALLOWED = ("status.gitlab.com", "*.gitlab.io")


def findings(text: str) -> list[str]:
    return check_draft(text, gitlab_host="https://gitlab.com", allowed_hosts=ALLOWED)


@pytest.mark.parametrize("text", [
    "We are investigating reports of unexpected behaviour. Next update in 30 minutes.",
    "Updates: https://status.gitlab.com/ and https://docs.gitlab.io/security (allowed hosts).",
    "Release 16.4.1 fixes the issue; customers on 16.4.0 should upgrade.",
    "Contact support through the usual channels.",
    "Version foo@bar is not an address (no domain).",
])
def test_a_clean_draft_has_no_findings(text: str) -> None:
    assert findings(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    # GitLab mentions a user or group after a non-word character (the GFM docs, "Special GitLab references").
    ("Thanks @alice for the fix", ["line 1: a mention (`@alice`)"]),
    ("cc @security-team and @all", ["line 1: a mention (`@security-team`)", "line 1: a mention (`@all`)"]),
    ("Tracked in #12", ["line 1: an issue reference (`#12`)"]),
    ("Fixed by !3", ["line 1: a merge request reference (`!3`)"]),
    ("See gitlab-org/gitlab#44", ["line 1: an issue reference (`gitlab-org/gitlab#44`)"]),
    ("Epic &5", ["line 1: an epic reference (`&5`)"]),
    ("https://gitlab.com/gitlab-org/gitlab/-/issues/1",
     ["line 1: an internal URL (`gitlab.com` is the GitLab instance)"]),
    ("gitlab.com/sec/incidents/-/issues/9", ["line 1: an internal URL (`gitlab.com` is the GitLab instance)"]),
    ("https://grafana.internal.example/d/1",
     ["line 1: a URL to `grafana.internal.example`, which is not on the status page's allowed hosts"]),
    ("https://status.gitlab.com.evil.com/x",
     ["line 1: a URL to `status.gitlab.com.evil.com`, which is not on the status page's allowed hosts"]),
    ("Write to security@gitlab.com", ["line 1: an e-mail address"]),
    ("ok\nping @bob\n", ["line 2: a mention (`@bob`)"]),
    ("   \n", ["the draft is empty"]),
])
def test_each_forbidden_thing_is_found_and_named_in_words(text: str, expected: list[str]) -> None:
    assert findings(text) == expected


def test_an_e_mail_address_is_not_also_reported_as_a_mention_or_a_host() -> None:
    assert findings("reach us at alice@example.com") == ["line 1: an e-mail address"]


def test_a_url_on_the_gitlab_host_is_internal_even_when_the_policy_allows_it() -> None:
    assert check_draft("https://gitlab.com/x", gitlab_host="gitlab.com", allowed_hosts=["gitlab.com"]) == [
        "line 1: an internal URL (`gitlab.com` is the GitLab instance)"]


def test_a_self_managed_instance_is_recognised_by_its_host() -> None:
    assert check_draft("https://gitlab.corp.example/a", gitlab_host="https://gitlab.corp.example:8443/",
                       allowed_hosts=["*.corp.example"]) == [
        "line 1: an internal URL (`gitlab.corp.example` is the GitLab instance)"]


def test_without_an_allow_list_no_link_may_go_out() -> None:
    assert check_draft("https://status.gitlab.com", gitlab_host="gitlab.com") == [
        "line 1: a URL to `status.gitlab.com`, which is not on the status page's allowed hosts"]


def test_a_finding_quotes_nothing_that_could_mention_or_escape_its_code_span() -> None:
    # A hostile draft: the quoted token is cut to the characters the patterns allow.
    assert findings("x @bob`@all https://evil`.example/ y") == [
        "line 1: a URL to `evil`, which is not on the status page's allowed hosts",
        "line 1: a mention (`@bob`)", "line 1: a mention (`@all`)"]
