"""Slack's real limits (issue 18 §4), each as Slack documents it and as the simulated Slack answers it:

* Slack changelog 2025-05-29, "Rate limit changes for non-Marketplace apps" (docs.slack.dev/changelog/2025/05/29/
  rate-limit-changes-for-non-marketplace-apps): a commercially distributed app outside the Marketplace may call
  ``conversations.history`` once a minute, 15 messages a page; an app a workspace builds for itself keeps
  Tier 3 (the README tells operators to create it so).
* The rate limits page (docs.slack.dev/apis/web-api/rate-limits): over a limit, HTTP 429 with ``Retry-After``.
* conversations.history's method page: ``oldest`` ("Only messages after this Unix timestamp"), ``limit``.
* conversations.list's method page: ``limit`` "must be an integer under 1000".
* chat.postMessage's method page ("Truncating content"): Slack truncates text past 40,000 characters; its
  errors list ``msg_too_long``.
"""

from __future__ import annotations

from collections import Counter

from bot.integrations.slack.deliver import Outgoing, deliver
from bot.integrations.slack.plan import FORWARD_LIMIT, quote
from bot.integrations.slack.ports import ChatMessage
from bot.integrations.slack.slackapi import SlackChat
from bot.simslack import SimulatedSlack
from tests.chat.conftest import Clock, Workspace


def msg(n: int, target: str = "#incidents", text: str | None = None) -> ChatMessage:
    return ChatMessage(f"sec/incidents#{n}|engage:x|{target}|0", target, text or f"Incident #{n} engaged")


def chatter(slack: SimulatedSlack, channel: str, count: int) -> None:
    for i in range(count):
        slack.state.say(channel, f"someone talking {i}")


def test_the_distributed_app_limits_are_simulated_as_slack_documents(chat: SlackChat, slack: SimulatedSlack,
                                                                     ws: Workspace, slack_clock: Clock) -> None:
    slack.distributed_app = True
    chatter(slack, ws.incidents.id, 40)
    page = slack.state.call("conversations.history", {"channel": ws.incidents.id, "limit": 200})
    assert len(page["messages"]) == 15, "limit's maximum is 15"
    status, body, headers = slack.handle("conversations.history", {"channel": ws.incidents.id}, f"Bearer {slack.token}")
    assert status == 200
    status, body, headers = slack.handle("conversations.history", {"channel": ws.incidents.id}, f"Bearer {slack.token}")
    assert (status, body["error"], headers["Retry-After"]) == (429, "ratelimited", "60")
    slack_clock.advance(60)
    assert slack.handle("conversations.history", {"channel": ws.incidents.id}, f"Bearer {slack.token}")[0] == 200


def test_a_history_read_stops_at_the_page_holding_the_key(chat: SlackChat, slack: SimulatedSlack,
                                                          ws: Workspace, slack_clock: Clock) -> None:
    chatter(slack, ws.incidents.id, 1000)
    slack.fail_after_commit(1)  # the post lands, its answer is lost
    first = deliver([Outgoing(msg(1), unsure=False)], chat)
    assert first.unavailable is not None
    chatter(slack, ws.incidents.id, 10)
    slack.reset_calls()
    again = deliver([Outgoing(msg(1))], chat)
    assert again.found == 1 and again.posted == 0
    assert slack.count("conversations.history") == 1, "the key is on the newest page: no more pages read"


def test_a_history_read_goes_back_only_to_the_first_attempt(chat: SlackChat, slack: SimulatedSlack,
                                                            ws: Workspace, slack_clock: Clock) -> None:
    chatter(slack, ws.incidents.id, 1000)  # all before the message was first tried
    slack_clock.advance(600)
    report = deliver([Outgoing(msg(1), oldest=slack_clock() - 120)], chat)
    assert report.posted == 1
    (read,) = [c for c in slack.calls if c.method == "conversations.history"]
    assert float(read.args["oldest"]) == slack_clock() - 120, "one page, since the first attempt"


def test_a_rate_limited_history_read_holds_back_its_target_alone(chat: SlackChat, slack: SimulatedSlack,
                                                                 ws: Workspace, slack_clock: Clock) -> None:
    slack.distributed_app = True
    since = slack_clock() - 60
    items = [Outgoing(msg(1, "#incidents"), oldest=since), Outgoing(msg(2, "#e-group"), oldest=since),
             Outgoing(msg(3, "#e-group"), unsure=False),  # new for sure, but after a message that waits
             Outgoing(msg(4, "#incidents"), unsure=False)]
    report = deliver(items, chat)
    assert [s.key for s in report.sent] == [msg(1).key, msg(4).key]
    assert list(report.deferred) == [msg(2, "#e-group").key, msg(3, "#e-group").key], "in order, behind it"
    assert report.retry_after == 60 and report.refused == {} and report.unavailable is None
    slack_clock.advance(60)
    later = deliver(items[1:3], chat)
    assert later.complete and later.posted == 2
    assert slack.state.texts(ws.e_group.id) == [msg(2).text, msg(3).text]
    assert Counter(slack.state.keys()) == Counter({m.message.key: 1 for m in items})


def test_conversations_list_asks_for_fewer_than_1000_a_page(chat: SlackChat, slack: SimulatedSlack,
                                                            ws: Workspace) -> None:
    chat.resolve("#incidents")
    (listing,) = [c for c in slack.calls if c.method == "conversations.list"]
    assert int(listing.args["limit"]) == 999
    assert slack.state.call("conversations.list", {"limit": 999})["channels"]
    try:
        slack.state.call("conversations.list", {"limit": 1000})
    except Exception as err:  # SlackFailure
        assert str(err) == "invalid_limit"
    else:
        raise AssertionError("the simulated Slack took limit=1000")


def test_a_forwarded_text_is_cut_below_slacks_limit_and_says_where_the_rest_is() -> None:
    body = "\n".join("& <!channel> " * 40 for _ in range(400))  # escaping makes it longer still
    quoted, cut = quote(body)
    assert cut and len(quoted) <= FORWARD_LIMIT < 40_000
    assert "<!channel>" not in quoted and not quoted.endswith("&am")
    short, cut = quote("a short update")
    assert (short, cut) == ("> a short update", False)


def test_a_message_slack_finds_too_long_goes_out_shortened_and_the_target_is_not_refused(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    text = "Incident #1: see <https://x|the update>\n" + "x" * 50_000
    long = ChatMessage("k|update:1|#incidents|0", "#incidents", text)
    report = deliver([Outgoing(long, unsure=False), Outgoing(msg(2), unsure=False)], chat)
    assert report.refused == {} and report.posted == 2
    first = slack.state.texts(ws.incidents.id)[0]
    assert first.startswith("Incident #1: see <https://x|the update>") and len(first) < 200
    assert slack.count("chat.postMessage") == 3, "the long one, its first line, the next message"
