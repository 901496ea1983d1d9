# ruff: noqa: F811  (the store fixtures are imported from the contract tests)
"""The Slack outbox and the Slack job kind, on every backend: each message sent once, summaries edited in
place, Slack jobs claimed only by the Slack worker."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from bot.chat.ports import ChatMessage
from bot.store import DeliveryStore, open_store
from tests.store.test_store import LEASE, at, backend, store, url  # noqa: F401  (fixtures)

K = "42#7"


def msg(event: str, text: str = "hello", summary: bool = False) -> ChatMessage:
    return ChatMessage(f"{K}|{event}|#e-group|0", "#e-group", text, summary)


def test_new_messages_are_pending_once_and_sent_ones_never_again(store: DeliveryStore) -> None:
    assert store.offer_messages(K, [msg("engage:a"), msg("engage:b")], at(0)) == 2
    assert store.offer_messages(K, [msg("engage:a"), msg("engage:b")], at(1)) == 2  # the same two, still pending
    first, second = store.pending_messages(K)
    assert (first.key, second.key) == (msg("engage:a").key, msg("engage:b").key)
    store.mark_sent(first.key, "C1", "1.1", first.text, at(2))
    store.mark_refused(second.key, "channel_not_found", at(2))
    assert store.offer_messages(K, [msg("engage:a", "changed"), msg("engage:b")], at(3)) == 0
    assert store.pending_messages(K) == []
    assert store.pending_messages("other#1") == []
    assert store.refused_targets(K) == {"#e-group": "channel_not_found"}
    assert store.refused_targets("other#1") == {}


def test_a_summary_whose_text_changed_is_pending_again_with_its_ts(store: DeliveryStore) -> None:
    store.offer_messages(K, [msg("summary", "v1", True)], at(0))
    (item,) = store.pending_messages(K)
    assert not item.sent
    store.mark_sent(item.key, "C1", "1.1", "v1", at(1))
    assert store.offer_messages(K, [msg("summary", "v1", True)], at(2)) == 0
    assert store.offer_messages(K, [msg("summary", "v2", True)], at(3)) == 1
    (again,) = store.pending_messages(K)
    assert (again.text, again.ts, again.channel, again.sent) == ("v2", "1.1", "C1", True)


def test_a_summary_edited_while_it_was_being_sent_stays_pending(store: DeliveryStore) -> None:
    store.offer_messages(K, [msg("summary", "v1", True)], at(0))
    store.offer_messages(K, [msg("summary", "v2", True)], at(1))
    store.mark_sent(msg("summary").key, "C1", "1.1", "v1", at(2))
    (item,) = store.pending_messages(K)
    assert item.text == "v2" and item.ts == "1.1"


def test_slack_jobs_are_claimed_only_by_the_slack_worker(store: DeliveryStore) -> None:
    store.enqueue(K, at(0), "slack", kind="slack")
    store.enqueue(K, at(1), "webhook")
    gitlab = store.claim("w1", at(2), LEASE)
    assert gitlab is not None and gitlab.incident_key == K
    assert store.claim("w1", at(2), LEASE) is None
    slack = store.claim("s1", at(2), LEASE, kind="slack")
    assert slack is not None and slack.incident_key == K and slack.kind == "slack"
    assert store.claim("s1", at(2), LEASE, kind="slack") is None
    store.fail(slack.id, "s1", "Slack unavailable", at(3), retry_in=timedelta(seconds=30))
    assert store.claim("s1", at(10), LEASE, kind="slack") is None
    assert store.claim("s1", at(40), LEASE, kind="slack") is not None


def test_a_version_4_sqlite_database_is_migrated_with_its_jobs(tmp_path) -> None:
    import bot.store.sqlite as sqlite_store

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what version 4 of the store wrote
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version in range(4):
            for statement in sqlite_store.MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 'then')", (version + 1,))
    conn.close()
    with open_store(str(path)) as store:
        assert store.stats().schema_version == len(sqlite_store.MIGRATIONS)
        assert store.offer_messages(K, [msg("engage:a")], at(0)) == 1


def test_a_history_read_goes_back_to_the_first_attempt_or_the_incidents_start(store: DeliveryStore) -> None:
    start = at(-3600)
    first = ChatMessage(f"{K}|engage:a|#e-group|0", "#e-group", "a", since=start)
    store.offer_messages(K, [first], at(0))  # a store that knew nothing of the incident: maybe sent before
    (item,) = store.pending_messages(K)
    assert item.unsure and item.history_from == start
    later = ChatMessage(f"{K}|engage:b|#e-group|0", "#e-group", "b", since=start)
    store.offer_messages(K, [first, later], at(1))  # known now: new for sure, no history read at all
    new = store.pending_messages(K)[1]
    assert not new.unsure and new.history_from is None
    store.mark_trying([new.key], at(5))
    store.mark_trying([new.key], at(9))  # a second try keeps the first attempt's time
    assert store.pending_messages(K)[1].history_from == at(5)


def test_a_refused_message_is_tried_again_once_its_refusal_is_old_enough(store: DeliveryStore) -> None:
    store.offer_messages(K, [msg("engage:a"), msg("engage:b")], at(0))
    a, b = store.pending_messages(K)
    store.mark_refused(a.key, "channel #inc-1 not found", at(10))
    store.mark_refused(b.key, "channel #inc-1 not found", at(10))
    assert store.revive_refused(K, [a.key, b.key], at(5)) == 0, "refused too recently"
    assert store.revive_refused(K, [a.key], at(10)) == 1, "only the messages the plan still calls for"
    (again,) = store.pending_messages(K)
    assert again.key == a.key and again.unsure
    assert store.refused_targets(K) == {"#e-group": "channel #inc-1 not found"}, "still said, until sent"
    store.mark_sent(a.key, "C1", "1.1", a.text, at(20))
    assert store.revive_refused(K, [a.key], at(30)) == 0


def test_the_whole_outbox_says_what_was_sent_when_and_what_waits(store: DeliveryStore) -> None:
    """What ``plan`` and the checklist's engaged rows read: every state, with when it last changed."""
    store.offer_messages(K, [msg("engage:a"), msg("engage:b"), msg("engage:c")], at(0))
    store.mark_sent(msg("engage:a").key, "C1", "1.1", "hello", at(5))
    store.mark_refused(msg("engage:b").key, "channel_not_found", at(6))
    a, b, c = store.outbox(K)
    assert (a.state, a.updated_at, a.channel) == ("sent", at(5), "C1")
    assert (b.state, b.updated_at, b.reason) == ("refused", at(6), "channel_not_found")
    assert (c.state, c.sent) == ("pending", False)
    assert store.outbox("other#1") == []
