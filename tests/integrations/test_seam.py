"""The outbound seam with a tiny fake integration (``beacon``): a command of its own, a checklist row and a
status-log line, against the simulated GitLab. The core imports no integration; all of this comes in as data."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.commands.world import World
from bot.core import state as bot_state
from bot.core.bodies.statuslog import log_entries
from bot.core.model import BotState, IncidentRef, LogEntry
from bot.core.outbound import CommandSpec, Engaged, Judged, OutboundFacts, Refused, Row, Said, Slot, View
from bot.integrations import registry
from bot.integrations.base import Integration
from bot.text.markers import strip_markers
from tests.conftest import T0

S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
TARGETS = ("north", "south")


def _light(said: Said, slot: Slot) -> Judged:
    """``beacon TARGET [reason]``: lights a beacon once; the record is the integration's slot."""
    if not said.args or said.args[0] not in TARGETS:
        return Judged(False, f"usage: beacon {'|'.join(TARGETS)} [reason]")
    target, reason = said.args[0], " ".join(said.args[1:])
    lit = dict(slot.get("lit", {}))
    if target in lit:
        return Judged(True, f"beacon {target} is already lit")
    when = said.at.isoformat() if said.at else ""
    lit[target] = {"by": said.author, "at": when, "reason": reason}
    return Judged(True, f"beacon {target} lit by {said.author}", {"lit": lit})


def _rows(data: object, slot: Slot) -> list[Row]:
    return [Row(f"beacon:{t}", f"Beacon {t}: lit {v['at'][11:16]} by @{v['by']}") for t, v in
            sorted(slot.get("lit", {}).items())]


def _lines(data: object, slot: Slot) -> list[LogEntry]:
    lit = sorted(slot.get("lit", {}).items())
    return [LogEntry(f"beacon:lit:{t}", f"lit beacon {t} for @{v['by']}") for t, v in lit]


BEACON = Integration(
    name="beacon",
    label="Beacon",
    commands=(CommandSpec("beacon", "beacon", "beacon north|south [reason]", "light a beacon", _light),),
    rows=_rows,
    lines=_lines,
)


def facts() -> OutboundFacts:
    """What the worker would hand the reconcile with the beacon registered."""
    return OutboundFacts(views=(View("beacon", "Beacon", None, BEACON.rows, BEACON.lines),), commands=BEACON.commands)


@pytest.fixture
def w(w: World) -> World:
    w.sim.state.add_user("dev-dora")
    w.sim.state.add_member(w.project, "dev-dora", 30)
    w.sim.state.add_user("guest-gus")
    w.sim.state.add_member(w.project, "guest-gus", 10)
    return w


def look(w: World, clock, iid: int, outbound: OutboundFacts | None = None):
    r = w.reconciler(clock=clock)
    try:
        return r.reconcile(IncidentRef(w.project, iid), outbound=outbound)
    finally:
        r.close()


def bot_text(w: World, iid: int) -> str:
    return "\n".join(strip_markers(n["body"]) for n in w.bot_notes(iid))


def test_a_developer_lights_the_beacon_once_with_a_row_and_one_log_line(w, clock) -> None:
    iid = w.incident(*S1)
    look(w, clock, iid, facts())
    clock.set(T0 + timedelta(minutes=2))
    w.sim.state.add_note(w.project, iid, "@incident-bot beacon north the sky is falling", author="dev-dora")
    report = look(w, clock, iid, facts())
    assert [v.ok for v in report.desired.verdicts] == [True]
    assert report.desired.state.slots["beacon"]["lit"]["north"]["by"] == "dev-dora"
    text = bot_text(w, iid)
    assert "beacon north lit by dev\\-dora" in text  # escaped like every echo
    assert "#### Beacon\n- Beacon north: lit 09:02 by @dev-dora" in text
    assert text.count("lit beacon north for @dev-dora") == 1
    again = look(w, clock, iid, facts())  # level-triggered: nothing new, nothing written twice
    assert again.actions == []
    assert bot_text(w, iid).count("lit beacon north for @dev-dora") == 1


