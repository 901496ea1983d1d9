"""Issue 22 §3's acceptance end to end: the simulated GitLab, the bundled policy with an
``integrations.status_page`` section, a store, the GitLab worker with the status page's planner, and the
status page sender on the real job loop with the real status.io adapter over HTTP to the simulated status.io
(``bot/simstatus/statusio.py``: statusio-go ``incidents.go``; errors inside an HTTP 200). One injected clock."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.world import World, world
from bot.config import Config, load_config
from bot.core import drafts
from bot.integrations.base import Planners
from bot.integrations.statuspage.command import PUBLISH
from bot.integrations.statuspage.config import StatusIoSettings
from bot.integrations.statuspage.integration import STATUS_PAGE, policy_of
from bot.integrations.statuspage.job import StatusPagePlanner, StatusPageSender
from bot.integrations.statuspage.statusio import StatusIo
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simstatus import SimulatedStatusIo
from bot.statekey import derived_key
from bot.store import DeliveryStore, open_store
from bot.text.markers import StateKey
from bot.worker import Worker
from tests.approvals.support import CMOC, SIMOC, replies, say, write_draft
from tests.conftest import ROOT, T0

COMPONENT, CONTAINER = "5f0c1a2b3c4d5e6f7a8b9c0d", "5f0c1a2b3c4d5e6f7a8b9c0e"
DRAFT = "We are investigating a security issue affecting sign-in on the hosted service.\nNext update in 1 hour.\n"
DIGEST = drafts.digest(DRAFT)
LIVE = ("severity::1", "live-incident", "comms-status-page")
TITLE_WORDS = {"Customer", "data", "exposed"}


def policy(tmp_path: Path, **section: Any) -> Config:
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())
    data["templates_dir"] = str(ROOT / "issue_templates")
    data["integrations"] = {"status_page": {"provider": "statusio", "components": [COMPONENT],
                                            "containers": [CONTAINER], "allowed_hosts": ["status.gitlab.com"],
                                            **section}}
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def status(clock: ManualClock) -> Iterator[SimulatedStatusIo]:
    with SimulatedStatusIo(components={COMPONENT: [CONTAINER]}, clock=lambda: clock().timestamp()) as sim:
        yield sim


@dataclass
class Stage:
    """GitLab, status.io and the bot's store, with the steps a running bot takes."""

    w: World
    status: SimulatedStatusIo
    clock: ManualClock
    db: Path
    store: DeliveryStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = open_store(str(self.db))
        self.sender: Any = self.new_sender() if isinstance(self.status, SimulatedStatusIo) else None

    def new_sender(self) -> StatusPageSender:
        pol = policy_of(self.w.cfg)
        assert pol is not None
        settings = StatusIoSettings(self.status.url, self.status.api_id, self.status.api_key,
                                    self.status.statuspage_id)
        return StatusPageSender(self.store, lambda: StatusIo(settings, pol, timeout=5), pol, worker_id="sp:1",
                                clock=self.clock)

    def reconcile(self, iid: int) -> None:
        """A webhook for ``iid``, then the GitLab worker until idle."""
        pol = policy_of(self.w.cfg)
        assert pol is not None
        planner = StatusPagePlanner(pol, derived_key(self.w.sim.token), "statusio")
        reconciler = self.w.reconciler(clock=self.clock, commands=(PUBLISH,),
                                       key=StateKey(derived_key(self.w.sim.token)))
        wk = Worker(self.store, reconciler, worker_id="w:1", clock=self.clock,
                    chat=Planners([(STATUS_PAGE, planner)]))
        try:
            self.store.enqueue(f"{self.w.project_id}#{iid}", self.clock(), "Issue Hook")
            self.clock.advance(1)
            while wk.run_once() is not None:
                pass
        finally:
            reconciler.close()

    def send(self) -> list[str | None]:
        states = []
        while (state := self.sender.run_once()) is not None:
            states.append(state)
        return states

    def round(self, iid: int) -> None:
        """A reconcile, the sender, and the reconcile its news queues."""
        self.reconcile(iid)
        self.send()
        self.reconcile(iid)

    def writes(self) -> list[Any]:
        return [r for r in self.status.requests if r.method == "POST"]


@pytest.fixture
def stage(sim: SimulatedGitLab, status: SimulatedStatusIo, clock: ManualClock, tmp_path: Path) -> Iterator[Stage]:
    s = Stage(world(sim, policy(tmp_path)), status, clock, tmp_path / "bot.db")
    yield s
    s.store.close()


def drafted(s: Stage, *labels: str, title: str = "Customer data exposed") -> int:
    iid = s.w.incident(*(labels or LIVE), title=title, confidential=True)
    s.reconcile(iid)
    write_draft(s.w, DRAFT, channel="comms-status-page", actor=CMOC)
    s.reconcile(iid)
    return iid


