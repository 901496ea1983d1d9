"""A Maintainer edits what the bot wrote: the checklist's hidden state, and the bot's replies.

In GitLab a comment's body can be edited or deleted by its author and by Maintainers, Owners and
administrators (``admin_note``), so a Maintainer can rewrite the bot's checklist, hidden marker
included, and delete its replies; a Developer cannot. Every edit here goes through the REST API as
the Maintainer, so the simulator's permission checks apply. The bot must believe only state it
signed itself: a forged marker is reverted and reported once; ticked boxes stay ticked; a command
whose reply was deleted is never handled again.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands.world import World
from bot.core.bodies import logged_keys
from bot.statekey import derived_key
from bot.text.markers import StateKey, find_marker, marker, marker_spans, signed_marker
from tests.conftest import at, look

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
MAINTAINER = "mallory-maint"


@pytest.fixture
def w(w: World) -> World:
    w.sim.state.add_user(MAINTAINER)
    w.sim.state.add_member(w.project, MAINTAINER, 40)
    return w



def checklist(w: World, iid: int) -> dict[str, Any]:
    return next(n for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])


def edit_as(w: World, user: str, iid: int, note_id: int, body: str) -> None:
    issue = w.sim.client(user).projects.get(w.project, lazy=True).issues.get(iid, lazy=True)
    issue.notes.update(note_id, {"body": body})


def forge(w: World, iid: int, change) -> None:
    """As the Maintainer, rewrite the checklist's hidden marker with ``change(fields)`` applied."""
    note = checklist(w, iid)
    body = note["body"]
    start, end, found = next((s, e, m) for s, e, m in marker_spans(body) if m.kind == "checklist")
    fields = {k: (dict(v) if isinstance(v, dict) else v) for k, v in found.fields.items()}
    change(fields)
    edit_as(w, MAINTAINER, iid, note["id"], body[:start] + marker("checklist", **fields) + body[end:])


def tamper_reports(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid) if "hidden state" in n["body"]]


def role_line(body: str, role: str) -> str:
    return next(line for line in body.replace("\\", "").splitlines() if f"({role})" in line)


