"""Every payload GitLab really sends parses or is ignored cleanly; routing decides what needs work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.events import Ignored, IssueEvent, NoteEvent, parse_event, parse_time
from bot.core.model import IncidentRef, Issue
from bot.core.routing import route, shown_ref
from tests.conftest import EXAMPLES, SHARED_PAYLOADS
from tests.hypothesis_profiles import examples

OWN = Path(__file__).parent / "payloads"

# file -> (X-Gitlab-Event header, expected event type, expected ref or None)
SHARED = {
    "issue_open.json": ("Issue Hook", IssueEvent, IncidentRef("1", 23)),
    "issue_open_legacy_v11.json": ("Issue Hook", IssueEvent, IncidentRef("1", 23)),
    "incident_open.json": ("Issue Hook", IssueEvent, IncidentRef("80222147", 2)),
    "incident_close.json": ("Issue Hook", IssueEvent, None),
    "confidential_issue.json": ("Confidential Issue Hook", IssueEvent, IncidentRef("5", 1)),
    "note_on_issue.json": ("Note Hook", NoteEvent, IncidentRef("5", 17)),
    "note_on_commit.json": ("Note Hook", Ignored, None),
    "note_on_merge_request.json": ("Note Hook", Ignored, None),
    "note_on_snippet.json": ("Note Hook", Ignored, None),
}


def load(path: Path):
    return json.loads(path.read_text())


def shared(name: str) -> Path:
    return SHARED_PAYLOADS / name


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_payload_parses_or_is_ignored_cleanly(name):
    header, kind, ref = SHARED[name]
    event = parse_event(header, load(shared(name)))
    assert isinstance(event, kind), event
    if ref is not None:
        assert event.ref == ref if isinstance(event, NoteEvent) else event.issue.ref == ref


def test_work_item_and_issue_kinds_of_one_incident_are_the_same_incident():
    opened = parse_event("Issue Hook", load(shared("incident_open.json")))
    closed = parse_event("Issue Hook", load(shared("incident_close.json")))
    assert isinstance(opened, IssueEvent) and isinstance(closed, IssueEvent)
    assert opened.issue.issue_type == "incident" and closed.issue.issue_type == "incident"
    assert opened.issue.ref.project == closed.issue.ref.project
    assert closed.action == "close" and closed.issue.state == "closed"


def test_legacy_payload_without_event_type_or_user_id():
    event = parse_event("Issue Hook", load(shared("issue_open_legacy_v11.json")))
    assert isinstance(event, IssueEvent)
    assert event.actor == "root" and event.issue.labels == {"API"}
    assert event.labels_added == {"Platform"} and event.labels_removed == {"API"}


def test_current_issue_payload_fields():
    event = parse_event("Issue Hook", load(shared("issue_open.json")))
    assert isinstance(event, IssueEvent)
    assert event.issue.severity_field == "high" and event.issue.assignees == ("user1",)
    assert event.issue.id == 301


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("note_on_commit.json", "note on a Commit"),
        ("note_on_merge_request.json", "note on a MergeRequest"),
        ("note_on_snippet.json", "note on a Snippet"),
    ],
)
def test_notes_elsewhere_are_ignored_with_a_reason(name, reason):
    event = parse_event("Note Hook", load(shared(name)))
    assert isinstance(event, Ignored) and reason in event.reason


def test_label_change_on_update(default_config):
    event = parse_event("Issue Hook", load(OWN / "label_change_update.json"))
    assert isinstance(event, IssueEvent)
    assert event.labels_added == {"comms-social"} and event.labels_removed == {"comms-email"}
    assert route(event, default_config) == IncidentRef("42", 12)


def test_note_with_command_routes_to_its_incident(default_config):
    event = parse_event("Note Hook", load(OWN / "note_command.json"))
    assert isinstance(event, NoteEvent) and event.body.startswith("@incident-bot handoff")
    assert route(event, default_config) == IncidentRef("5", 12)


def test_the_bots_own_events_are_ignored(default_config):
    own_note = parse_event("Note Hook", load(OWN / "note_by_bot.json"))
    assert isinstance(route(own_note, default_config), Ignored)
    payload = load(EXAMPLES / "s1-incident.json")
    payload["user"]["username"] = "incident-bot"
    assert route(parse_event("Issue Hook", payload), default_config) == Ignored("event caused by the bot itself")


def test_issue_that_is_not_an_incident_is_ignored(default_config):
    decision = route(parse_event("Issue Hook", load(shared("issue_open.json"))), default_config)
    assert isinstance(decision, Ignored) and "security-incident" in decision.reason


def test_example_incident_routes(default_config):
    event = parse_event(None, load(EXAMPLES / "s1-incident.json"))
    assert route(event, default_config) == IncidentRef("42", 12)


@pytest.mark.parametrize(
    ("header", "payload", "reason"),
    [
        ("Push Hook", {"object_kind": "push"}, "not handled"),
        (None, [], "JSON list"),
        (None, "x", "JSON str"),
        (None, {}, "no object_kind"),
        (None, {"object_kind": "issue"}, "without object_attributes"),
        (None, {"object_kind": "issue", "object_attributes": {"iid": "x"}}, "no valid iid"),
        (None, {"object_kind": "issue", "object_attributes": {"iid": -1, "project_id": 4}}, "no valid iid"),
        (None, {"object_kind": "issue", "object_attributes": {"iid": 3}}, "no project"),
        (None, {"object_kind": "note", "object_attributes": {"noteable_type": "Issue"}}, "without the issue block"),
    ],
)
def test_malformed_payloads_are_ignored_with_a_reason(header, payload, reason):
    event = parse_event(header, payload)
    assert isinstance(event, Ignored) and reason in event.reason


def test_every_shared_payload_with_a_field_removed_never_raises():
    for name, (header, _, _) in SHARED.items():
        payload = load(shared(name))
        for key in list(payload):
            parse_event(header, {k: v for k, v in payload.items() if k != key})
        for key in list(payload.get("object_attributes", {})):
            attrs = {k: v for k, v in payload["object_attributes"].items() if k != key}
            parse_event(header, {**payload, "object_attributes": attrs})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=examples(300), deadline=None)
@given(
    kind=st.sampled_from(["issue", "work_item", "note", "push", 3, None]),
    attrs=json_values,
    rest=st.dictionaries(st.sampled_from(["user", "project", "labels", "changes", "issue", "assignees"]), json_values),
)
def test_parse_event_never_raises_on_any_json(kind, attrs, rest):
    event = parse_event("Issue Hook", {"object_kind": kind, "object_attributes": attrs, **rest})
    assert isinstance(event, IssueEvent | NoteEvent | Ignored)


# Digits of every script (Unicode Nd), superscripts, fractions and other numerals (No, Nl), and numbers far
# beyond any id: ``str.isdigit`` accepts some that ``int()`` refuses, ``int()`` refuses over 4,300 digits.
numeric_strings = (
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=30)
    | st.integers(min_value=1, max_value=6000).map(lambda n: "7" * n)
    | st.integers(min_value=2**63 - 2).map(str)
)
huge_or_odd_ids = numeric_strings | st.integers(min_value=2**63 - 2) | st.integers(max_value=0) | st.floats()


@settings(max_examples=examples(300), deadline=None)
@given(
    header=st.sampled_from(["Issue Hook", "Note Hook"]),
    field=st.sampled_from(["iid", "id", "project_id"]),
    where=st.sampled_from(["object_attributes", "issue", "project"]),
    value=huge_or_odd_ids,
)
def test_parse_event_never_raises_on_odd_numbers(header, field, where, value):
    payload = {
        "object_kind": "note" if header == "Note Hook" else "issue",
        "project": {"id": 1, "path_with_namespace": "g/p"},
        "object_attributes": {"iid": 3, "id": 4, "noteable_type": "Issue", "note": "x"},
        "issue": {"iid": 3, "id": 5},
    }
    payload[where][field] = value
    event = parse_event(header, payload)
    assert isinstance(event, IssueEvent | NoteEvent | Ignored)
    if isinstance(event, IssueEvent | NoteEvent):
        ref = event.issue.ref if isinstance(event, IssueEvent) else event.ref
        assert 0 < ref.iid < 2**63


@pytest.mark.parametrize(
    "text", ["2026-05-28T05:04:31.155Z", "2015-05-17 17:06:40 UTC", "2013-12-03T17:15:43Z", "2017-09-15 16:50:55 UTC"]
)
def test_parse_time_understands_gitlabs_formats(text):
    assert parse_time(text) is not None and parse_time(text).tzinfo is not None


def test_a_huge_comment_of_blank_lines_routes_in_linear_time(default_config):
    import time

    note = json.loads((OWN / "note_command.json").read_text())
    note["issue"]["labels"] = []
    note["object_attributes"]["note"] = "\n" * 1_000_000 + "x"
    start = time.perf_counter()
    decision = route(parse_event("Note Hook", note), default_config)
    assert isinstance(decision, Ignored)
    assert time.perf_counter() - start < 10.0, "quadratic scanning of blank lines (minutes, not milliseconds)"


def test_an_incident_is_shown_by_its_path_when_the_payload_has_one() -> None:
    with_path = IssueEvent(Issue(IncidentRef("42", 12), project_path="acme/sec"), "open", "alice")
    without = IssueEvent(Issue(IncidentRef("42", 12)), "open", "alice")
    assert shown_ref(with_path, IncidentRef("42", 12)) == "acme/sec#12"
    assert shown_ref(without, IncidentRef("42", 12)) == "42#12"