def approved(s: Stage, **kw: Any) -> int:
    iid = drafted(s, **kw)
    say(s.w, iid, f"approve status-page {DIGEST}", SIMOC)
    s.clock.advance(60)
    s.reconcile(iid)
    return iid


def test_publish_before_approval_sends_nothing_and_says_why(stage: Stage) -> None:
    iid = drafted(stage)
    say(stage.w, iid, "publish status-page", CMOC)
    stage.round(iid)
    assert stage.status.requests == []
    (reply,) = replies(stage.w, iid, "publish")
    assert f"draft {DIGEST} is not approved" in reply


def test_after_approval_one_statusio_incident_with_the_drafts_text_unchanged_by_duplicates(stage: Stage) -> None:
    iid = approved(stage)
    say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
    stage.round(iid)
    (incident,) = stage.status.incidents.values()
    assert [m["details"] for m in incident["messages"]] == [DRAFT.strip()]
    assert [(r.method, r.path.split("/")[1]) for r in stage.status.requests] == [("GET", "list"), ("POST", "create")]
    for _ in range(3):  # the same webhook delivered again, and again
        stage.round(iid)
    assert len(stage.status.incidents) == 1 and len(stage.status.requests) == 2  # not one more request
    (reply,) = replies(stage.w, iid, "publish")
    assert "✓ publish" in reply
    checklist = next(n["body"] for n in stage.w.bot_notes(iid) if "communications checklist" in n["body"])
    assert f"draft `{DIGEST}` created the status page incident" in checklist


def published(s: Stage, **kw: Any) -> int:
    iid = approved(s, **kw)
    say(s.w, iid, f"publish status-page {DIGEST}", CMOC)
    s.round(iid)
    return iid


class Killed(BaseException):
    """kill -9: the process stops where it stands; nothing after it runs, nothing is handed back."""


def test_a_kill_between_the_call_and_its_bookkeeping_is_found_again_by_name(stage: Stage) -> None:
    iid = approved(stage)
    say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
    stage.reconcile(iid)

    def kill() -> None:
        raise Killed

    stage.sender.after_call = kill
    with pytest.raises(Killed):
        stage.send()
    (item,) = stage.store.items("status_page", f"{stage.w.project_id}#{iid}")
    assert item.state == "trying" and len(stage.status.incidents) == 1  # created, not recorded
    stage.clock.advance(120)  # the dead process's lease runs out
    stage.sender = stage.new_sender()  # a new process
    stage.round(iid)
    assert len(stage.status.incidents) == 1 and len(stage.writes()) == 1  # found by its exact name
    (item,) = stage.store.items("status_page", f"{stage.w.project_id}#{iid}")
    assert item.state == "sent" and item.remote == next(iter(stage.status.incidents))


def test_an_empty_database_creates_nothing_again(stage: Stage, tmp_path: Path) -> None:
    iid = published(stage)
    stage.store.close()
    stage.store = open_store(str(tmp_path / "empty.db"))
    stage.sender = stage.new_sender()
    for _ in range(2):
        stage.round(iid)
    assert len(stage.status.incidents) == 1 and len(stage.writes()) == 1


def test_a_new_approved_digest_updates_and_a_publish_after_all_clear_resolves(stage: Stage) -> None:
    iid = published(stage)
    second = "The issue is contained; sign-in works again.\n"
    write_draft(stage.w, second, channel="comms-status-page", actor=CMOC)
    stage.reconcile(iid)
    digest = drafts.digest(second)
    say(stage.w, iid, f"publish status-page {digest}", CMOC)  # not approved yet: nothing
    stage.round(iid)
    assert len(stage.writes()) == 1
    say(stage.w, iid, f"approve status-page {digest}", SIMOC)
    stage.reconcile(iid)
    say(stage.w, iid, f"publish status-page {digest}", "sec-incident-manager")  # the SIMOC may publish too
    stage.round(iid)
    (incident,) = stage.status.incidents.values()
    assert [m["details"] for m in incident["messages"]] == [DRAFT.strip(), second.strip()]
    assert not incident["resolved"]
    stage.w.sim.state.update_issue(stage.w.project, iid, add_labels=["comms::all-clear"])
    stage.reconcile(iid)
    say(stage.w, iid, f"publish status-page {digest}", CMOC)
    stage.round(iid)
    (incident,) = stage.status.incidents.values()
    assert incident["resolved"] and set(stage.status.component_status.values()) == {100}
    assert len(stage.writes()) == 3


