"""Issue 21 §2's acceptance end to end: the simulated GitLab, a SQLite store, the GitLab worker and the
``pagerduty`` job loop driven step by step on one injected clock; PagerDuty's own client over HTTP to the
simulated PagerDuty (bot/simpagerduty: Events API v2 de-duplication by ``dedup_key`` as in PagerDuty's
"Alert De-Duplication" doc), its V3 webhooks POSTed to the receiver's ``/pagerduty`` route."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from bot import wiring
from bot.commands.world import World
from bot.errors import UserError
from bot.integrations.base import Planners
from bot.integrations.pagerduty import receiver
from bot.integrations.pagerduty.adapter import PagerDutySender
from bot.integrations.pagerduty.facts import NAME
from bot.integrations.pagerduty.integration import PAGERDUTY
from bot.integrations.pagerduty.job import page_of
from bot.integrations.pagerduty.webhook import sign
from bot.settings import Settings
from bot.simgitlab import ManualClock
from bot.simpagerduty import SimulatedPagerDuty
from bot.simpagerduty.state import Invalid
from bot.store import DeliveryStore, open_store
from bot.worker import Worker

SM_KEY, MO_KEY = "s" * 28 + "0001", "m" * 28 + "0002"
ENV = {"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER": SM_KEY, "PAGERDUTY_ROUTING_KEY_MARKETING_OPS": MO_KEY}
SECRET = "whsec-acceptance-0123456789"
URGENT = ("severity::1", "data-breach", "comms-email", "comms-distribution-list")


@dataclass
class Paging:
    """One world: GitLab, PagerDuty, the bot's store and receiver, with the steps a running bot takes."""

    w: World
    pd: SimulatedPagerDuty
    clock: ManualClock
    db: Path
    env: dict[str, str] = field(default_factory=lambda: dict(ENV))
    store: DeliveryStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = open_store(str(self.db))
        self.settings = Settings(gitlab_url=self.w.sim.url, pagerduty_events_url=self.pd.url,
                                 pagerduty_webhook_secret=SECRET, variables=self.env)
        self.planner, self.sender = PAGERDUTY.build(self.settings, self.w.cfg, self.store, clock=self.clock,
                                                    worker_id="pd:1")
        app = Flask("receiver")
        assert wiring.add_routes(app, self.settings, self.w.cfg, self.store) == ["/pagerduty"]
        self.app = app
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.pd.webhook_url = f"http://127.0.0.1:{self.http.server_port}/pagerduty"
        self.pd.webhook_secrets = [SECRET]

    def close(self) -> None:
        self.http.shutdown()
        self.store.close()

    def reconcile(self, iid: int | None = None) -> None:
        """A webhook for ``iid`` (or none: only jobs already due), then the GitLab worker until idle."""
        wk = Worker(self.store, self.w.reconciler(clock=self.clock), worker_id="w:1", clock=self.clock,
                    chat=Planners([(PAGERDUTY, self.planner)]))
        try:
            if iid is not None:
                self.store.enqueue(self.key(iid), self.clock(), "Issue Hook")
            self.clock.advance(1)
            while wk.run_once() is not None:
                pass
        finally:
            wk.reconciler.close()  # type: ignore[attr-defined]

    def send_until_done(self, iid: int, rounds: int = 400) -> None:
        """The job loop, the clock moved past each back-off, until nothing of the incident is pending."""
        for _ in range(rounds):
            while self.sender.run_once() is not None:
                pass
            if not self.store.pending(NAME, self.key(iid)):
                return
            self.clock.advance(30)
        raise AssertionError("pages still pending")

    def key(self, iid: int) -> str:
        return f"{self.w.project_id}#{iid}"

    def triggers(self) -> list[dict[str, Any]]:
        return [r.event for r in self.pd.received if r.applied and r.event.get("event_action") == "trigger"]

    def alerts(self) -> list[Any]:
        return list(self.pd.state.alerts)

    def checklist(self, iid: int) -> str:
        return "\n".join(n["body"] for n in self.w.bot_notes(iid) if "PagerDuty" in n["body"])

    def note(self, iid: int, body: str, author: str = "sec-incident-manager") -> None:
        self.w.sim.state.add_note(self.w.project, iid, body, author=author)


