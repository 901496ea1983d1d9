"""Flagging of quick actions and mentions in what is sent to GitLab."""

from __future__ import annotations

import pytest
from gitlab.v4.objects import Project

from bot.simgitlab import SimulatedGitLab
from bot.simgitlab.hazards import extract_commands, scan_hazards


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in scan_hazards(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/close", [("quick_action", "close")]),
        ("intro\n/label ~x", [("quick_action", "label")]),
        ("/CLOSE", [("quick_action", "CLOSE")]),  # GitLab matches commands case-insensitively
        ("~~~\n/close\n~~~", [("quick_action", "close")]),  # only ``` fences protect a command
        ("/closed", [("command_like", "closed")]),
        ("/etc/passwd", [("command_like", "etc")]),
        ("`/close`", []),
        ("use `/close` to close", []),
        ("```\n/close\n```", []),
        (" /close", []),
        ("    /close", []),
        ("<details>\n/close\n</details>", []),
        (">>>\n/close\n>>>", []),
        ("> /close", []),
    ],
)
def test_quick_action_lines(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    ("text", "handles"),
    [
        ("ping @all", ["all"]),
        ("@here now", ["here"]),
        ("thanks @alice.", ["alice"]),
        ("@gitlab-org/security team", ["gitlab-org/security"]),
        ("&#64;all", ["all"]),  # entities decode before reference filters run
        ("\\\\@bob", ["bob"]),  # an escaped backslash does not escape the @
        ("\\@all", []),
        ("mail security@example.com", []),
        ("`@all`", []),
        ("```\n@all\n```", []),
        ("para\n\n    @all", []),  # indented code block
        ("- item\n\n    @all", ["all"]),  # ...but inside a list it is a paragraph
        ("- item\n\n      @all", []),
    ],
)
def test_mentions(text: str, handles: list[str]) -> None:
    assert [v for k, v in kinds(text) if k == "mention"] == handles


def test_extractor_follows_gitlab_quirks() -> None:
    assert extract_commands("Done.\n/close\n/label ~a b\n") == ("Done.", [("close", ""), ("label", "~a b")])
    assert extract_commands("/shrug oops") == ("oops ¯\\＿(ツ)＿/¯", [("shrug", "oops")])
    assert extract_commands("/cc @alice") == ("/cc @alice", [])  # a no-op GitLab leaves in place
    # GitLab's "inline code" alternative swallows earlier lines when a later line ends in a code span;
    # the extractor honours that, the hazard scan deliberately does not.
    assert extract_commands("a\n/close\nsee `x`")[1] == []
    assert kinds("a\n/close\nsee `x`") == [("quick_action", "close")]


def test_hazards_recorded_from_api_writes(sim: SimulatedGitLab, project: Project) -> None:
    issue = project.issues.create({"title": "t", "description": "Summary\n/close\n`/close` is fine"})
    issue.notes.create({"body": "cc @all and @alice, not \\@bob nor `@carol`"})
    issue.notes.update(issue.notes.create({"body": "ok"}).id, {"body": "fine\n@security-team"})
    hazards = sim.hazards
    assert [(h["field"], h["kind"], h.get("command") or h.get("handle")) for h in hazards] == [
        ("description", "quick_action", "close"),
        ("body", "mention", "all"),
        ("body", "mention", "alice"),
        ("body", "mention", "security-team"),
    ]
    first = hazards[0]
    assert first["method"] == "POST" and first["line"] == "/close" and first["line_no"] == 2
    assert first["path"] == "/api/v4/projects/sec%2Fincidents/issues"
    assert sim.mentions() == ["all", "alice", "security-team"]
    remaining = sim.hazards_except(allowed_mentions=["@alice", "Security-Team"])
    assert [h.get("handle") or h.get("command") for h in remaining] == ["close", "all"]
    sim.reset_log()
    assert sim.hazards == [] and sim.mentions() == []
