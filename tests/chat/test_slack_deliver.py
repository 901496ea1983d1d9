"""The sending step: every planned message reaches Slack exactly once, through faults, outages and lost memory."""

from __future__ import annotations

from collections import Counter

from bot.integrations.slack.deliver import DeliveryReport, Outgoing, deliver
from bot.integrations.slack.ports import ChatMessage
from bot.integrations.slack.slackapi import SlackChat
from bot.simslack import SimulatedSlack
from tests.chat.conftest import Clock, Workspace


def msg(n: int, target: str = "#incidents", summary: bool = False, text: str | None = None) -> ChatMessage:
    key = f"sec/incidents#{n}|{'summary' if summary else 'declared'}|{target}|0"
    return ChatMessage(key, target, text or f"Incident #{n} declared", summary)


class Caller:
    """What the worker does around ``deliver``: remembers what was sent (key → ts) and feeds it back."""

    def __init__(self, port: SlackChat) -> None:
        self.port = port
        self.known: dict[str, str] = {}
        self.sent_text: dict[str, str] = {}

    def items(self, messages: list[ChatMessage]) -> list[Outgoing]:
        return [Outgoing(m, self.known.get(m.key), self.sent_text.get(m.key) == m.text) for m in messages]

    def run(self, messages: list[ChatMessage]) -> DeliveryReport:
        report = deliver(self.items(messages), self.port)
        texts = {m.key: m.text for m in messages}
        for s in report.sent:
            self.known[s.key] = s.ts
            self.sent_text[s.key] = texts[s.key]
        return report

    def until_done(
        self, messages: list[ChatMessage], slack_clock: Clock, max_rounds: int = 500
    ) -> list[DeliveryReport]:
        reports = []
        for _ in range(max_rounds):
            report = self.run(messages)
            reports.append(report)
            if report.complete:
                return reports
            slack_clock.advance(report.retry_after or 1)
        raise AssertionError("never finished")


def bot_keys(slack: SimulatedSlack) -> Counter[str]:
    return Counter(slack.state.keys())


def test_new_messages_cost_one_history_read_and_one_post_each(chat: SlackChat, slack: SimulatedSlack,
                                                              ws: Workspace) -> None:
    messages = [msg(n) for n in range(10)]
    report = deliver([Outgoing(m) for m in messages], chat)
    assert report.complete and report.posted == 10 and len(report.sent) == 10
    assert (slack.count("conversations.list"), slack.count("conversations.history"), slack.count("chat.postMessage"),
            slack.count()) == (1, 1, 10, 13), "and auth.test once: only the bot's own keys count"
    assert report.calls == 12  # 1 resolve + 1 history + 10 posts
    assert slack.state.texts(ws.incidents.id) == [m.text for m in messages]


