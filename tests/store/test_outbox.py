"""The Slack outbox and the Slack job kind, on every backend: each message sent once, summaries edited in
place, Slack jobs claimed only by the Slack worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.integrations.slack.ports import ChatMessage
from bot.store import DeliveryStore, open_store
from tests.store.support import LEASE, at, sqlite_as_written_by

K = "42#7"


def msg(event: str, text: str = "hello", summary: bool = False) -> ChatMessage:
    return ChatMessage(f"{K}|{event}|#e-group|0", "#e-group", text, summary)


def test_new_messages_are_pending_once_and_sent_ones_never_again(store: DeliveryStore) -> None:
    assert store.offer("slack", K, [msg("engage:a"), msg("engage:b")], at(0)) == 2
    assert store.offer("slack", K, [msg("engage:a"), msg("engage:b")], at(1)) == 2  # the same two, still pending
    first, second = store.pending("slack", K)
    assert (first.key, second.key) == (msg("engage:a").key, msg("engage:b").key)
    store.mark_sent("slack", first.key, "C1 1.1", first.text, at(2))
    store.mark_refused("slack", second.key, "channel_not_found", at(2))
    assert store.offer("slack", K, [msg("engage:a", "changed"), msg("engage:b")], at(3)) == 0
    assert store.pending("slack", K) == []
    assert store.pending("slack", "other#1") == []
    assert store.refused_targets("slack", K) == {"#e-group": "channel_not_found"}
    assert store.refused_targets("slack", "other#1") == {}


def test_a_summary_whose_text_changed_is_pending_again_with_its_ts(store: DeliveryStore) -> None:
    store.offer("slack", K, [msg("summary", "v1", True)], at(0))
    (item,) = store.pending("slack", K)
    assert not item.sent
    store.mark_sent("slack", item.key, "C1 1.1", "v1", at(1))
    assert store.offer("slack", K, [msg("summary", "v1", True)], at(2)) == 0
    assert store.offer("slack", K, [msg("summary", "v2", True)], at(3)) == 1
    (again,) = store.pending("slack", K)
    assert (again.text, again.remote, again.sent, again.state) == ("v2", "C1 1.1", True, "intent")


def test_a_summary_edited_while_it_was_being_sent_stays_pending(store: DeliveryStore) -> None:
    store.offer("slack", K, [msg("summary", "v1", True)], at(0))
    store.offer("slack", K, [msg("summary", "v2", True)], at(1))
    store.mark_sent("slack", msg("summary").key, "C1 1.1", "v1", at(2))
    (item,) = store.pending("slack", K)
    assert item.text == "v2" and item.remote == "C1 1.1"


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
    sqlite_as_written_by(path, 4).close()
    with open_store(str(path)) as store:
        assert store.stats().schema_version == len(sqlite_store.MIGRATIONS)
        assert store.offer("slack", K, [msg("engage:a")], at(0)) == 1


def test_a_history_read_goes_back_to_the_first_attempt_or_the_incidents_start(store: DeliveryStore) -> None:
    start = at(-3600)
    first = ChatMessage(f"{K}|engage:a|#e-group|0", "#e-group", "a", since=start)
    store.offer("slack", K, [first], at(0))  # a store that knew nothing of the incident: maybe sent before
    (item,) = store.pending("slack", K)
    assert item.unsure and item.history_from == start
    later = ChatMessage(f"{K}|engage:b|#e-group|0", "#e-group", "b", since=start)
    store.offer("slack", K, [first, later], at(1))  # known now: new for sure, no history read at all
    new = store.pending("slack", K)[1]
    assert not new.unsure and new.history_from is None
    store.mark_trying("slack", [new.key], at(5))
    store.mark_trying("slack", [new.key], at(9))  # a second try keeps the first attempt's time
    assert store.pending("slack", K)[1].history_from == at(5)


def test_a_refused_message_is_tried_again_once_its_refusal_is_old_enough(store: DeliveryStore) -> None:
    store.offer("slack", K, [msg("engage:a"), msg("engage:b")], at(0))
    a, b = store.pending("slack", K)
    store.mark_refused("slack", a.key, "channel #inc-1 not found", at(10))
    store.mark_refused("slack", b.key, "channel #inc-1 not found", at(10))
    assert store.revive_refused("slack", K, [a.key, b.key], at(5)) == 0, "refused too recently"
    assert store.revive_refused("slack", K, [a.key], at(10)) == 1, "only the messages the plan still calls for"
    (again,) = store.pending("slack", K)
    assert again.key == a.key and again.unsure
    assert store.refused_targets("slack", K) == {"#e-group": "channel #inc-1 not found"}, "still said, until sent"
    store.mark_sent("slack", a.key, "C1 1.1", a.text, at(20))
    assert store.revive_refused("slack", K, [a.key], at(30)) == 0


def test_the_whole_outbox_says_what_was_sent_when_and_what_waits(store: DeliveryStore) -> None:
    """What ``plan`` and the checklist's engaged rows read: every state, with when it last changed."""
    store.offer("slack", K, [msg("engage:a"), msg("engage:b"), msg("engage:c")], at(0))
    store.mark_sent("slack", msg("engage:a").key, "C1 1.1", "hello", at(5))
    store.mark_refused("slack", msg("engage:b").key, "channel_not_found", at(6))
    a, b, c = store.items("slack", K)
    assert (a.state, a.updated_at, a.remote) == ("sent", at(5), "C1 1.1")
    assert (b.state, b.updated_at, b.reason) == ("refused", at(6), "channel_not_found")
    assert (c.state, c.sent) == ("intent", False)
    assert store.items("slack", "other#1") == []