def test_a_forged_simoc_in_the_checklist_marker_is_reverted_and_reported_once(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    forge(w, iid, lambda f: f["roles"].update(simoc=MAINTAINER))
    at(clock, "09:05")
    look(w, clock, iid)
    body = checklist(w, iid)["body"]
    assert "@sec-incident-manager" in role_line(body, "SIMOC")
    assert MAINTAINER not in body.replace("\\", "")
    look(w, clock, iid)
    look(w, clock, iid)
    reports = tamper_reports(w, iid)
    assert len(reports) == 1, reports
    assert "someone other than the bot" in reports[0]


def test_a_group_path_forged_as_seoc_is_not_mentioned_or_assigned(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    forge(w, iid, lambda f: f["roles"].update(seoc="acme/everyone"))
    look(w, clock, iid)
    body = checklist(w, iid)["body"]
    assert "@sec-oncall" in role_line(body, "SEOC")
    assert "everyone" not in "\n".join(n["body"] for n in w.bot_notes(iid))
    assert [a["username"] for a in w.sim.state.get_issue(w.project, iid)["assignees"]] == ["sec-oncall"]
    assert len(tamper_reports(w, iid)) == 1


def test_a_snooze_forged_until_2099_does_not_silence_reminders(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)  # 09:00: engaged, the first update is due at 10:00
    at(clock, "09:30")
    forge(w, iid, lambda f: f.update(snoozed_until="2099-01-01T00:00:00+00:00"))
    look(w, clock, iid)
    assert "2099" not in checklist(w, iid)["body"]
    at(clock, "10:05")
    look(w, clock, iid)
    reminders = [n for n in w.bot_notes(iid) if "Status update due" in n["body"]]
    assert len(reminders) == 1
    assert len(tamper_reports(w, iid)) == 1


def test_a_marker_copied_from_another_incident_is_not_believed(w, clock):
    first, second = w.incident(*S1, title="first"), w.incident(*S1, title="second")
    look(w, clock, first)
    look(w, clock, second)
    # A legitimate hand-off on the second incident: its marker is genuine, for the second incident.
    w.sim.state.add_note(w.project, second, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    look(w, clock, second)
    genuine = find_marker(checklist(w, second)["body"], "checklist")
    assert genuine is not None and genuine.fields["roles"]["simoc"] == "secops-oncall"
    forge(w, first, lambda f: (f.clear(), f.update(genuine.fields)))
    look(w, clock, first)
    assert "@sec-incident-manager" in role_line(checklist(w, first)["body"], "SIMOC")
    assert len(tamper_reports(w, first)) == 1


def test_putting_back_an_older_genuine_marker_does_not_undo_a_handoff(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    before = find_marker(checklist(w, iid)["body"], "checklist")
    w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    look(w, clock, iid)
    forge(w, iid, lambda f: (f.clear(), f.update(before.fields)))
    look(w, clock, iid)
    assert "@secops-oncall" in role_line(checklist(w, iid)["body"], "SIMOC")
    assert len(tamper_reports(w, iid)) == 1


def test_ticking_boxes_is_not_tampering_and_ticks_survive_a_revert(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    note = checklist(w, iid)
    ticked = note["body"].replace("- [ ]", "- [x]", 1)
    edit_as(w, MAINTAINER, iid, note["id"], ticked)
    look(w, clock, iid)
    assert tamper_reports(w, iid) == []
    assert checklist(w, iid)["body"].count("- [x]") == 1
    # Tick another box and forge the marker in the same edit: the marker is reverted, both ticks stay.
    forge(w, iid, lambda f: f["roles"].update(cmoc=MAINTAINER))
    note = checklist(w, iid)
    edit_as(w, MAINTAINER, iid, note["id"], note["body"].replace("- [ ]", "- [x]", 1))
    look(w, clock, iid)
    body = checklist(w, iid)["body"]
    assert body.count("- [x]") == 2
    assert "@comms-oncall" in role_line(body, "CMOC")
    assert len(tamper_reports(w, iid)) == 1


def test_a_developer_cannot_edit_the_bots_checklist(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    note = checklist(w, iid)
    with pytest.raises(Exception, match="403"):
        edit_as(w, "sec-oncall", iid, note["id"], note["body"].replace("- [ ]", "- [x]", 1))


def test_deleting_the_bots_reply_never_replays_an_old_handoff(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:10")
    old = w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    look(w, clock, iid)
    at(clock, "11:00")
    w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @sec-incident-manager", author="sec-oncall")
    look(w, clock, iid)
    reply = next(n for n in w.bot_notes(iid) if f"cmd:{old['id']}" in logged_keys(n["body"]))
    issue = w.sim.client(MAINTAINER).projects.get(w.project, lazy=True).issues.get(iid, lazy=True)
    issue.notes.delete(reply["id"])
    at(clock, "11:30")
    look(w, clock, iid)
    look(w, clock, iid)
    assert "@sec-incident-manager" in role_line(checklist(w, iid)["body"], "SIMOC")
    again = [n for n in w.bot_notes(iid) if f"cmd:{old['id']}" in logged_keys(n["body"])]
    assert again == [], "the old command was answered again"


def test_an_incident_from_before_markers_were_signed_takes_the_seoc_from_the_assignee(w, clock):
    """An earlier version wrote unsigned markers and no signed copies: nothing recorded is believed."""
    iid = w.incident(*S1)
    look(w, clock, iid)
    for note in w.bot_notes(iid):  # what the earlier version had written
        body = note["body"]
        for start, end, found in reversed(marker_spans(body)):
            if found.kind == "state":
                body = body[:start].rstrip(" ") + body[end:]
            elif found.kind == "checklist":
                fields = {k: v for k, v in found.fields.items() if k not in ("mac", "rev")}
                fields["roles"] = {**fields["roles"], "simoc": MAINTAINER}
                body = body[:start] + marker("checklist", **fields) + body[end:]
        w.sim.state.edit_note_body(w.project, iid, note["id"], body, actor=w.cfg.bot.username)
    w.sim.state.update_issue(w.project, iid, assignees=["secops-oncall"])
    look(w, clock, iid)
    look(w, clock, iid)
    body = checklist(w, iid)["body"]
    assert "@secops-oncall" in role_line(body, "SEOC")
    assert "@sec-incident-manager" in role_line(body, "SIMOC")
    reports = tamper_reports(w, iid)
    assert len(reports) == 1 and "not signed" in reports[0]


def test_removing_the_marker_keeps_one_checklist_and_the_handoff(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    look(w, clock, iid)
    note = checklist(w, iid)
    start, end, _ = next((s, e, m) for s, e, m in marker_spans(note["body"]) if m.kind == "checklist")
    edit_as(w, MAINTAINER, iid, note["id"], note["body"][:start] + note["body"][end:])
    look(w, clock, iid)
    assert len([n for n in w.bot_notes(iid) if "communications checklist" in n["body"]]) == 1
    assert "@secops-oncall" in role_line(checklist(w, iid)["body"], "SIMOC")
    assert len(tamper_reports(w, iid)) == 1


def test_deleting_the_checklist_brings_it_back_with_the_handoff(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    look(w, clock, iid)
    issue = w.sim.client(MAINTAINER).projects.get(w.project, lazy=True).issues.get(iid, lazy=True)
    issue.notes.delete(checklist(w, iid)["id"])
    look(w, clock, iid)
    assert w.snapshot(iid)["checklists"] == 1
    assert "@secops-oncall" in role_line(checklist(w, iid)["body"], "SIMOC")


# ---- the keys of the bot's comments (``bot/core/records.py``) ------------------------------------------


def began(w: World, iid: int, engagement: str) -> str:
    found = find_marker(checklist(w, iid)["body"], "checklist")
    assert found is not None
    return str(found.fields["began"][engagement])


def append_keys(w: World, iid: int, keys: list[str], note: dict[str, Any] | None = None) -> None:
    """As the Maintainer, append a hidden log marker with ``keys`` to one of the bot's comments."""
    note = note or w.bot_notes(iid)[-1]
    edit_as(w, MAINTAINER, iid, note["id"], note["body"] + "\n" + marker("log", keys=keys))


def record_reports(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid) if "hidden record of the bot" in n["body"]]


def test_reminder_keys_appended_to_a_bots_comment_do_not_silence_reminders_and_are_reported_once(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)  # 09:00: the Sr. Director's updates are due hourly from now
    start = began(w, iid, "sr-director-security")
    windows = [f"reminder:{e}:{start}:{k}" for e in ("sr-director-security", "e-group") for k in range(1, 9)]
    append_keys(w, iid, windows)
    at(clock, "10:05")
    look(w, clock, iid)
    look(w, clock, iid)
    reminders = [n for n in w.bot_notes(iid) if "Status update due" in n["body"]]
    assert len(reminders) == 1 and "Sr. Director of Security" in reminders[0]["body"].replace("\\", "")
    reports = record_reports(w, iid)
    assert len(reports) == 1, reports
    assert "someone other than the bot" in reports[0]


def test_a_key_added_inside_a_signed_record_breaks_its_signature_and_is_reported_once(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "10:05")
    look(w, clock, iid)  # the first reminder
    start = began(w, iid, "sr-director-security")
    reminder = next(n for n in w.bot_notes(iid) if "Status update due" in n["body"])
    body = reminder["body"]
    s, e, found = next((s, e, m) for s, e, m in marker_spans(body) if m.kind == "log")
    fields = {**found.fields, "keys": [*found.fields["keys"], f"reminder:sr-director-security:{start}:2"]}
    edit_as(w, MAINTAINER, iid, reminder["id"], body[:s] + marker("log", **fields) + body[e:])
    at(clock, "11:05")
    look(w, clock, iid)
    look(w, clock, iid)
    due = [n["body"] for n in w.bot_notes(iid) if "Status update due" in n["body"]]
    assert len(due) == 2  # window 2 is reminded all the same
    assert len(record_reports(w, iid)) == 1


def test_a_commands_key_appended_to_a_bots_comment_does_not_swallow_the_command(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:10")
    cmd = w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    append_keys(w, iid, [f"cmd:{cmd['id']}"])
    look(w, clock, iid)
    look(w, clock, iid)
    assert "@secops-oncall" in role_line(checklist(w, iid)["body"], "SIMOC")
    assert len([n for n in w.bot_notes(iid) if f"cmd:{cmd['id']}" in logged_keys(n["body"])]) == 2  # forged + reply
    assert len(record_reports(w, iid)) == 1


# ---- an incident the earlier version ran (unsigned keys): upgraded without duplicates -------------------


def as_written_by_the_earlier_version(w: World, iid: int) -> None:
    """Rewrite the bot's comments as the version before signed keys wrote them: ``log`` markers unsigned, the
    state signed but without ``signed_log``."""
    key = StateKey(derived_key(w.sim.token))
    scope = f"{w.project_id}#{iid}"
    for note in w.bot_notes(iid):
        body = note["body"]
        for start, end, found in reversed(marker_spans(body)):
            fields = {k: v for k, v in found.fields.items() if k not in ("mac", "signed_log")}
            if found.kind == "log":
                body = body[:start] + marker("log", **fields) + body[end:]
            elif found.kind in ("checklist", "state"):
                body = body[:start] + signed_marker(found.kind, key, scope, **fields) + body[end:]
        w.sim.state.edit_note_body(w.project, iid, note["id"], body, actor=w.cfg.bot.username)


def test_an_incident_the_earlier_version_ran_neither_duplicates_children_nor_reposts_reminders(w, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    at(clock, "09:10")
    w.sim.state.add_note(w.project, iid, "@incident-bot handoff simoc @secops-oncall", author="sec-oncall")
    look(w, clock, iid)
    at(clock, "10:05")
    look(w, clock, iid)  # the first reminder
    # A Reporter emptied the FAQ child's description and labels: only the status log says it is the bot's.
    faq = next(c for c in w.children() if "comms-faq" in c["labels"])
    w.sim.state.update_issue(w.project, faq["iid"], description="notes", labels=[])
    as_written_by_the_earlier_version(w, iid)
    comments = len(w.bot_notes(iid))
    at(clock, "10:20")
    look(w, clock, iid)  # the first look of the new version
    look(w, clock, iid)
    assert len([n for n in w.bot_notes(iid) if "Status update due" in n["body"]]) == 1
    assert len([n for n in w.bot_notes(iid) if "handed over" in n["body"]]) == 2  # the reply and its log line
    assert len(w.sim.state.issues(w.project)) == 3, "a child was opened again"
    assert w.snapshot(iid)["links"] == 2
    resigned = [n for n in w.bot_notes(iid) if "re-signed" in n["body"]]
    # One re-signing comment, and one line for the FAQ child the Reporter stripped, which is put back.
    added = w.bot_notes(iid)[comments:]
    assert len(resigned) == 1 and len(added) == 2, [n["body"][-200:] for n in added]
    assert "(comms\\-faq) had been changed; put back" in added[1]["body"]
    assert record_reports(w, iid) == [] and tamper_reports(w, iid) == []
    assert find_marker(checklist(w, iid)["body"], "checklist").fields.get("signed_log") is True
    # From now on an unsigned key is an edit: appended to one of the earlier version's comments, it is
    # not believed and reported once.
    start = began(w, iid, "sr-director-security")
    oldest = w.bot_notes(iid)[1]
    append_keys(w, iid, [f"reminder:{e}:{start}:2" for e in ("sr-director-security", "e-group")], oldest)
    at(clock, "11:05")
    look(w, clock, iid)
    look(w, clock, iid)
    assert len([n for n in w.bot_notes(iid) if "Status update due" in n["body"]]) == 2
    assert len(record_reports(w, iid)) == 1


def test_a_reminder_record_copied_from_another_incident_does_not_silence_reminders(w, clock):
    """Both incidents began at 09:00, so their first reminder windows have the same key: the record of
    incident A's reminder, copied into one of incident B's comments, is signed, but for A."""
    a, b = w.incident(*S1, title="A"), w.incident(*S1, title="B")
    look(w, clock, a)
    look(w, clock, b)
    at(clock, "10:05")
    look(w, clock, a)  # A's first reminder
    reminder = next(n for n in w.bot_notes(a) if "Status update due" in n["body"])
    _, _, signed = next((s, e, m) for s, e, m in marker_spans(reminder["body"]) if m.kind == "log")
    note = w.bot_notes(b)[-1]
    edit_as(w, MAINTAINER, b, note["id"], note["body"] + "\n" + marker("log", **signed.fields))
    look(w, clock, b)
    look(w, clock, b)
    assert len([n for n in w.bot_notes(b) if "Status update due" in n["body"]]) == 1
    assert len(record_reports(w, b)) == 1


def test_a_child_record_appended_to_a_bots_comment_does_not_lend_another_incidents_child(w, clock):
    """The status log's ``child:<label>:<iid>`` keys say which child the bot opened: a Maintainer who appends one
    naming incident A's FAQ child to incident B's comment, and links that child to B, does not make B take it
    for its own (B opens its own FAQ child)."""
    a = w.incident(*S1, title="A")
    look(w, clock, a)
    faq = next(c for c in w.children() if "comms-faq" in c["labels"])
    stripped = "\n".join(line for line in faq["description"].splitlines() if "incident-bot:child" not in line)
    w.sim.state.update_issue(w.project, faq["iid"], description=stripped)
    b = w.incident("severity::1", "comms-email", title="B")
    look(w, clock, b)
    append_keys(w, b, [f"child:comms-faq:{faq['iid']}"])
    w.sim.state.link_issues(w.project, b, w.project, faq["iid"], actor=MAINTAINER)
    labels = w.sim.state.get_issue(w.project, b)["labels"]
    w.sim.state.set_labels(w.project, b, [*labels, "comms-faq"])
    look(w, clock, b)
    look(w, clock, b)
    b_id = w.sim.state.get_issue(w.project, b)["id"]
    own = [c for c in w.children() if f'"incident":{b_id}' in c["description"]]
    assert sorted(label for c in own for label in c["labels"] if label.startswith("comms-")) == [
        "comms-email", "comms-faq"]
    assert len(record_reports(w, b)) == 1