def test_a_duplicate_deliver_posts_nothing_again(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    caller = Caller(chat)
    messages = [msg(n) for n in range(3)] + [msg(1, "#e-group")]
    caller.run(messages)
    slack.reset_calls()
    again = caller.run(messages)
    assert again.sent == [] and again.calls == 0 and slack.count() == 0
    blind = deliver([Outgoing(m) for m in messages], chat)  # the same items, as if nothing were known
    assert blind.posted == 0 and blind.found == 4 and slack.count("chat.postMessage") == 0
    assert slack.count("conversations.history") == 2  # one read per channel
    assert all(n == 1 for n in bot_keys(slack).values()) and len(bot_keys(slack)) == 4


def test_a_post_whose_answer_was_lost_is_found_not_reposted(chat: SlackChat, slack: SimulatedSlack,
                                                            ws: Workspace) -> None:
    messages = [msg(n) for n in range(4)]
    slack.fail_after_commit(1)
    first = deliver([Outgoing(m) for m in messages], chat)
    assert first.unavailable is not None and first.sent == []  # stopped at once; the post landed in Slack
    assert bot_keys(slack) == Counter({messages[0].key: 1})
    rerun = deliver([Outgoing(m) for m in messages], chat)  # no knowledge of the first post
    assert rerun.complete and rerun.found == 1 and rerun.posted == 3
    assert bot_keys(slack) == Counter({m.key: 1 for m in messages})
    assert {s.key: s.ts for s in rerun.sent}[messages[0].key] == slack.state.bot_messages()[0].ts


def test_with_an_empty_memory_nothing_is_reposted_and_summaries_are_edited(chat: SlackChat, slack: SimulatedSlack,
                                                                            ws: Workspace) -> None:
    before = [msg(1), msg(2), msg(1, summary=True, text="Incident #1: investigating")]
    Caller(chat).run(before)
    after = [msg(1), msg(2), msg(1, summary=True, text="Incident #1: scoped, 2 channels"), msg(3)]
    report = Caller(chat).run(after)  # a fresh process with an empty database
    assert report.complete and report.found == 3 and report.updated == 1 and report.posted == 1
    assert slack.state.texts(ws.incidents.id) == ["Incident #1 declared", "Incident #2 declared",
                                                "Incident #1: scoped, 2 channels", "Incident #3 declared"]
    assert bot_keys(slack) == Counter({m.key: 1 for m in after})


def test_a_summary_is_edited_in_place_whenever_its_text_changes(chat: SlackChat, slack: SimulatedSlack,
                                                                ws: Workspace) -> None:
    caller = Caller(chat)
    for phase in ("investigating", "scoped", "scoped", "all clear"):
        caller.run([msg(7, summary=True, text=f"Incident #7: {phase}")])
    assert slack.state.texts(ws.incidents.id) == ["Incident #7: all clear"]
    assert (slack.count("chat.postMessage"), slack.count("chat.update")) == (1, 2)


def test_a_summary_deleted_in_slack_is_posted_again(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    caller = Caller(chat)
    caller.run([msg(7, summary=True, text="v1")])
    slack.state.messages[ws.incidents.id].clear()
    report = caller.run([msg(7, summary=True, text="v2")])
    assert report.posted == 1 and slack.state.texts(ws.incidents.id) == ["v2"]


def test_a_refused_target_fails_alone_with_a_reason_naming_it(chat: SlackChat, slack: SimulatedSlack,
                                                              ws: Workspace) -> None:
    messages = [msg(1, "#outside"), msg(1), msg(2, "#outside"), msg(1, "#nowhere"), msg(1, "email:alice@example.com")]
    report = deliver([Outgoing(m) for m in messages], chat)
    assert report.complete and [s.key for s in report.sent] == [messages[1].key, messages[4].key]
    outside = report.refused[messages[0].key]
    assert "#outside" in outside and "/invite" in outside and "\n" not in outside
    assert "check the channel name" in report.refused[messages[3].key]
    assert set(report.refused) == {messages[0].key, messages[2].key, messages[3].key}
    assert slack.state.texts(slack.state.dm_channel(ws.alice.id)) == ["Incident #1 declared"]


def test_a_refused_token_stops_everything(slack: SimulatedSlack, ws: Workspace) -> None:
    report = deliver([Outgoing(msg(n)) for n in range(3)], SlackChat("xoxb-revoked-token", slack.url))
    assert report.auth_error is not None and not report.complete and report.sent == []
    assert "SLACK_BOT_TOKEN" in report.auth_error.reason and slack.count() == 1


def test_faults_and_rate_limits_end_with_every_message_exactly_once(chat: SlackChat, slack: SimulatedSlack,
                                                                    ws: Workspace, slack_clock: Clock) -> None:
    slack.fail_rate, slack.rate_limit = 0.2, True
    targets = ["#incidents", "#e-group", "email:alice@example.com", ws.alice.id]
    messages = [msg(n, t) for n in range(6) for t in targets[:3]] + [msg(99, targets[3], summary=True, text="s")]
    reports = Caller(chat).until_done(messages, slack_clock)
    assert bot_keys(slack) == Counter({m.key: 1 for m in messages})
    faults = Counter(c.error for c in slack.calls if c.status != 200)
    assert faults["fault-500"] > 0 and faults["fault-429"] > 0 and faults["ratelimited"] > 0
    assert len(reports) > 3 and all(not r.refused and r.auth_error is None for r in reports)


def test_faults_with_lost_answers_still_end_exactly_once(chat: SlackChat, slack: SimulatedSlack, ws: Workspace,
                                                         slack_clock: Clock) -> None:
    slack.fail_rate = 0.2
    messages = [msg(n, t) for n in range(8) for t in ("#incidents", "#e-group")]
    caller = Caller(chat)
    for _ in range(200):
        slack.fail_after_commit(1)  # the next post always lands with its answer lost
        report = caller.run(messages)
        if report.complete:
            break
        slack_clock.advance(report.retry_after or 1)
    assert report.complete
    assert bot_keys(slack) == Counter({m.key: 1 for m in messages})


def test_slack_down_for_a_minute_then_everything_is_sent_once(chat: SlackChat, slack: SimulatedSlack, ws: Workspace,
                                                              slack_clock: Clock) -> None:
    messages = [msg(n, t) for n in range(5) for t in ("#incidents", "#e-group")]
    caller = Caller(chat)
    caller.run(messages[:2])
    slack.down("refuse")
    for _ in range(6):  # the worker retries every 10 s for 60 s
        report = caller.run(messages)
        assert report.unavailable is not None and report.sent == [] and "unreachable" in report.unavailable.reason
        slack_clock.advance(10)
    slack.down("503")
    assert caller.run(messages).unavailable is not None
    slack.up()
    report = caller.run(messages)
    assert report.complete and report.posted == 8
    assert bot_keys(slack) == Counter({m.key: 1 for m in messages})


def test_a_channel_the_bot_cannot_read_is_asked_about_once(chat: SlackChat, slack: SimulatedSlack,
                                                           ws: Workspace) -> None:
    messages = [msg(n, ws.outside.id) for n in range(5)]
    report = deliver([Outgoing(m) for m in messages], chat)
    assert set(report.refused) == {m.key for m in messages} and report.complete
    assert slack.count("conversations.history") == 1 and "/invite" in report.refused[messages[0].key]
    assert slack.count() == 2, "and who the bot is (auth.test), once"


def test_a_stale_summary_ts_finds_the_current_copy_instead_of_posting(chat: SlackChat, slack: SimulatedSlack,
                                                                       ws: Workspace) -> None:
    caller = Caller(chat)
    caller.run([msg(7, summary=True, text="v1")])
    current = chat.post(ws.incidents.id, "v1 (posted by another replica)", msg(7, summary=True).key)
    slack.state.messages[ws.incidents.id].pop(0)  # the copy this caller remembers is gone
    report = caller.run([msg(7, summary=True, text="v2")])
    assert report.posted == 0 and report.updated == 1 and [s.ts for s in report.sent] == [current]
    assert slack.state.texts(ws.incidents.id) == ["v2"]