def test_an_in_band_error_is_a_failure_said_in_the_status_log_not_a_send(stage: Stage) -> None:
    iid = approved(stage)
    stage.status.in_band_error = "Invalid component id"
    say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
    stage.round(iid)
    assert stage.status.incidents == {}
    (item,) = stage.store.items("status_page", f"{stage.w.project_id}#{iid}")
    assert item.state == "refused" and "Invalid component id" in (item.reason or "")
    log = "\n".join(n["body"] for n in stage.w.bot_notes(iid))
    assert log.count(f"draft `{DIGEST}` was not posted") >= 1 and "created the status page" not in log
    stage.round(iid)  # a look without a new request tries nothing again
    assert [r for r in stage.status.requests if r.method == "POST"] == []
    stage.status.in_band_error = None  # the operator fixes the component; the CMOC publishes again
    stage.clock.advance(60)
    say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
    stage.round(iid)
    (incident,) = stage.status.incidents.values()
    assert [m["details"] for m in incident["messages"]] == [DRAFT.strip()]


@pytest.mark.parametrize("title", [
    "CONFIDENTIAL: token leak in billing-service",
    "@all leaked <script>x</script> https://gitlab.example.com/x",
    "Ünïcödé 秘密 — customer DB dump",
])
def test_a_confidential_incidents_title_never_reaches_the_provider(stage: Stage, title: str) -> None:
    published(stage, title=title)
    assert len(stage.status.incidents) == 1
    sent = "\n".join(r.raw for r in stage.status.requests)
    for word in {w for w in title.split() if len(w) > 3}:
        assert word not in sent


@pytest.mark.parametrize(("who", "level", "said"), [
    ("dev-dana", 30, "only the CMOC or the SIMOC may publish"),
    ("rita-reporter", 20, "only project members with at least the Developer role"),
    ("gus-guest", 10, "only project members with at least the Developer role"),
    ("olly-outsider", None, "only project members with at least the Developer role"),
])
def test_only_the_cmoc_or_the_simoc_can_publish(stage: Stage, who: str, level: int | None, said: str) -> None:
    iid = approved(stage)
    stage.w.sim.state.add_user(who)
    if level is not None:
        stage.w.sim.state.add_member(stage.w.project, who, level)
    say(stage.w, iid, f"publish status-page {DIGEST}", who)
    stage.round(iid)
    assert stage.status.requests == []
    (reply,) = replies(stage.w, iid, "publish")
    assert "✗" in reply and said in reply


def test_a_maintainer_editing_the_checklist_row_changes_nothing(stage: Stage) -> None:
    iid = published(stage)
    note = next(n for n in stage.w.bot_notes(iid) if "communications checklist" in n["body"])
    forged = note["body"].replace(f"draft `{DIGEST}` created", "draft `deadbeef` created")
    stage.w.sim.state.add_user("mo-maintainer")
    stage.w.sim.state.add_member(stage.w.project, "mo-maintainer", 40)
    stage.w.sim.state.edit_note_body(stage.w.project, iid, note["id"], forged, actor="mo-maintainer")
    for _ in range(2):
        stage.round(iid)
    assert len(stage.writes()) == 1
    note = next(n for n in stage.w.bot_notes(iid) if "communications checklist" in n["body"])
    assert f"draft `{DIGEST}` created" in note["body"]


def test_an_operator_mistyping_a_key_is_told_in_one_line(tmp_path: Path) -> None:
    from bot.integrations import registry

    cfg = policy(tmp_path, provder="statusio")
    (line,) = registry.config_problems(cfg)
    assert line.endswith("integrations.status_page: provder: unknown key (known: provider, impact_label, name, "
                         "allowed_hosts, components, containers, component_status, notify)")


def test_plan_lists_the_planned_publish(stage: Stage) -> None:
    from bot.commands.planview import outbound_preview
    from bot.core.model import IncidentRef

    iid = approved(stage)
    say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
    stage.reconcile(iid)  # the request is recorded in the bot's signed state
    reconciler = stage.w.reconciler(clock=stage.clock, commands=(PUBLISH,))
    try:
        report = reconciler.reconcile(IncidentRef(stage.w.project, iid))
    finally:
        reconciler.close()
    ((name, label, items),) = outbound_preview(stage.w.cfg, report.desired, report.observed)
    assert (name, label) == ("status_page", "Status page")
    assert [text for _, _, text in items] == [
        f"create the status page incident at status.io with the approved draft {DIGEST}"]


