"""Children name the current DRI and role holders, edited in place, and one name stands for a team everywhere
(issue 20, section 3).

Against the simulated GitLab with the injected clock. The child's description is read as GitLab renders it
(``tests/rendered.py``: comrak, soft line breaks). GitLab runs quick actions in a description sent over the API
(``app/services/issues/update_service.rb`` goes through ``IssuableBaseService#handle_quick_actions``); the
simulator models that (``bot/simgitlab/commands.py``), so a rewrite never carries one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.commands.world import World, world
from bot.config import parse_config
from bot.core import bodies, names
from bot.simgitlab import SimulatedGitLab
from tests.conftest import at, look
from tests.rendered import rendered_text

ROOT = Path(__file__).resolve().parent.parent
S1 = ("severity::1", "data-breach", "comms-email", "comms-faq", "comms-blog")
HANDOFF = "@incident-bot handoff seoc @secops-oncall"


def say(w: World, iid: int, who: str, text: str) -> None:
    w.sim.state.add_note(w.project, iid, text, author=who)


def child(w: World, label: str) -> dict:
    found = next(c for c in w.children() if label in c["labels"])
    return w.sim.state.get_issue(w.project, found["iid"])


def shown(w: World, label: str) -> list[str]:
    return rendered_text(child(w, label)["description"])


def description_writes(sim: SimulatedGitLab) -> list:
    return [r for r in sim.writes() if r.method == "PUT" and "description" in (r.json or {})]


def log_text(w: World, iid: int) -> str:
    return "\n".join(n["body"] for n in w.bot_notes(iid)).replace("\\", "")


def checklist(w: World, iid: int) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if bodies.find_checklist_marker(n["body"]))


def test_after_a_handoff_each_open_child_names_the_new_seoc_and_dri(w, sim, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    assert "DRI: @sec-oncall (Security Engineer On Call (SEOC))" in shown(w, "comms-blog")
    assert "Security Engineer On Call (SEOC): @sec-oncall" in shown(w, "comms-faq")
    sim.reset_log()

    at(clock, "10:40")
    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)

    for label in ("comms-blog", "comms-faq", "comms-email"):
        text = shown(w, label)
        assert "Security Engineer On Call (SEOC): @secops-oncall" in text, label
        assert "Security Engineer On Call (SEOC): @sec-oncall" not in text, label
    assert "DRI: @secops-oncall (Security Engineer On Call (SEOC))" in shown(w, "comms-blog")
    assert [a["username"] for a in child(w, "comms-blog")["assignees"]] == ["secops-oncall"]
    # The cost: one description edit per open child, plus the blog child's reassignment (its DRI is the SEOC).
    child_puts = [r for r in sim.writes() if r.method == "PUT" and "/issues/" in r.path and "/notes" not in r.path]
    assert len(description_writes(sim)) == 3
    assert len(child_puts) == 3 + 1 + 1  # and the incident's own reassignment to the new SEOC

    sim.reset_log()
    look(w, clock, iid)
    assert sim.writes() == [], "settled: a second look writes nothing"


def test_a_closed_child_keeps_the_names_it_was_done_with(w, sim, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = child(w, "comms-faq")
    w.sim.state.update_issue(w.project, faq["iid"], state_event="close", actor="comms-oncall")
    look(w, clock, iid)
    before = child(w, "comms-faq")["description"]

    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)
    assert child(w, "comms-faq")["description"] == before
    assert "Security Engineer On Call (SEOC): @secops-oncall" in shown(w, "comms-blog")


def test_a_maintainers_edit_of_the_names_stays_until_the_names_change(w, sim, clock):
    """The block between the markers is the bot's: a person's edit inside it is kept while the names the bot
    would write are the ones it wrote; once they change the block is written afresh. A person's own text
    outside it, and the boxes ticked in the child, always stay."""
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = child(w, "comms-faq")
    edited = (
        faq["description"]
        .replace("- [ ] Prepared responses handed to Support", "- [x] Prepared responses handed to Support")
        .replace("**Incident roles:**", "**Incident roles:** (Dana covers the CMOC until 11:00)")
        + "\n\nNotes from the CMOC: the draft is in the shared folder.\n"
    )
    w.sim.state.update_issue(w.project, faq["iid"], description=edited, actor="sec-oncall")
    sim.reset_log()
    look(w, clock, iid)
    assert description_writes(sim) == [] and child(w, "comms-faq")["description"] == edited

    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)
    text = shown(w, "comms-faq")
    assert "Security Engineer On Call (SEOC): @secops-oncall" in text
    assert not any("Dana covers" in line for line in text), "the bot's block is written afresh"
    assert "[x] Prepared responses handed to Support" in text, "a tick outside the block stays"
    assert "Notes from the CMOC: the draft is in the shared folder." in text, "a person's own text stays"


def test_a_child_whose_markers_were_removed_is_left_alone(w, sim, clock):
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = child(w, "comms-faq")
    bare = faq["description"].replace(names.END, "")
    w.sim.state.update_issue(w.project, faq["iid"], description=bare, actor="sec-oncall")
    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)
    assert child(w, "comms-faq")["description"] == bare


def test_a_child_an_earlier_version_opened_gets_the_names_block_when_names_change(w, sim, clock):
    """Children opened before the names markers existed: the same lines, found by their headings."""
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = child(w, "comms-faq")
    old = faq["description"]
    start, end = old.index("<!-- incident-bot:names "), old.index(names.END)
    legacy = old[:start] + old[old.index("\n", start) + 1 : end] + old[end + len(names.END) + 1 :]
    w.sim.state.update_issue(w.project, faq["iid"], description=legacy, actor="incident-bot")
    sim.reset_log()
    look(w, clock, iid)
    assert description_writes(sim) == [], "names still current: an old child is not rewritten"

    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)
    now = child(w, "comms-faq")["description"]
    assert "Security Engineer On Call \\(SEOC\\): @secops-oncall" in now
    assert names.END in now and now.count("**DRI:**") == 1
    assert rendered_text(now) == rendered_text(legacy.replace("@sec-oncall", "@secops-oncall"))


def test_a_team_project_childs_template_part_is_untouched(sim, clock):
    from tests.test_team_projects import NAME, TEAM, TEMPLATE, team_children, team_config

    w = world(sim, team_config())
    w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident(*S1)
    look(w, clock, iid)
    [email] = team_children(w)
    assert email["description"].startswith(TEMPLATE.rstrip())
    ticked = email["description"].replace("- [ ] Audience list attached", "- [x] Audience list attached")
    w.sim.state.update_issue(TEAM, email["iid"], description=ticked, actor="mpm-oncall")

    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)
    [email] = team_children(w)
    assert email["description"].startswith(ticked[: ticked.index("<!-- incident-bot:child")])
    assert "Security Engineer On Call (SEOC): @secops-oncall" in rendered_text(email["description"])


@pytest.fixture
def team_world(sim: SimulatedGitLab) -> World:
    """Marketing Programs engaged by its group handle, its work assigned to a person."""
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["teams"]["marketing_programs"].update(handle="mpm-team", assignee="mpm-oncall")
    return world(sim, parse_config(data, source="test.yaml", base_dir=ROOT / "config"))


def test_a_team_is_named_by_its_dri_the_same_in_checklist_child_and_log(team_world, clock):
    w = team_world
    iid = w.incident(*S1)
    look(w, clock, iid)
    email = child(w, "comms-email")
    assert [a["username"] for a in email["assignees"]] == ["mpm-oncall"]
    assert "DRI: @mpm-oncall (Marketing Programs, @mpm-team)" in shown(w, "comms-email")
    row = next(line for line in rendered_text(checklist(w, iid)) if "Incident response customer email" in line)
    assert "DRI @mpm-oncall" in row and "@mpm-team" not in row
    opened = next(line for line in log_text(w, iid).splitlines() if f"opened #{email['iid']}" in line)
    assert "for @mpm-oncall because" in opened


def test_a_team_engagement_names_its_dri_and_mentions_its_handle(sim, clock):
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["teams"]["sr_director_security"].update(handle="sec-leadership", assignee="sec-director")
    w = world(sim, parse_config(data, source="test.yaml", base_dir=ROOT / "config"))
    iid = w.incident(*S1)
    look(w, clock, iid)
    engaged = next(line for line in log_text(w, iid).splitlines() if "engage **Broader e-group**" in line)
    assert "DRI @sec-director (@sec-leadership), every 1h" in engaged
    row = next(line for line in rendered_text(checklist(w, iid)) if "Broader e-group" in line)
    assert "DRI @sec-director" in row and "@sec-leadership" not in row


def test_a_description_holding_a_quick_action_line_is_not_sent_and_the_log_says_why(w, sim, clock):
    """GitLab would run ``/close`` in a description the bot sends, as the bot (the simulator does too)."""
    iid = w.incident(*S1)
    look(w, clock, iid)
    faq = child(w, "comms-faq")
    hostile = faq["description"] + "\n/close\n"
    w.sim.state.update_issue(w.project, faq["iid"], description=hostile, actor="sec-oncall")
    say(w, iid, "sec-oncall", HANDOFF)
    look(w, clock, iid)
    after = child(w, "comms-faq")
    assert after["state"] == "opened" and after["description"] == hostile
    assert f"could not update the names in #{faq['iid']} (comms-faq)" in log_text(w, iid)
    assert "Security Engineer On Call (SEOC): @secops-oncall" in shown(w, "comms-blog"), "the others are updated"
    sim.reset_log()
    assert look(w, clock, iid).actions == [] and sim.writes() == [], "not tried again on every look"

    w.sim.state.update_issue(w.project, faq["iid"], description=faq["description"], actor="sec-oncall")
    look(w, clock, iid)
    assert "Security Engineer On Call (SEOC): @secops-oncall" in shown(w, "comms-faq"), "once the line is gone"


# ---- the names block, pure ---------------------------------------------------------------------------------


def _sealed(text: str, key: str = "k1") -> str:
    return names.seal(f"{names.START}\n{text}\n{names.END}", key)


def test_only_the_block_changes_and_people_text_around_it_stays():
    old = f"team text\n{_sealed('**DRI:** @alice')}\n- [x] ticked by a person\nA person's note.\n"
    new = names.replace_block(old, _sealed("**DRI:** @bob", "k2"))
    assert new == f"team text\n{_sealed('**DRI:** @bob', 'k2')}\n- [x] ticked by a person\nA person's note.\n"
    assert names.replace_block(old, _sealed("**DRI:** @bob", "k1")) is None, "same names recorded: no edit"


def test_markers_the_bot_cannot_pair_leave_the_description_alone():
    wanted = _sealed("**DRI:** @bob", "k2")
    two_starts = f"{names.START}\n{_sealed('**DRI:** @alice')}"
    assert names.replace_block(two_starts, wanted) is None
    no_end = f"{names.marker(names.KIND, h='k1')}\n**DRI:** @alice\n**Incident roles:**\n- SEOC: @alice\n"
    assert names.replace_block(no_end, wanted) is None
    assert names.replace_block("a description people rewrote entirely", wanted) is None


def test_a_block_only_after_the_bots_own_marker_counts():
    before = _sealed("**DRI:** @mallory")
    old = f"{before}\nBOT\n{_sealed('**DRI:** @alice')}\n"
    new = names.replace_block(old, _sealed("**DRI:** @bob", "k2"), after=old.index("BOT"))
    assert new is not None and new.startswith(before) and "@bob" in new and "@alice" not in new
