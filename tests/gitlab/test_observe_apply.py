"""Observe and apply against the in-process fake GitLab (``tests/fakegitlab.py``), table by table.

Each case is a GitLab state and what the bot must make of it (children, commands, status updates, and the
reads that cost), or a list of actions and the writes GitLab must receive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from bot.commands.world import configured_users
from bot.config import Config
from bot.core.actions import Action, CreateChild, LinkChild, PostNote, UpdateIncident, UpsertChecklist
from bot.core.model import IncidentRef, Observed
from bot.gitlab.apply import GitLabApplier
from bot.gitlab.observe import find_orphans, observe
from bot.gitlab.remit import Remit
from bot.reconciler import Reconciler
from bot.text.markers import StateKey
from bot.text.templates import TemplateRenderer
from tests.fakegitlab import FakeGitLab

KEY = StateKey(b"observe-apply-test-key-0123456789")
S1 = ("severity::1", "data-breach", "comms-email", "comms-faq", "comms-blog")
CHANNELS = {"comms-email", "comms-faq", "comms-blog"}


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


@pytest.fixture
def gl(default_config: Config) -> Iterator[FakeGitLab]:
    fake = FakeGitLab(bot=default_config.bot.username)
    for name in sorted(configured_users(default_config) - {default_config.bot.username}):
        fake.add_user(name, 30)
    yield fake
    _REMITS.pop(id(fake), None)


_REMITS: dict[int, Remit] = {}


def reconciler(gl: FakeGitLab, cfg: Config) -> Reconciler:
    """A reconciler on the fake, its project the incident scope; the remit's answer is cached per fake, as per
    process in production."""
    remit = _REMITS.setdefault(id(gl), Remit(cfg.bot.username, [gl.project]))
    return Reconciler(cfg, TemplateRenderer([cfg.template_dir]), gl, key=KEY, remit=remit)


def reconcile(gl: FakeGitLab, cfg: Config, iid: int) -> None:
    r = reconciler(gl, cfg)
    try:
        r.reconcile(IncidentRef(gl.project, iid))
    finally:
        r.close()


def incident(gl: FakeGitLab, cfg: Config, *labels: str) -> int:
    return gl.add_issue(labels=(cfg.labels.trigger, *labels)).ref.iid


def converged(gl: FakeGitLab, cfg: Config) -> int:
    iid = incident(gl, cfg, *S1)
    reconcile(gl, cfg, iid)
    gl.reset_counts()
    return iid


def look(gl: FakeGitLab, cfg: Config, iid: int, pool: ThreadPoolExecutor) -> Observed:
    return observe(gl, IncidentRef(gl.project, iid), cfg, cfg.bot.username, pool, key=KEY)


# ---- the whole loop ----------------------------------------------------------------------------------
def test_a_new_incident_costs_the_lower_bound_of_writes_and_a_second_look_three_reads(gl, default_config):
    iid = incident(gl, default_config, *S1)
    reconcile(gl, default_config, iid)
    kinds = [w[0] for w in gl.writes]
    # The checklist is a comment; the status log starts its thread.
    expected = ["create_issue"] * 3 + ["link"] * 3 + ["update_issue", "create_note", "start_thread"]
    assert sorted(kinds) == sorted(expected)
    created = {w[2] for w in gl.writes if w[0] == "create_issue"}
    assert {tuple(sorted(CHANNELS & set(labels))) for labels in created} == {(c,) for c in CHANNELS}
    assert all(w[4] is True for w in gl.writes if w[0] == "create_issue"), "children are confidential"
    gl.reset_counts()
    reconcile(gl, default_config, iid)
    assert gl.writes == []
    assert gl.calls == {"get_issue": 1, "links": 1, "notes": 1}


# ---- children: which linked or unlinked issues are the bot's ------------------------------------------
@dataclass(frozen=True)
class ChildCase:
    name: str
    change: Callable[[FakeGitLab, int, dict[str, int]], None]  # (fake, incident iid, channel -> child iid)
    linked: set[str]  # channels observe finds among the links
    adopted: set[str]  # channels find_orphans adds, unlinked
    searches: int  # find_issues calls by find_orphans


def _unlink(channel: str) -> Callable[[FakeGitLab, int, dict[str, int]], None]:
    return lambda gl, iid, kids: gl.unlink(iid, kids[channel])


def _blank(channel: str) -> Callable[[FakeGitLab, int, dict[str, int]], None]:
    return lambda gl, iid, kids: gl.edit_issue(kids[channel], description="")


def _unlink_and_blank(channel: str) -> Callable[[FakeGitLab, int, dict[str, int]], None]:
    def change(gl: FakeGitLab, iid: int, kids: dict[str, int]) -> None:
        _unlink(channel)(gl, iid, kids)
        _blank(channel)(gl, iid, kids)

    return change


def _strangers_twin(channel: str) -> Callable[[FakeGitLab, int, dict[str, int]], None]:
    """Someone unlinks the child and links their own issue, labelled like it."""

    def change(gl: FakeGitLab, iid: int, kids: dict[str, int]) -> None:
        gl.unlink(iid, kids[channel])
        gl.add_user("mallory", 30)
        twin = gl.add_issue("FAQ", labels=("incident-comms", channel), author="mallory", issue_type="issue")
        gl.link(IncidentRef(gl.project, iid), twin.ref)

    return change


CHILD_CASES = [
    ChildCase("untouched", lambda gl, iid, kids: None, CHANNELS, set(), 0),
    ChildCase("marker edited away", _blank("comms-faq"), CHANNELS, set(), 0),
    ChildCase("unlinked (a crash before the link)", _unlink("comms-faq"), CHANNELS - {"comms-faq"}, {"comms-faq"}, 1),
    ChildCase(
        "unlinked, marker edited away", _unlink_and_blank("comms-faq"), CHANNELS - {"comms-faq"}, {"comms-faq"}, 1
    ),
    ChildCase(
        "a stranger's twin linked instead", _strangers_twin("comms-faq"), CHANNELS - {"comms-faq"}, {"comms-faq"}, 1
    ),
    ChildCase(
        "two unlinked",
        lambda gl, iid, kids: [gl.unlink(iid, kids[c]) for c in ("comms-faq", "comms-blog")],
        {"comms-email"},
        {"comms-faq", "comms-blog"},
        1,
    ),
]


@pytest.mark.parametrize("case", CHILD_CASES, ids=lambda c: c.name)
def test_children_are_recognised_by_link_log_and_signature(gl, default_config, pool, case):
    cfg = default_config
    iid = converged(gl, cfg)
    kids = {ch: i for i, issue in gl.issues.items() for ch in CHANNELS if ch in issue.labels and issue.author == gl.bot}
    case.change(gl, iid, kids)
    gl.reset_counts()
    observed = look(gl, cfg, iid, pool)
    assert set(observed.children) == case.linked
    assert all(c.linked for c in observed.children.values())
    r = reconciler(gl, cfg)
    try:
        desired, _ = r._observe(gl, IncidentRef(gl.project, iid))
    finally:
        r.close()
    gl.reset_counts()
    found = find_orphans(gl, observed, desired, cfg, gl.bot)
    assert gl.calls["find_issues"] == case.searches
    adopted = {ch for ch, c in found.children.items() if not c.linked}
    assert adopted == case.adopted
    assert {ch: c.iid for ch, c in found.children.items()} == {ch: kids[ch] for ch in case.linked | case.adopted}


def test_an_unlinked_child_is_linked_again_and_nothing_else_is_written(gl, default_config):
    iid = converged(gl, default_config)
    faq = next(i for i, issue in gl.issues.items() if "comms-faq" in issue.labels and issue.author == gl.bot)
    gl.unlink(iid, faq)
    reconcile(gl, default_config, iid)
    assert gl.writes == [("link", iid, faq)]


@pytest.mark.parametrize(
    ("author", "labels"),
    [
        ("incident-bot", ("incident-comms", "comms-faq")),  # the bot's, with a child's labels: still not proof
        ("incident-bot", ("incident-comms", "comms-faq", "comms-blog")),
        ("sec-oncall", ("incident-comms", "comms-faq")),  # a person's issue is never a child
    ],
)
def test_a_linked_issue_without_a_signed_marker_or_record_is_no_child(gl, default_config, pool, author, labels):
    """Labels and a link are anyone's to set: only the bot's signed marker or its signed log makes a child."""
    iid = incident(gl, default_config, *S1)
    other = gl.add_issue("FAQ", labels=labels, author=author, issue_type="issue")
    gl.link(IncidentRef(gl.project, iid), other.ref)
    gl.reset_counts()
    observed = look(gl, default_config, iid, pool)
    assert set(observed.children) == set()
    assert gl.reads == 3


@pytest.mark.parametrize(
    "marker",
    [
        "",
        '<!-- incident-bot:child {"channel":"comms-faq","incident":INCIDENT} -->',  # unsigned
        '<!-- incident-bot:child {"channel":"comms-faq","incident":INCIDENT,"mac":"' + "0" * 64 + '"} -->',  # forged
    ],
    ids=["no marker", "unsigned marker", "forged signature"],
)
def test_an_unlinked_issue_of_the_bot_without_its_signature_is_not_adopted(gl, default_config, marker):
    iid = incident(gl, default_config, "severity::1", "comms-faq")
    description = marker.replace("INCIDENT", str(gl.issues[iid].id)) + "\nCustomer FAQ"
    forged = gl.add_issue("FAQ", labels=("incident-comms", "comms-faq"), author=gl.bot, description=description)
    reconcile(gl, default_config, iid)
    assert ("link", iid, forged.ref.iid) not in gl.writes
    assert [w[0] for w in gl.writes].count("create_issue") == 1


# ---- commands: who may steer the bot, and what it costs to know ---------------------------------------
@dataclass(frozen=True)
class CommandCase:
    name: str
    author: str
    level: int
    state: str
    body: str
    expected: list[tuple[str, bool, bool | None]]  # (command, allowed, target exists)
    level_reads: int
    allow: tuple[str, ...] = ()


COMMAND_CASES = [
    CommandCase("developer", "dev", 30, "active", "@incident-bot status", [("status", True, None)], 1),
    CommandCase("maintainer", "mae", 40, "active", "@incident-bot status", [("status", True, None)], 1),
    CommandCase("guest", "gus", 10, "active", "@incident-bot status", [("status", False, None)], 1),
    CommandCase("not a member", "otto", 0, "active", "@incident-bot status", [("status", False, None)], 1),
    CommandCase("banned developer", "ban", 30, "banned", "@incident-bot status", [("status", False, None)], 0),
    CommandCase("blocked maintainer", "blo", 40, "blocked", "@incident-bot status", [("status", False, None)], 0),
    CommandCase(
        "allow-listed guest", "gus", 10, "active", "@incident-bot status", [("status", True, None)], 0, allow=("gus",)
    ),
    CommandCase(
        "handoff to a user",
        "dev",
        30,
        "active",
        "@incident-bot handoff seoc @secops-oncall",
        [("handoff", True, True)],
        1,
    ),
    CommandCase(
        "handoff to nobody", "dev", 30, "active", "@incident-bot handoff seoc @ghost", [("handoff", True, False)], 1
    ),
    CommandCase(
        "handoff by a guest", "gus", 10, "active", "@incident-bot handoff seoc @gus", [("handoff", False, None)], 1
    ),
    CommandCase("shown as code", "dev", 30, "active", "    @incident-bot status", [], 0),
    CommandCase("quoted", "dev", 30, "active", "> @incident-bot status", [], 0),
    CommandCase("not addressed to the bot", "dev", 30, "active", "@incident-bots status", [], 0),
    CommandCase("the bot's own comment", "incident-bot", 40, "active", "@incident-bot status", [], 0),
]


@pytest.mark.parametrize("case", COMMAND_CASES, ids=lambda c: c.name)
def test_commands_are_checked_against_the_authors_access(gl, default_config, pool, case):
    cfg = default_config
    if case.allow:
        cfg = cfg.model_copy(update={"bot": cfg.bot.model_copy(update={"allow_commands_from": list(case.allow)})})
    iid = converged(gl, cfg)
    if case.author.lower() not in gl.users:
        gl.add_user(case.author, case.level, case.state)
    gl.add_note(iid, case.author, case.body)
    observed = look(gl, cfg, iid, pool)
    assert [(c.name, c.allowed, c.target_exists) for c in observed.commands] == case.expected
    assert gl.calls["access_level"] == case.level_reads
    assert gl.reads == 3 + case.level_reads + sum(1 for *_, t in case.expected if t is not None)


# ---- status updates: whose count ------------------------------------------------------------------------
def six_points(cfg: Config) -> str:
    return "\n".join(f"**{point}:** written by hand" for point in cfg.status_update_points)


@pytest.mark.parametrize(
    ("author", "level", "state", "counts", "level_reads"),
    [
        ("rae", 20, "active", True, 1),  # a Reporter
        ("dev", 30, "active", True, 1),
        ("gus", 10, "active", False, 1),  # a Guest
        ("otto", 0, "active", False, 1),  # not a member
        ("ban", 20, "banned", False, 0),
        ("HOLDER", 0, "active", True, 0),  # whoever holds a role: no check
    ],
)
def test_a_status_update_counts_from_a_reporter_or_a_role_holder(
    gl, default_config, pool, author, level, state, counts, level_reads
):
    iid = converged(gl, default_config)
    if author == "HOLDER":
        author = sorted(look(gl, default_config, iid, pool).state.roles.values())[0]
        gl.users[author.lower()].level = 0
        gl.reset_counts()
    else:
        gl.add_user(author, level, state)
    note = gl.add_note(iid, author, six_points(default_config))
    observed = look(gl, default_config, iid, pool)
    assert [n.id for n in observed.updates] == ([note.id] if counts else [])
    assert gl.calls["access_level"] == level_reads
    gl.reset_counts()
    again = look(gl, default_config, iid, pool)
    assert [n.id for n in again.updates] == [n.id for n in observed.updates]
    assert gl.calls["access_level"] == 0, "judged once per process"


def test_an_update_with_empty_points_is_no_update(gl, default_config, pool):
    iid = converged(gl, default_config)
    gl.add_user("rae", 20)
    gl.add_note(iid, "rae", "\n".join(f"**{p}:**" for p in default_config.status_update_points))
    observed = look(gl, default_config, iid, pool)
    assert observed.updates == ()
    assert gl.reads == 3


# ---- apply: actions in, writes out ---------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyCase:
    name: str
    actions: list[Action]
    writes: list[tuple[Any, ...]]
    warnings: list[str]


FAQ_LABELS = ("comms-faq", "incident-comms")
APPLY_CASES = [
    ApplyCase(
        "create a child",
        [CreateChild("comms-faq", "FAQ", "body", FAQ_LABELS, "comms-oncall")],
        [("create_issue", "FAQ", FAQ_LABELS, ("comms-oncall",), True)],
        [],
    ),
    ApplyCase(
        "create a child for an unknown assignee",
        [CreateChild("comms-faq", "FAQ", "body", FAQ_LABELS, "ghost")],
        [("create_issue", "FAQ", FAQ_LABELS, (), True)],
        ["could not assign"],
    ),
    ApplyCase(
        "create a child for nobody",
        [CreateChild("comms-faq", "FAQ", "body", FAQ_LABELS, None)],
        [("create_issue", "FAQ", FAQ_LABELS, (), True)],
        [],
    ),
    ApplyCase("link", [LinkChild("comms-faq", "acme/security-incidents", 7)], [("link", 1, 7)], []),
    ApplyCase("update with nothing to change", [UpdateIncident()], [], []),
    ApplyCase(
        "assign and label",
        [UpdateIncident(assign="sec-oncall", add_labels=("comms::investigating",))],
        [("update_issue", ("sec-oncall",), ("comms::investigating",))],
        [],
    ),
    ApplyCase("assign an unknown user", [UpdateIncident(assign="ghost")], [], ["could not assign"]),
    ApplyCase("post the checklist", [UpsertChecklist("checklist")], [("create_note", False)], []),
    ApplyCase("update the checklist", [UpsertChecklist("checklist", note_id=1)], [("update_note", 1)], []),
    ApplyCase(
        "the checklist was deleted",
        [UpsertChecklist("checklist", note_id=99)],
        [("update_note", 99), ("create_note", False)],
        [],
    ),
    ApplyCase("an internal reply", [PostNote("reply", "ok", internal=True)], [("create_note", True)], []),
    ApplyCase("a reply in its thread", [PostNote("reply", "ok", thread="d1")], [("reply_in_thread", "d1")], []),
    ApplyCase(
        "the command's thread was deleted: a top-level reply, internal as the command was",
        [PostNote("reply", "ok", internal=True, thread="gone")],
        [("create_note", True)],
        [],
    ),
    ApplyCase("the log's first entry", [PostNote("log", "log", starts_thread=True)], [("start_thread", False)], []),
    ApplyCase("a status log entry", [PostNote("log", "log", thread="d1")], [("reply_in_thread", "d1")], []),
    ApplyCase(
        "the status log thread was deleted: a new one",
        [PostNote("log", "log", thread="gone")],
        [("start_thread", False)],
        [],
    ),
    ApplyCase("a reminder is top-level", [PostNote("reminder", "due")], [("create_note", False)], []),
    ApplyCase(
        "a round of two",
        [PostNote("log", "log", starts_thread=True), LinkChild("comms-faq", "acme/security-incidents", 7)],
        [("start_thread", False), ("link", 1, 7)],
        [],
    ),
]


@pytest.mark.parametrize("case", APPLY_CASES, ids=lambda c: c.name)
def test_each_action_is_the_smallest_write(gl, default_config, pool, case):
    iid = incident(gl, default_config, "severity::3")
    assert iid == 1
    gl.add_note(iid, gl.bot, "an earlier checklist")  # note 1
    observed = look(gl, default_config, iid, pool)
    gl.reset_counts()
    results = GitLabApplier(gl, pool, bot=gl.bot).apply(case.actions, observed)
    assert sorted(gl.writes, key=repr) == sorted(case.writes, key=repr)
    warnings = [w for r in results for w in r.warnings]
    assert len(warnings) == len(case.warnings)
    assert all(want in got for want, got in zip(case.warnings, warnings, strict=True))
    assert [r.action for r in results] == case.actions