def test_statuspage_one_incident_keyed_by_metadata_paced_and_found_again(sim: SimulatedGitLab, clock: ManualClock,
                                                                         tmp_path: Path) -> None:
    """The same path with Atlassian Statuspage (``bot/simstatus/atlassian.py``): the incident carries only the
    opaque key in its metadata, a lost answer to the create is found again by it, requests are paced."""
    from bot.integrations.statuspage.atlassian import Pacer, Statuspage
    from bot.integrations.statuspage.config import StatuspageSettings
    from bot.simstatus import SimulatedStatuspage

    seconds = [1_800_000_000.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        seconds[0] += s

    Pacer.forget()
    with SimulatedStatuspage(components=["cmpweb000001"], clock=lambda: seconds[0]) as page:
        cfg = policy(tmp_path, provider="statuspage", components=["cmpweb000001"], containers=[])
        s = Stage(world(sim, cfg), page, clock, tmp_path / "bot.db")  # type: ignore[arg-type]
        pol = policy_of(cfg)
        assert pol is not None
        settings = StatuspageSettings(page.url, page.api_key, page.page_id)
        s.sender = StatusPageSender(
            s.store, lambda: Statuspage(settings, pol, timeout=5,
                                        pacer=Pacer(settings.api_key, clock=lambda: seconds[0], sleep=sleep)),
            pol, worker_id="sp:1", clock=clock)
        try:
            iid = approved(s)
            page.lose_answers("create")
            say(s.w, iid, f"publish status-page {DIGEST}", CMOC)
            s.round(iid)  # the create landed, its answer was lost: retried later
            s.clock.advance(600)
            s.round(iid)
            (incident,) = page.incidents.values()
            assert incident["metadata"] == {"incident_bot": {"key": incident["name"].split("(ref ")[1][:-1]}}
            assert s.store.items("status_page", f"{s.w.project_id}#{iid}")[0].state == "sent"
            assert all(b - a >= 1.0 for a, b in itertools.pairwise(r.time for r in page.requests))
            assert TITLE_WORDS.isdisjoint(" ".join(r.raw for r in page.requests).split())
        finally:
            s.store.close()
            Pacer.forget()


def test_two_incidents_with_the_bots_name_stop_it_dead_said_once_in_the_status_log(stage: Stage) -> None:
    iid = approved(stage)
    say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
    stage.reconcile(iid)  # offered, not sent yet
    (item,) = stage.store.items("status_page", f"{stage.w.project_id}#{iid}")
    name = f"Security incident update (ref {item.key.split(':')[0]})"
    stage.status.add_incident(name)
    stage.status.add_incident(name)  # someone copied it by hand
    stage.round(iid)
    stage.round(iid)
    assert len(stage.status.incidents) == 2 and stage.writes() == []
    assert len([j for j in stage.store.dead_jobs() if j.kind == "status_page"]) == 1
    lines = [ln for n in stage.w.bot_notes(iid) if "communications checklist" not in n["body"]
             for ln in n["body"].splitlines() if "was not posted" in ln]
    assert len(lines) == 1 and "2 incidents named" in lines[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(min_size=1, max_size=80), description=st.text(max_size=200))
def test_property_no_title_or_description_reaches_the_provider(stage: Stage, title: str, description: str) -> None:
    """Whatever the incident's title and description, the provider gets only the approved draft and the neutral
    name: the planned action from the reconciled incident, with its title and description replaced, is posted
    over HTTP to the simulated status.io and every request body is searched."""
    from dataclasses import replace

    from bot.core.model import IncidentRef
    from bot.integrations.statuspage.job import wanted

    if not hasattr(stage, "report"):
        iid = approved(stage)
        say(stage.w, iid, f"publish status-page {DIGEST}", CMOC)
        stage.reconcile(iid)
        reconciler = stage.w.reconciler(clock=stage.clock, commands=(PUBLISH,))
        try:
            stage.report = reconciler.reconcile(IncidentRef(stage.w.project, iid))  # type: ignore[attr-defined]
        finally:
            reconciler.close()
    report = stage.report  # type: ignore[attr-defined]
    secret_title, secret_text = f"QZX{title}", f"JVW{description}"
    observed = replace(report.observed, incident=replace(report.observed.incident, title=secret_title,
                                                         description=secret_text))
    pol = policy_of(stage.w.cfg)
    assert pol is not None
    action = wanted(pol, derived_key(stage.w.sim.token), report.desired, observed, [])
    assert action is not None and action.text == DRAFT.strip()
    stage.status.requests.clear()
    stage.status.incidents.clear()
    settings_ = StatusIoSettings(stage.status.url, stage.status.api_id, stage.status.api_key,
                                 stage.status.statuspage_id)
    StatusIo(settings_, pol, timeout=5).publish(action)
    sent = " ".join(r.raw for r in stage.status.requests)
    assert stage.status.requests and "QZX" not in sent and "JVW" not in sent
