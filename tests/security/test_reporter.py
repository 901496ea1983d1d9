"""A Reporter edits a child issue's description: its hidden marker, its labels.

Reporters (and anyone with ``update_issue``) can edit a child's description, where the bot's marker
lives, and its labels; children are working documents, so this also happens by accident. They cannot
edit the bot's comments. The bot recognises its children by authorship, then by its own signed
status log, then by a marker it signed for the incident: an edited marker never makes it open a
duplicate, also after a crash and with an empty database, and a link alone (or labels) never makes
an issue one of its children.
"""

from __future__ import annotations

import re

import pytest

from bot.commands.world import World
from bot.core.model import IncidentRef
from bot.gitlab.errors import GitLabCallError
from bot.text.markers import marker, marker_spans

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
REPORTER = "randy-reporter"


@pytest.fixture
def w(w: World) -> World:
    w.sim.state.add_user(REPORTER)
    w.sim.state.add_member(w.project, REPORTER, 20)
    return w


def reconcile(w: World, iid: int, **kw) -> None:
    r = w.reconciler(**kw)  # a fresh process each time: new client, new caches, nothing remembered
    try:
        r.reconcile(IncidentRef(w.project, iid))
    finally:
        r.close()


def child(w: World, channel: str) -> dict:
    return next(c for c in w.children() if channel in c["labels"])


def edit_child_as_reporter(w: World, iid: int, *, description=None, labels=None) -> None:
    issue = w.sim.client(REPORTER).projects.get(w.project, lazy=True).issues.get(iid)
    if description is not None:
        issue.description = description
    if labels is not None:
        issue.labels = labels
    issue.save()


def with_channel(description: str, channel: str) -> str:
    start, end, found = next((s, e, m) for s, e, m in marker_spans(description) if m.kind == "child")
    return description[:start] + marker("child", **{**found.fields, "channel": channel}) + description[end:]


def per_channel(w: World) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in w.children():
        for label in c["labels"]:
            if re.fullmatch(r"comms-[a-z]+", label):
                counts[label] = counts.get(label, 0) + 1
    return counts


def test_a_child_marker_pointed_at_another_channel_opens_no_duplicate(w):
    iid = w.incident(*S1)
    reconcile(w, iid)
    email = child(w, "comms-email")
    edit_child_as_reporter(w, email["iid"], description=with_channel(email["description"], "comms-faq"))
    reconcile(w, iid)
    reconcile(w, iid)
    assert len(w.children()) == 2
    assert per_channel(w) == {"comms-email": 1, "comms-faq": 1}


def test_a_child_without_its_marker_and_channel_label_opens_no_duplicate(w):
    iid = w.incident(*S1)
    reconcile(w, iid)
    email = child(w, "comms-email")
    without_marker = re.sub(r"<!-- incident-bot:child [^\n]*-->", "", email["description"])
    edit_child_as_reporter(w, email["iid"], description=without_marker, labels=["incident-comms"])
    reconcile(w, iid)
    reconcile(w, iid)
    assert len(w.children()) == 2
    assert w.snapshot(iid)["links"] == 2


def test_after_a_crash_and_with_an_empty_database_each_channel_still_has_one_child(w):
    iid = w.incident(*S1)
    reconcile(w, iid)
    # A new channel; the run that opens its child crashes before linking it.
    w.sim.state.set_labels(w.project, iid, [*w.sim.state.get_issue(w.project, iid)["labels"], "comms-blog"])
    w.sim.crash_after_writes(1)
    with pytest.raises(GitLabCallError):
        reconcile(w, iid)
    w.sim.recover()
    # Meanwhile a Reporter makes the email child claim the new channel.
    email = child(w, "comms-email")
    edit_child_as_reporter(w, email["iid"], description=with_channel(email["description"], "comms-blog"))
    reconcile(w, iid)
    reconcile(w, iid)
    assert per_channel(w) == {"comms-email": 1, "comms-faq": 1, "comms-blog": 1}
    assert w.snapshot(iid)["links"] == 3


def test_a_reporter_cannot_edit_or_delete_the_bots_comments(w):
    iid = w.incident(*S1)
    reconcile(w, iid)
    note = w.bot_notes(iid)[0]
    issue = w.sim.client(REPORTER).projects.get(w.project, lazy=True).issues.get(iid, lazy=True)
    with pytest.raises(Exception, match="403"):
        issue.notes.update(note["id"], {"body": "edited"})
    with pytest.raises(Exception, match="403"):
        issue.notes.delete(note["id"])


def test_another_incidents_child_stripped_of_its_marker_and_linked_here_is_not_adopted(w):
    """A Reporter removes the hidden marker from incident A's FAQ child and links it to incident B. The child
    is the bot's, linked, labelled ``incident-comms`` and ``comms-faq``: before, B took it for its own FAQ
    child and never opened one (its FAQ team working on A's text). Now only the bot's signed marker for B,
    or B's own signed record of creating it, makes a child B's."""
    a = w.incident(*S1, title="A")
    reconcile(w, a)
    faq = child(w, "comms-faq")
    without_marker = re.sub(r"<!-- incident-bot:child [^\n]*-->", "", faq["description"])
    edit_child_as_reporter(w, faq["iid"], description=without_marker)
    b = w.incident("severity::1", "comms-faq", title="B")
    issue = w.sim.client(REPORTER).projects.get(w.project, lazy=True).issues.get(b, lazy=True)
    issue.links.create({"target_project_id": w.project_id, "target_issue_iid": faq["iid"]})
    reconcile(w, b)
    reconcile(w, b)
    b_id = w.sim.state.get_issue(w.project, b)["id"]
    own = [c for c in w.children() if f'"incident":{b_id}' in c["description"]]
    assert [("comms-faq" in c["labels"]) for c in own] == [True], "B opened no FAQ child of its own"
    log = "\n".join(n["body"] for n in w.bot_notes(b))
    assert f"opened #{own[0]['iid']}" in log.replace("\\", "")
    assert f"#{faq['iid']} " not in log.replace("\\", ""), "B's log calls A's child its own"
    # A keeps its child: its own status log says so.
    reconcile(w, a)
    assert per_channel(w) == {"comms-email": 1, "comms-faq": 2}