# -- one outbox for every integration ------------------------------------------------------------------------


def page(key: str, target: str = "support-manager") -> ChatMessage:
    return ChatMessage(f"{K}|page:{key}", target, "page them")


def test_each_integration_has_its_own_items_under_the_same_keys(store: DeliveryStore) -> None:
    """A second integration (here a pager) neither sees nor changes Slack's items, even under the same key."""
    store.offer("slack", K, [msg("engage:a")], at(0))
    assert store.offer("pager", K, [msg("engage:a"), page("1")], at(0)) == 2
    (slack,) = store.pending("slack", K)
    store.mark_sent("slack", slack.key, "C1 1.1", slack.text, at(1))
    assert [i.key for i in store.pending("pager", K)] == [msg("engage:a").key, page("1").key]
    assert all(i.integration == "pager" and not i.sent for i in store.items("pager", K))
    store.mark_refused("pager", page("1").key, "routing key refused", at(2))
    assert store.refused_targets("slack", K) == {}
    assert store.refused_targets("pager", K) == {"support-manager": "routing key refused"}
    assert store.refused_targets(None, K) == {"support-manager": "routing key refused"}, "any integration"
    assert store.revive_refused("slack", K, [page("1").key], at(10)) == 0


def test_an_item_moves_intent_trying_sent_in_one_vocabulary(store: DeliveryStore) -> None:
    store.offer("pager", K, [page("1")], at(0))
    store.offer("pager", K, [page("1"), page("2")], at(1))  # known incident: page 2 is new for sure
    one, two = store.pending("pager", K)
    assert (one.state, two.state, two.unsure) == ("intent", "intent", False)
    store.mark_trying("pager", [two.key], at(2))
    (_, trying) = store.pending("pager", K)
    assert (trying.state, trying.unsure, trying.history_from) == ("trying", True, at(2)), "may be out there now"
    store.mark_sent("pager", two.key, "dedup-key-2", two.text, at(3))
    assert [(i.state, i.remote) for i in store.items("pager", K)] == [("intent", None), ("sent", "dedup-key-2")]
    store.mark_trying("pager", [two.key], at(4))
    assert store.items("pager", K)[1].state == "sent", "a sent item is not tried again"


_V9_ROWS = [  # key, state, channel, ts, sent_text, reason, unsure, history_from: what version 9's chat_outbox held
    (msg("engage:a").key, "sent", "C1", "1.1", "hello", None, True, None),
    (msg("channel").key, "sent", "C9", "", "hello", None, True, None),
    (msg("engage:b").key, "pending", None, None, None, None, False, None),
    (msg("engage:c").key, "pending", None, None, None, None, True, at(-60)),
    (msg("engage:d").key, "refused", None, None, None, "channel_not_found", False, None),
]