@pytest.fixture(autouse=True)
def receiver_clock(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    """The receiver judges a delivery's age on the bot's clock, here the injected one."""
    monkeypatch.setattr(receiver, "utcnow", clock)


@pytest.fixture
def make(w: World, clock: ManualClock, tmp_path: Path) -> Iterator[Any]:
    made: list[tuple[Paging, SimulatedPagerDuty]] = []

    def build(db: str = "bot.sqlite3", pd: SimulatedPagerDuty | None = None, **kw: Any) -> Paging:
        if pd is None:
            pd = SimulatedPagerDuty(clock=lambda: clock().timestamp(), seed=3).start()
        p = Paging(w, pd, clock, tmp_path / db, **kw)
        made.append((p, pd))
        return p

    yield build
    for p, pd in made:
        p.close()
        pd.stop()


def test_one_alert_per_target_through_faults_duplicate_deliveries_a_crash_and_an_empty_database(make) -> None:
    p: Paging = make()
    p.pd.random_faults(0.2, seed=21)
    iid = p.w.incident(*URGENT)
    for _ in range(3):  # duplicate deliveries of the same change
        p.reconcile(iid)
    p.send_until_done(iid)
    assert sorted(a.routing_key for a in p.alerts()) == sorted([SM_KEY, MO_KEY])
    assert p.pd.count(429) + p.pd.count(500) > 0, "the faults were exercised"

    # kill -9 between a POST and its bookkeeping: the row is trying, the event is in PagerDuty.
    p.note(iid, "@incident-bot page support-manager customers are calling", author="sec-incident-manager")
    p.reconcile(iid)
    (row,) = p.store.pending(NAME, p.key(iid))
    p.store.mark_trying(NAME, [row.key], p.clock())
    PagerDutySender({"support-manager": SM_KEY}, base_url=p.pd.url).send(page_of(row.text))
    assert len(p.alerts()) == 3
    p.send_until_done(iid)  # the restarted sender resends the same trigger: folded into the open alert
    assert len(p.alerts()) == 3
    assert [r.state for r in p.store.items(NAME, p.key(iid))].count("sent") == 3

    # an empty database: every page is sent again with its dedup_key, and PagerDuty folds each into its alert
    fresh = make(db="empty.sqlite3", pd=p.pd)
    fresh.reconcile(iid)
    fresh.send_until_done(iid)
    assert len(p.alerts()) == 3 and all(a.status == "triggered" for a in p.alerts())




@pytest.mark.parametrize("title", [
    "Leaked customer database of ACME Corp via CVE-2026-0001",
    "<script>alert(1)</script> ``` @all [x](http://evil)",
    "Zürich 顧客 data — “quoted” \\ backslash",
])
def test_a_confidential_incidents_title_and_description_are_in_no_event(make, title: str) -> None:
    p: Paging = make()
    description = f"secret description: {title[::-1]}"
    iid = p.w.incident(*URGENT, title=title, description=description, confidential=True)
    p.reconcile(iid)
    p.send_until_done(iid)
    p.note(iid, "@incident-bot page marketing-ops exposure confirmed")
    p.reconcile(iid)
    p.send_until_done(iid)
    assert len(p.pd.received) >= 3
    for r in p.pd.received:
        assert title not in r.raw and description not in r.raw
        for word in (w for w in title.split() if len(w) > 5):
            assert word not in r.raw, word


def test_all_clear_resolves_every_alert_and_later_deliveries_page_no_one(make) -> None:
    p: Paging = make()
    iid = p.w.incident(*URGENT)
    p.reconcile(iid)
    p.send_until_done(iid)
    assert len(p.pd.open_alerts()) == 2
    p.w.sim.state.update_issue(p.w.project, iid, add_labels=["comms::all-clear"])
    p.reconcile(iid)
    p.send_until_done(iid)
    assert p.pd.open_alerts() == []
    before = len(p.pd.received)
    for _ in range(2):
        p.reconcile(iid)
        p.send_until_done(iid)
    assert len(p.pd.received) == before, "nothing more is sent after the resolves are recorded"
    assert "resolved" in p.checklist(iid)


def test_page_on_another_incident_opens_one_alert_and_the_acknowledgement_shows_once(make) -> None:
    p: Paging = make()
    iid = p.w.incident("severity::2")
    p.reconcile(iid)
    assert p.alerts() == []
    p.note(iid, "@incident-bot page support-manager customers are calling", author="sec-incident-manager")
    p.reconcile(iid)
    p.reconcile(iid)
    p.send_until_done(iid)
    (alert,) = p.alerts()
    assert p.triggers()[0]["payload"]["custom_details"]["reason"].endswith("customers are calling")
    p.clock.advance(120)
    assert p.pd.acknowledge(alert.dedup_key, "Ada *Lovelace* <b>") == 204
    assert p.pd.deliver(p.pd.deliveries[-1]) == 204  # a redelivery: nothing new
    p.reconcile()
    text = p.checklist(iid)
    assert "Support Manager on call: paged" in text and "acknowledged" in text
    assert "<b>" not in text and "Ada \\*Lovelace\\*" in text
    acks = [i for i in p.store.items(NAME, p.key(iid)) if i.key.endswith("|acknowledged")]
    assert len(acks) == 1
    log = "\n".join(n["body"] for n in p.w.bot_notes(iid))
    assert log.count("was acknowledged in PagerDuty") == 1


def test_a_400_is_dead_after_one_attempt(make, monkeypatch: pytest.MonkeyPatch) -> None:
    p: Paging = make()

    def refuse(event: Any) -> str:  # PagerDuty refusing the event (Events API v2: 400 "Event object is invalid")
        raise Invalid(("Event object is invalid",))

    monkeypatch.setattr(p.pd.state, "enqueue", refuse)
    iid = p.w.incident("severity::2")
    p.note(iid, "@incident-bot page support-manager now")
    p.reconcile(iid)
    assert p.sender.run_once() == "dead"
    assert p.pd.count(400) == 1
    p.clock.advance(3600)
    p.reconcile(iid)
    assert p.sender.run_once() is None and p.pd.count() == 1
    (item,) = p.store.items(NAME, p.key(iid))
    assert item.state == "refused" and "Event object is invalid" in (item.reason or "")


# ---- one test per actor ---------------------------------------------------------------------------


def test_outsider_an_unsigned_or_stale_webhook_is_401_and_records_nothing(make) -> None:
    p: Paging = make()
    iid = p.w.incident("severity::2")
    p.note(iid, "@incident-bot page support-manager now")
    p.reconcile(iid)
    p.send_until_done(iid)
    (alert,) = p.alerts()
    body = p.pd.webhook_body("incident.acknowledged", alert, "mallory")
    client = p.app.test_client()
    assert client.post("/pagerduty", data=body).status_code == 401
    forged = {"X-PagerDuty-Signature": sign(body, "wrong")}
    assert client.post("/pagerduty", data=body, headers=forged).status_code == 401
    p.clock.advance(3600)  # a signed delivery replayed an hour later
    signed = {"X-PagerDuty-Signature": sign(body, SECRET)}
    assert client.post("/pagerduty", data=body, headers=signed).status_code == 401
    assert [i for i in p.store.items(NAME, p.key(iid)) if "|" in i.key] == []


@pytest.mark.parametrize(("who", "level"), [("guest-gus", 10), ("reporter-rae", 20)])
def test_guest_and_reporter_page_is_refused(make, who: str, level: int) -> None:
    p: Paging = make()
    p.w.sim.state.add_user(who)
    p.w.sim.state.add_member(p.w.project, who, level)
    iid = p.w.incident("severity::2")
    p.note(iid, "@incident-bot page support-manager now", author=who)
    p.reconcile(iid)
    p.send_until_done(iid)
    assert p.alerts() == []


def test_developer_page_is_allowed_and_an_unknown_or_off_target_is_refused_with_the_list(make) -> None:
    p: Paging = make(env={"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER": SM_KEY})
    p.w.sim.state.add_user("dev-dana")
    p.w.sim.state.add_member(p.w.project, "dev-dana", 30)
    iid = p.w.incident("severity::2")
    p.note(iid, "@incident-bot page marketing-ops now", author="dev-dana")
    p.note(iid, "@incident-bot page nobody now", author="dev-dana")
    p.note(iid, "@incident-bot page support-manager now", author="dev-dana")
    p.reconcile(iid)
    p.send_until_done(iid)
    assert len(p.alerts()) == 1
    notes = "\n".join(n["body"] for n in p.w.bot_notes(iid)).replace("\\", "")  # as GitLab shows it
    assert "paging target marketing-ops is off" in notes and "nobody is not a paging target" in notes
    assert "support-manager (Support Manager on call)" in notes


def test_maintainer_editing_the_checklist_row_sees_it_rewritten_from_signed_state(make) -> None:
    p: Paging = make()
    iid = p.w.incident("severity::2")
    p.note(iid, "@incident-bot page support-manager now")
    p.reconcile(iid)
    p.send_until_done(iid)
    p.reconcile()
    note = next(n for n in p.w.bot_notes(iid) if "Support Manager on call: paged" in n["body"])
    forged = note["body"].replace("Support Manager on call: paged", "Support Manager on call: acknowledged by me")
    p.w.sim.state.edit_note_body(p.w.project, iid, note["id"], forged, actor="sec-incident-manager")
    p.reconcile(iid)
    assert "Support Manager on call: paged" in p.checklist(iid)
    assert "acknowledged by me" not in p.checklist(iid)


def test_hostile_client_an_oversized_or_unsized_webhook_body_is_refused_unread(make) -> None:
    p: Paging = make()
    client = p.app.test_client()
    big = b"{" + b" " * (receiver.MAX_BODY + 10) + b"}"
    assert client.post("/pagerduty", data=big).status_code == 413
    answer = client.post("/pagerduty", data=b"x", headers={"Transfer-Encoding": "chunked"})
    assert answer.status_code in (411, 401) and answer.data == b""


@pytest.mark.parametrize(("env", "said"), [
    ({"PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER": "short"}, "PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER: a routing key"),
])
def test_operator_a_mistyped_routing_key_is_one_line(w: World, env: dict[str, str], said: str, tmp_path) -> None:
    settings = Settings(gitlab_url=w.sim.url, variables=env)
    with pytest.raises(UserError) as info:
        PAGERDUTY.build(settings, w.cfg, None, clock=None, worker_id="x")
    assert str(info.value).startswith(said) and "\n" not in str(info.value)


def test_operator_a_mistyped_events_url_is_one_line() -> None:
    with pytest.raises(Exception) as info:
        Settings.from_env({"PAGERDUTY_EVENTS_URL": "events.pagerduty.com"})
    assert "PAGERDUTY_EVENTS_URL" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(Exception) as info:
        Settings.from_env({"PAGERDUTY_EVENTS_URL": "http://events.pagerduty.com"})
    assert "PAGERDUTY_EVENTS_URL" in str(info.value) and "\n" not in str(info.value)


def test_a_one_off_reconcile_judges_page_against_the_policys_targets(w: World, monkeypatch, capsys) -> None:
    """``incident-bot reconcile`` (no worker, no outbox) answers ``page`` as the worker would: it knows which
    targets are on, records the request in the signed state, and the worker pages later. It does not use the
    command up with "no paging target is configured"."""
    from bot.commands.cli import main

    iid = w.incident(*URGENT)
    w.sim.state.add_note(w.project, iid, "@incident-bot page marketing-ops list needed", author="sec-incident-manager")
    for name, value in {"GITLAB_URL": w.sim.url, "GITLAB_TOKEN": w.sim.token, "INCIDENT_BOT_SCOPE": w.project,
                        **ENV}.items():
        monkeypatch.setenv(name, value)
    assert main(["reconcile", f"{w.project}#{iid}"]) == 0, capsys.readouterr().err
    replies = [n["body"] for n in w.bot_notes(iid) if "page marketing-ops" in n["body"]]
    assert len(replies) == 1 and "✓" in replies[0] and "paging Marketing Ops on call" in replies[0], replies
    assert "no paging target is configured" not in replies[0]


def test_help_lists_the_page_command_once(make) -> None:
    """The worker's facts carry the planner's ``page`` and the registry's: a reader of ``help`` sees it once."""
    p: Paging = make()
    iid = p.w.incident(*URGENT)
    p.note(iid, "@incident-bot help", author="sec-incident-manager")
    p.reconcile(iid)
    (reply,) = [n["body"] for n in p.w.bot_notes(iid) if "page TARGET" in n["body"]]
    assert reply.count("page TARGET") == 1, reply
