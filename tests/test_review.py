"""The communications review computed from facts alone (``bot.core.review``): each metric, its two events,
and the reason when the facts cannot give a value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Severity
from bot.core import clocks, review
from bot.core.model import (
    BotState,
    Child,
    ClockFiling,
    ClockRecord,
    Desired,
    EngagementPlan,
    IncidentRef,
    Issue,
    LabelChange,
    Note,
    Observed,
    Person,
)

T = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
REF = IncidentRef("acme/sec", 12)
URL = "https://gitlab.example/acme/sec/-/issues/12"


def t(hhmm: str, day: int = 0) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return T.replace(hour=h, minute=m) + timedelta(days=day)


def incident(created: datetime | None = T, **kw) -> Issue:
    return Issue(REF, title="x", created_at=created, web_url=URL, project_path="acme/sec", **kw)


def child(channel: str, iid: int, opened: datetime, closed: datetime | None = None) -> Child:
    issue = Issue(IncidentRef("acme/sec", iid), created_at=opened, closed_at=closed,
                  state="closed" if closed else "opened", web_url=f"https://gitlab.example/acme/sec/-/issues/{iid}")
    return Child(channel, issue, linked=True)


def desired(**kw) -> Desired:
    base = dict(ref=REF, in_scope=True, scope_reason="", severity=Severity.CRITICAL, severity_source="",
                phase="", phase_name="", flags=())
    return Desired(**(base | kw))  # type: ignore[arg-type]


def metrics(cfg, observed: Observed, plan: Desired | None = None, labels=None):
    got = review.review(observed, plan or desired(), cfg, labels)
    return {m.name: m for m in got.metrics}


def added(label: str, when: datetime, n: int = 1, action: str = "add") -> LabelChange:
    return LabelChange(n, label, action, when, "sec-oncall")


@pytest.mark.parametrize(
    ("labels", "closed", "seconds", "note"),
    [
        (None, None, None, "when comms::scoped was added is not known: the incident's label events were not read"),
        ([added("severity::1", t("09:00"))], None, None, "comms::scoped was never added to the incident"),
        ([added("comms::scoped", t("09:30"))], None, 30 * 60, ""),
        # Removed and added again: scoped when it was first added.
        ([added("comms::scoped", t("09:30"), 1), added("comms::scoped", t("10:00"), 2, "remove"),
          added("comms::scoped", t("11:00"), 3)], None, 30 * 60, ""),
    ],
)
def test_declared_to_scoped_comes_from_gitlabs_label_events(default_config, labels, closed, seconds, note):
    m = metrics(default_config, Observed(incident()), labels=labels)["declared_to_scoped"]
    assert (m.seconds, m.note) == (seconds, note)


@pytest.mark.parametrize(
    ("closed", "seconds", "note"),
    [
        (None, None, "no child is closed yet (no external communication sent); the plan's target for a critical "
                     "incident is 6h"),
        (t("15:30"), 6 * 3600, "met; the plan's target for a critical incident is 6h"),
        (t("15:31"), 6 * 3600 + 60, "missed; the plan's target for a critical incident is 6h"),
    ],
)
def test_first_external_comms_is_measured_against_the_six_hour_target(default_config, closed, seconds, note):
    observed = Observed(incident(), children={"comms-email": child("comms-email", 13, t("09:40"), closed)})
    m = metrics(default_config, observed, labels=[added("comms::scoped", t("09:30"))])[
        "scoped_to_first_external_comms"]
    assert (m.seconds, m.note) == (seconds, note)
    if closed:
        assert m.end is not None and m.end.url.endswith("/issues/13")


def test_without_the_incidents_creation_time_nothing_is_measured_from_it(default_config):
    named = Note(90001, "log", "incident-bot", created_at=t("09:01"))
    observed = Observed(incident(created=None), logged=frozenset({"engaged"}), logged_at={"engaged": named})
    m = metrics(default_config, observed)["declared_to_roles_named"]
    assert (m.seconds, m.note) == (None, "the incident's creation time is not known")
    assert m.end is not None and m.end.url == f"{URL}#note_90001"


def test_roles_named_is_the_bots_first_status_log_entry(default_config):
    named = Note(90001, "log", "incident-bot", created_at=t("09:02"))
    observed = Observed(incident(), logged=frozenset({"engaged"}), logged_at={"engaged": named})
    m = metrics(default_config, observed)["declared_to_roles_named"]
    assert m.seconds == 120 and m.start is not None and m.start.url == URL


def _engagement(every: timedelta = timedelta(hours=1)) -> EngagementPlan:
    return EngagementPlan("e-group", "E-Group", Person("role:seoc", "SEOC", "sec"), every, "slack", "critical")


@pytest.mark.parametrize(
    ("updates", "clear", "seconds", "held"),
    [
        (["09:50", "10:45", "11:40"], "12:00", 55 * 60, "cadence held"),
        (["09:50", "11:30"], "12:00", 100 * 60, "cadence missed"),
        ([], "12:00", 3 * 3600, "cadence missed"),  # began 09:00, all clear 12:00, no update at all
        # Before the all clear the running stretch is not measured (the review does not change with the time).
        (["09:50", "10:45"], None, 55 * 60, "cadence held"),
    ],
)
def test_an_engagements_longest_gap_between_updates_against_its_cadence(default_config, updates, clear, seconds, held):
    notes = tuple(Note(100 + i, "update", "sec-im", created_at=t(u)) for i, u in enumerate(updates))
    logged_at = {"all-clear": Note(90050, "log", "incident-bot", created_at=t(clear))} if clear else {}
    observed = Observed(
        incident(), updates=notes, state=BotState(began={"e-group": T}),
        logged=frozenset({*logged_at, "reminder:e-group:x:1"}), logged_at=logged_at,
    )
    m = metrics(default_config, observed, desired(engagements=(_engagement(),)))["engagement:e-group:longest_gap"]
    assert m.seconds == seconds and m.note.startswith(held)
    assert f"{len(updates)} status updates; 1 windows missed (reminders posted)" in m.note


def test_an_engagement_without_an_update_or_the_all_clear_is_not_measured_yet(default_config):
    observed = Observed(incident(), state=BotState(began={"e-group": T}))
    m = metrics(default_config, observed, desired(engagements=(_engagement(),)))["engagement:e-group:longest_gap"]
    assert m.seconds is None and m.note.startswith("no status update yet and no all clear")


def test_order_rules_kept_and_broken_with_their_times(default_config):
    rule = default_config.comms_order[0]
    later = rule.before[0]
    plans = desired(children=tuple(_child_plan(c) for c in (rule.channel, later)))
    broken = Observed(incident(), children={
        rule.channel: child(rule.channel, 13, t("09:20"), t("11:30")),
        later: child(later, 14, t("09:20"), t("11:00")),
    })
    m = metrics(default_config, broken, plans)[f"order:{rule.id}:{later}"]
    assert m.seconds == -30 * 60 and m.note == f"broken: {later} went out before {rule.channel}"
    kept = Observed(incident(), children={
        rule.channel: child(rule.channel, 13, t("09:20"), t("10:30")),
        later: child(later, 14, t("09:20"), t("11:00")),
    })
    m = metrics(default_config, kept, plans)[f"order:{rule.id}:{later}"]
    assert m.seconds == 30 * 60 and m.note == "kept"


def _child_plan(channel: str):
    from bot.core.model import ChildPlan

    return ChildPlan(channel, "t", "t.md.j2", (), Person("x", "x", None), (), (), "")


@pytest.mark.parametrize(
    ("filed", "seconds", "note"),
    [
        (None, None, "not filed yet: due 2026-12-03T09:00:00Z"),  # started Monday 09:00: 72 hours
        (t("08:00", 4), -23 * 3600, "filed late"),
        (t("09:00", 2), 24 * 3600, "filed on time"),
    ],
)
def test_each_clock_has_its_margin(default_config, filed, seconds, note):
    gdpr = next(c for c in default_config.clocks if c.id == "gdpr")
    filings = (ClockFiling("notification", "DPA-1", "legal", filed),) if filed else ()
    record = ClockRecord(started=T, by="legal", at=T, filings=filings)
    view = clocks.views([gdpr], {"gdpr": record}, {"gdpr": Person("team:legal", "Legal", "legal")},
                        default_config.calendars)
    m = metrics(default_config, Observed(incident()), desired(clocks=view))[
        "clock:gdpr:notification:margin"]
    assert (m.seconds, m.note) == (seconds, note)


def test_an_incident_without_a_page_says_so_with_a_null_paging_metric(default_config):
    got = metrics(default_config, Observed(incident()))
    name = "pages:paged_to_acknowledged"
    assert got[name].seconds is None and got[name].note == "no page was sent for this incident"


def test_the_json_names_the_schema_and_the_incident(default_config):
    got = review.review(Observed(incident(confidential=True)), desired(), default_config).as_json()
    assert got["schema"] == review.SCHEMA == 1
    assert got["incident"] == "acme/sec#12" and got["confidential"] is True
    assert {"name", "seconds", "from", "to", "note"} == set(got["metrics"][0])


def test_a_public_post_is_the_first_external_comms_and_each_post_a_metric(default_config):
    from bot.core.outbound import OutboundFacts, Published

    posts = (Published("status_page", "Status page", "k:create:aaaa1111", t("10:30"), "draft aaaa1111 created"),
             Published("status_page", "Status page", "k:update:bbbb2222", t("11:30"), "draft bbbb2222 updated"))
    observed = Observed(incident(), children={"comms-email": child("comms-email", 13, t("09:40"), t("12:00"))},
                        outbound=OutboundFacts(published=posts))
    got = metrics(default_config, observed, labels=[added("comms::scoped", t("09:30"))])
    first = got["scoped_to_first_external_comms"]
    assert first.seconds == 3600 and first.end is not None and first.end.what.startswith("Status page: draft aaaa")
    assert got["status_page:first_post"].seconds == 3600
    assert got["status_page:post:2"].seconds == 2 * 3600
