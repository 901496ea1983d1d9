"""The one action a publish needs, and the neutral name the bot finds again."""

from __future__ import annotations

import pytest

from bot.integrations.statuspage.plan import (
    Draft,
    Recorded,
    incident_key,
    incident_name,
    plan_publish,
    publish_refusals,
)
from tests.statuspage.conftest import GITLAB, KEY, PROJECT, SECRET

A, B = Draft("aaaa1111", "We are investigating."), Draft("bbbb2222", "A fix is deployed.")


@pytest.mark.parametrize(("draft", "all_clear", "recorded", "kind", "remote"), [
    (A, False, Recorded(), "create", None),                                    # first publish
    (A, False, Recorded("r1", "aaaa1111"), "nothing", "r1"),                   # the same digest again
    (B, False, Recorded("r1", "aaaa1111"), "update", "r1"),                    # a new approved digest
    (B, True, Recorded("r1", "aaaa1111"), "resolve", "r1"),                    # all-clear
    (A, True, Recorded("r1", "aaaa1111"), "resolve", "r1"),                    # all-clear, text already posted
    (B, True, Recorded("r1", "bbbb2222", resolved=True), "nothing", "r1"),     # already resolved
    (B, False, Recorded("r1", "aaaa1111", resolved=True), "nothing", "r1"),    # no update after resolution
    (A, True, Recorded(), "resolve", None),                                    # empty database at all-clear
    (B, False, Recorded(None, "aaaa1111"), "update", None),                    # id lost: found again by name
])
def test_the_one_action(draft: Draft, all_clear: bool, recorded: Recorded, kind: str, remote: str | None) -> None:
    action = plan_publish(key=KEY, stem="Security incident update", draft=draft, all_clear=all_clear,
                          recorded=recorded)
    assert (action.kind, action.remote_id) == (kind, remote)
    assert action.text == draft.text and action.digest == draft.digest
    assert action.name == f"Security incident update (ref {KEY})"
    assert action.item_key == ("" if kind == "nothing" else f"{KEY}:{kind}:{draft.digest}")


def test_nothing_says_why() -> None:
    action = plan_publish(key=KEY, stem="S", draft=A, all_clear=False, recorded=Recorded("r1", "aaaa1111"))
    assert action.reason == "draft aaaa1111 is already on the status page"


def test_the_name_and_metadata_hold_only_an_opaque_reference() -> None:
    name = incident_name("Security incident update", KEY)
    assert PROJECT not in name and "42" not in name.replace(KEY, "") and "gitlab" not in name.lower()
    action = plan_publish(key=KEY, stem="Security incident update", draft=A, all_clear=False, recorded=Recorded())
    assert action.metadata == {"incident_bot": {"key": KEY}}


def test_the_reference_is_stable_and_differs_per_incident_and_per_secret() -> None:
    assert incident_key(SECRET, GITLAB, PROJECT, 42) == incident_key(SECRET, GITLAB + "/", PROJECT, 42) == KEY
    others = {incident_key(SECRET, GITLAB, PROJECT, 43), incident_key(SECRET, GITLAB, "other/project", 42),
              incident_key(SECRET, "https://gitlab.com", PROJECT, 42), incident_key("another-secret", GITLAB,
                                                                                      PROJECT, 42)}
    assert KEY not in others and len(others) == 4
    assert len(KEY) == 12 and int(KEY, 16) >= 0


def test_the_reference_needs_a_secret() -> None:
    # Without one, anyone could enumerate project ids and iids and learn which project had the incident.
    with pytest.raises(ValueError, match="needs a secret"):
        incident_key("", GITLAB, PROJECT, 42)


LIVE = ["incident", "live-incident"]


@pytest.mark.parametrize(("labels", "current", "requested", "approved", "findings", "expected"), [
    (LIVE, "aaaa1111", None, True, [], []),
    (LIVE, "aaaa1111", "AAAA1111", True, [], []),
    (LIVE, None, None, False, [], ["the status page child has no `## Draft` section to publish"]),
    (LIVE, "aaaa1111", None, False, [], ["draft aaaa1111 is not approved"]),
    (LIVE, "bbbb2222", "aaaa1111", True, [], ["draft aaaa1111 is not the current draft (current: bbbb2222)"]),
    (LIVE, "bbbb2222", "@all /close", True, [], ["draft ace is not the current draft (current: bbbb2222)"]),
    (["incident"], "aaaa1111", None, True, [],
     ["the incident does not carry ~live-incident (only live site incidents go to the status page)"]),
    (LIVE, "aaaa1111", None, True, ["line 1: a mention (`@alice`)"], ["the draft holds line 1: a mention (`@alice`)"]),
    (["incident"], "aaaa1111", None, False, ["line 2: an e-mail address"],
     ["draft aaaa1111 is not approved",
      "the incident does not carry ~live-incident (only live site incidents go to the status page)",
      "the draft holds line 2: an e-mail address"]),
])
def test_publish_is_refused_with_every_failed_condition(labels: list[str], current: str | None,
                                                        requested: str | None, approved: bool, findings: list[str],
                                                        expected: list[str]) -> None:
    assert publish_refusals(labels=labels, impact_label="live-incident", current_digest=current,
                            requested_digest=requested, approved=approved, findings=findings) == expected