def test_the_slot_is_signed_and_a_maintainers_edit_of_it_is_not_believed(w, clock) -> None:
    """A Maintainer can edit the bot's checklist (GitLab lets them): a slot changed by hand fails the signature,
    and the bot keeps what it signed (restored from its signed copies)."""
    iid = w.incident(*S1)
    w.sim.state.add_note(w.project, iid, "@incident-bot beacon south", author="dev-dora")
    look(w, clock, iid, facts())
    checklist = next(n for n in w.bot_notes(iid) if "communications checklist" in n["body"])
    signed = r'"by":"dev\u002ddora"'  # as the marker writes it
    assert signed in checklist["body"]
    w.sim.state.edit_note_body(w.project, iid, checklist["id"], checklist["body"].replace(signed, '"by":"mallory"'),
                               actor="sec-director")
    state = look(w, clock, iid, facts()).observed.state
    assert state.slots["beacon"]["lit"]["south"]["by"] == "dev-dora"


def test_a_guest_cannot_light_the_beacon(w, clock) -> None:
    iid = w.incident(*S1)
    w.sim.state.add_note(w.project, iid, "@incident-bot beacon north", author="guest-gus")
    report = look(w, clock, iid, facts())
    assert [v.ok for v in report.desired.verdicts] == [False]
    assert "beacon" not in report.desired.state.slots
    assert "#### Beacon" not in bot_text(w, iid) and "lit beacon" not in bot_text(w, iid)


def test_help_lists_the_integrations_commands_and_without_it_the_command_is_unknown(w, clock) -> None:
    iid = w.incident(*S1)
    w.sim.state.add_note(w.project, iid, "@incident-bot help", author="dev-dora")
    look(w, clock, iid, facts())
    assert "` @incident-bot beacon north|south [reason] `: light a beacon" in bot_text(w, iid)
    other = w.incident(*S1)
    w.sim.state.add_note(w.project, other, "@incident-bot beacon north", author="dev-dora")
    report = look(w, clock, other)  # no integration registered the command
    assert [v.ok for v in report.desired.verdicts] == [False]
    assert "unknown command" in report.desired.verdicts[0].reply


def test_an_unknown_slot_survives_encoding_and_decoding() -> None:
    state = BotState(slots={"beacon": {"lit": {"north": {"by": "x"}}}, "later": {"v": [1, 2]}})
    assert bot_state.decode(bot_state.encode(state)).slots == state.slots
    assert bot_state.decode({"slots": {"bad": 3, "ok": {}}}).slots == {"ok": {}}


def test_a_refusal_keeps_slacks_log_key_and_text_byte_for_byte(w, clock) -> None:
    """Incidents logged before the seam must not get the line again: the key is ``slack:<target>``."""
    iid = w.incident(*S1)
    report = look(w, clock, iid, OutboundFacts(refused=(Refused("slack", "Slack", "#sec", "channel_not_found"),)))
    entries = {e.key: e.text for e in log_entries(report.desired, report.observed)}
    assert entries["slack:#sec"] == (
        "Slack refused the bot's messages to ` #sec `: channel\\_not\\_found; the other Slack targets are not "
        "affected, nothing is tried there again for this incident"
    )


def test_an_engagement_shows_the_integrations_label(w, clock) -> None:
    iid = w.incident(*S1)
    look(w, clock, iid)
    eid = look(w, clock, iid).desired.engagements[0].id
    when = datetime(2026, 11, 30, 9, 1, tzinfo=T0.tzinfo)
    look(w, clock, iid, OutboundFacts(engaged={eid: Engaged(when, "#ops", "Pager")}))
    assert "via Pager ` #ops `" in bot_text(w, iid)


def test_the_registry_has_slack_pagerduty_and_the_status_page_and_refuses_clashes() -> None:
    assert [i.name for i in registry.INTEGRATIONS] == ["slack", "pagerduty", "status_page"]
    registry.check(registry.INTEGRATIONS, ("help",))
    with pytest.raises(ValueError, match="clash"):
        registry.check((BEACON,), ("beacon",))
    with pytest.raises(ValueError, match="repeat"):
        registry.check((BEACON, BEACON))


def test_a_one_off_reconcile_judges_the_integrations_command_too(w, clock) -> None:
    """``incident-bot reconcile`` has no outbox: its reconciler still knows the enabled integrations' commands, so
    it never answers one with "unknown command" (which would use it up)."""
    iid = w.incident(*S1)
    w.sim.state.add_note(w.project, iid, "@incident-bot beacon north", author="dev-dora")
    r = w.reconciler(clock=clock, commands=BEACON.commands)
    try:
        report = r.reconcile(IncidentRef(w.project, iid))
    finally:
        r.close()
    assert [v.ok for v in report.desired.verdicts] == [True]
    assert report.desired.state.slots["beacon"]["lit"]["north"]["by"] == "dev-dora"