def _check_moved(store: DeliveryStore) -> None:
    items = store.items("slack", K)
    assert [(i.state, i.remote, i.unsure) for i in items] == [
        ("sent", "C1 1.1", True),
        ("sent", "C9", True),
        ("intent", None, False),
        ("trying", None, True),  # a send of it may have happened: looked for before posting
        ("refused", None, False),
    ]
    assert items[3].history_from == at(-60)
    assert [i.key for i in store.pending("slack", K)] == [msg("engage:b").key, msg("engage:c").key]
    assert store.refused_targets("slack", K) == {"#e-group": "channel_not_found"}
    store.offer("slack", K, [msg("engage:e")], at(0))
    assert store.items("slack", K)[-1].key == msg("engage:e").key, "new items come after the moved ones"
    # The GitLab create log moved too: a create that may have happened, and one GitLab answered.
    creates = sorted(((i.target, i.state, i.remote) for i in store.items("gitlab", K)), key=lambda c: c[0])
    assert creates == [("comms-email", "sent", "12"), ("comms-faq", "trying", None)]
    faq, email = store.note_create(K, "comms-faq", at(0)), store.note_create(K, "comms-email", at(0))
    assert faq is not None and (faq.attempted_at, faq.child_iid) == (at(-90), None)
    assert email is not None and (email.attempted_at, email.child_iid) == (at(-90), 12)
    assert store.refused_targets(None, K) == {"#e-group": "channel_not_found"}, "a create is never a refusal"


def test_a_version_9_postgres_database_moves_its_slack_outbox_into_the_outbox(postgres_database) -> None:
    import psycopg

    import bot.store.postgres as pg_store

    url = postgres_database.new_url()
    with psycopg.connect(url) as conn:
        conn.execute(pg_store.SCHEMA_VERSION_TABLE)
        for version in range(9):
            for statement in pg_store.MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version + 1,))
        for key, state, ch, ts, sent, reason, unsure, hist in _V9_ROWS:
            conn.execute(
                "INSERT INTO chat_outbox (key, incident_key, target, text, summary, state, channel, ts, sent_text,"
                " reason, unsure, history_from, updated_at)"
                " VALUES (%s, %s, '#e-group', 'hello', false, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key, K, state, ch, ts, sent, reason, unsure, hist, at(-120)),
            )
        conn.execute(
            "INSERT INTO create_attempts (incident_key, channel, attempted_at, child_iid)"
            " VALUES (%s, 'comms-faq', %s, NULL), (%s, 'comms-email', %s, 12)",
            (K, at(-90), K, at(-90)),
        )
    with open_store(url) as store:
        assert store.stats().schema_version == len(pg_store.MIGRATIONS)
        _check_moved(store)


def test_a_version_9_sqlite_database_moves_its_slack_outbox_into_the_outbox(tmp_path) -> None:
    import bot.store.sqlite as sqlite_store

    def us(when):  # the SQLite store's microseconds since the epoch
        return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)

    path = tmp_path / "old.db"
    with sqlite_as_written_by(path, 9) as conn:  # what version 9 wrote: the Slack outbox in chat_outbox
        conn.executemany(
            "INSERT INTO chat_outbox (key, incident_key, target, text, summary, state, channel, ts, sent_text,"
            " reason, unsure, history_from, updated_at) VALUES (?, ?, '#e-group', 'hello', 0, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(key, K, state, ch, ts, sent, reason, int(unsure), None if hist is None else us(hist), us(at(-120)))
             for key, state, ch, ts, sent, reason, unsure, hist in _V9_ROWS],
        )
        conn.execute(
            "INSERT INTO create_attempts (incident_key, channel, attempted_at, child_iid)"
            " VALUES (?, 'comms-faq', ?, NULL), (?, 'comms-email', ?, 12)",
            (K, us(at(-90)), K, us(at(-90))),
        )
    conn.close()
    with open_store(str(path)) as store:
        assert store.stats().schema_version == len(sqlite_store.MIGRATIONS)
        _check_moved(store)


def test_an_item_is_found_by_its_remote_reference_across_incidents(store: DeliveryStore) -> None:
    """What an inbound webhook names (the remote side's reference) leads back to the item and its incident."""
    store.offer("slack", K, [msg("engage:a"), msg("engage:b")], at(0))
    store.mark_sent("slack", msg("engage:a").key, "C1 1.1", "hello", at(1))
    assert store.by_remote("slack", "C1 1.1")[0].incident_key == K
    assert [i.key for i in store.by_remote("slack", "C1 1.1")] == [msg("engage:a").key]
    assert store.by_remote("slack", "C1 9.9") == [] and store.by_remote("other", "C1 1.1") == []
