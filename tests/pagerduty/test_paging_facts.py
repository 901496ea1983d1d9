"""What PagerDuty's outbox tells the GitLab side: checklist rows, status-log lines, timeline events and the
review's paged → acknowledged spans. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.core.review import outbound as review_outbound
from bot.integrations.pagerduty.facts import paging_facts, recorded
from bot.store.base import OutboxItem

NAMES = {"support-manager": "Support Manager on call", "marketing-ops": "Marketing Ops on call"}
AT = datetime(2026, 12, 7, 10, 2, tzinfo=UTC)
ACK = datetime(2026, 12, 7, 10, 5, tzinfo=UTC)
KEY = "7/12/support-manager/0"


def item(key: str, state: str = "sent", text: str = "{}", at: datetime = AT) -> OutboxItem:
    return OutboxItem(key, "7#12", key.split("/")[2], text, False, state, "incident-bot-x", updated_at=at,  # type: ignore[arg-type]
                      integration="pagerduty")


def test_a_page_and_its_acknowledgement_show_as_one_row_one_line_each_and_a_span() -> None:
    ack = json.dumps({"by": "Ada *Lovelace*", "at": ACK.isoformat()})
    items = [item(KEY, text=json.dumps({"reason": "policy: critical incident"})),
             item(f"{KEY}|acknowledged", text=ack, at=ACK)]
    facts = paging_facts(NAMES, {"support-manager"}, items)
    [(label, rows)] = facts.rows({})
    assert label == "PagerDuty"
    assert [r.text for r in rows] == ["Support Manager on call: paged 10:02, acknowledged 10:05 by Ada \\*Lovelace\\*",
                                      "Marketing Ops on call: off (no routing key)"]
    assert [e.text for e in facts.lines({})] == [
        "Paged Support Manager on call through PagerDuty (policy\\: critical incident)",
        "The page of Support Manager on call was acknowledged in PagerDuty by Ada \\*Lovelace\\*"]
    assert [h.at for h in facts.happened] == [AT, ACK]
    (span,) = facts.spans
    assert (span.start_at, span.end_at, span.note) == (AT, ACK, "")


def test_a_page_not_acknowledged_is_a_null_span_with_the_reason_in_the_review() -> None:
    facts = paging_facts(NAMES, set(NAMES), [item(KEY)])

    class F:  # the review's facts, as far as the section reads them
        class observed:
            outbound = facts

    (metric,) = list(review_outbound(F))  # type: ignore[arg-type]
    assert metric.seconds is None and metric.note == "not acknowledged in PagerDuty"


def test_the_plan_reads_trying_sent_and_resolved_from_the_rows() -> None:
    rows = [item(KEY, "trying"), item("7/12/marketing-ops/0"), item("7/12/marketing-ops/0|resolve")]
    assert recorded(rows) == {KEY: "trying", "7/12/marketing-ops/0": "resolved"}
