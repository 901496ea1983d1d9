"""SlackChat (the real slack_sdk client) against the simulated Slack over HTTP."""

from __future__ import annotations

import pytest

from bot.integrations.slack.ports import ChatAuthError, ChatError, ChatRefused, ChatUnavailable
from bot.integrations.slack.slackapi import SlackChat
from bot.simslack import SimulatedSlack
from bot.simslack.state import BOT_USER
from tests.chat.conftest import Clock, Workspace


def test_auth_test_names_the_bot_and_workspace(chat: SlackChat) -> None:
    who = chat.auth_test()
    assert (who.user, who.user_id, who.team) == ("incident-bot", BOT_USER, "Simulated")


def test_resolve_channel_by_name_once_then_from_cache(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    assert chat.resolve("#incidents") == ws.incidents.id
    assert chat.resolve("#e-group") == ws.e_group.id
    assert chat.resolve("#incidents") == ws.incidents.id
    assert slack.count("conversations.list") == 1


def test_resolve_follows_channel_list_pages(slack: SimulatedSlack, ws: Workspace) -> None:
    for i in range(1500):
        slack.state.add_channel(f"bulk-{i}")
    last = slack.state.add_channel("zz-last")
    chat = SlackChat(slack.token, slack.url)
    assert chat.resolve("#zz-last") == last.id
    assert slack.count("conversations.list") == 2


def test_channel_ids_are_used_as_they_are(chat: SlackChat, slack: SimulatedSlack) -> None:
    assert chat.resolve("C0123ABC") == "C0123ABC"
    assert chat.resolve("G0123ABC") == "G0123ABC"
    assert slack.count() == 0


def test_user_and_email_targets_open_a_direct_message_once(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    by_id = chat.resolve(ws.alice.id)
    by_email = chat.resolve("email:alice@example.com")
    assert by_id == by_email and by_id.startswith("D")
    chat.resolve("email:alice@example.com")
    chat.resolve(ws.alice.id)
    assert slack.count("users.lookupByEmail") == 1
    assert slack.count("conversations.open") == 2


def test_post_then_history_finds_the_key_and_update_edits_in_place(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    channel = chat.resolve("#incidents")
    slack.state.say(channel, "a person talking")
    ts = chat.post(channel, "Incident #12 declared", "inc-12|declared|#incidents|0")
    assert chat.history(channel).keys == {"inc-12|declared|#incidents|0": ts}
    chat.update(channel, ts, "Incident #12 declared (edited)")
    assert slack.state.texts(channel) == ["a person talking", "Incident #12 declared (edited)"]


def test_history_is_read_one_page_at_a_time_newest_first_back_to_oldest(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace, slack_clock: Clock
) -> None:
    channel = ws.incidents.id
    old = chat.post(channel, "old", "old-key")
    slack_clock.advance(3600)
    for i in range(500):
        slack.state.say(channel, f"chatter {i}")
    recent = chat.post(channel, "recent", "recent-key")
    first = chat.history(channel)
    assert first.keys == {"recent-key": recent} and first.next_cursor
    assert chat.history(channel, cursor=first.next_cursor).keys == {}
    assert slack.count("conversations.history") == 2, "one call a page: the caller decides whether to go on"
    bounded = chat.history(channel, oldest=slack_clock() - 60)
    assert slack.calls[-1].args["oldest"] == f"{slack_clock() - 60:.6f}"
    assert "old-key" not in bounded.keys and old


def test_another_apps_metadata_is_not_taken_for_the_bots(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    slack.state.say(ws.incidents.id, "x", metadata={"event_type": "other_app", "event_payload": {"key": "k"}})
    assert chat.history(ws.incidents.id).keys == {}


def reason_of(call: object) -> ChatError:
    with pytest.raises(ChatError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def assert_one_line_without_token(err: ChatError, token: str) -> None:
    assert "\n" not in err.reason and token not in err.reason and token not in str(err)
    assert len(err.reason) < 200


def test_rate_limit_is_unavailable_with_retry_after(chat: SlackChat, slack: SimulatedSlack, ws: Workspace,
                                                     slack_clock: Clock) -> None:
    slack.rate_limit = True
    chat.post(ws.incidents.id, "first", "k1")
    err = reason_of(lambda: chat.post(ws.incidents.id, "second", "k2"))
    assert isinstance(err, ChatUnavailable) and err.retry_after == 1.0
    assert "rate-limited" in err.reason and ws.incidents.id in err.reason
    assert_one_line_without_token(err, slack.token)
    slack_clock.advance(1)
    chat.post(ws.incidents.id, "second", "k2")
    assert slack.state.keys(ws.incidents.id) == ["k1", "k2"]


def test_server_error_and_outage_are_unavailable(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    slack.fail_rate, slack.retry_after = 1.0, 7
    seen = {type(reason_of(lambda: chat.post(ws.incidents.id, "x", "k"))) for _ in range(12)}
    assert seen == {ChatUnavailable}
    throttled = [c for c in slack.calls if c.status == 429]
    assert throttled and len(throttled) < 12  # both 500s and 429s were answered
    slack.fail_rate = 0
    slack.down("503")
    err = reason_of(lambda: chat.post(ws.incidents.id, "x", "k"))
    assert isinstance(err, ChatUnavailable) and "retry later" in err.reason
    slack.down("refuse")
    err = reason_of(lambda: chat.post(ws.incidents.id, "x", "k"))
    assert isinstance(err, ChatUnavailable) and "unreachable" in err.reason
    assert_one_line_without_token(err, slack.token)
    slack.up()
    chat.post(ws.incidents.id, "x", "k")
    assert slack.state.keys(ws.incidents.id) == ["k"]


def test_a_single_call_per_attempt_no_hidden_retries(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    slack.fail_rate = 1.0
    reason_of(lambda: chat.post(ws.incidents.id, "x", "k"))
    assert slack.count("chat.postMessage") == 1


def test_wrong_token_is_an_auth_error_naming_the_setting(slack: SimulatedSlack, ws: Workspace) -> None:
    token = "xoxb-999-888-wrongwrong"
    err = reason_of(lambda: SlackChat(token, slack.url).post(ws.incidents.id, "x", "k"))
    assert isinstance(err, ChatAuthError) and "SLACK_BOT_TOKEN" in err.reason
    assert_one_line_without_token(err, token)
    err = reason_of(lambda: SlackChat(token, slack.url).auth_test())
    assert isinstance(err, ChatAuthError)


@pytest.mark.parametrize(
    ("target", "hint"),
    [("#nowhere", "check the channel name"), ("#secret", "/invite"), ("email:nobody@example.com", "check the user"),
     ("UNOBODY01", "check the user"), ("not a target", "#channel")],
)
def test_unknown_targets_are_refused_with_what_to_do(chat: SlackChat, slack: SimulatedSlack, target: str,
                                                     hint: str) -> None:
    err = reason_of(lambda: chat.resolve(target))
    assert type(err) is ChatRefused and hint in err.reason and target in err.reason
    assert_one_line_without_token(err, slack.token)


def test_a_bot_cannot_be_a_direct_message_target(chat: SlackChat, ws: Workspace) -> None:
    err = reason_of(lambda: chat.resolve(ws.other_bot.id))
    assert type(err) is ChatRefused and "cannot_dm_bot" in err.reason


@pytest.mark.parametrize(("channel", "code", "hint"), [("outside", "not_in_channel", "/invite"),
                                                        ("old", "is_archived", "unarchive"),
                                                        ("missing", "channel_not_found", "check the channel")])
def test_posting_where_the_bot_cannot_is_refused(chat: SlackChat, slack: SimulatedSlack, ws: Workspace,
                                                 channel: str, code: str, hint: str) -> None:
    cid = {"outside": ws.outside.id, "old": ws.old.id, "missing": "C99999999"}[channel]
    err = reason_of(lambda: chat.post(cid, "x", "k"))
    assert type(err) is ChatRefused and code in err.reason and hint in err.reason and cid in err.reason
    assert_one_line_without_token(err, slack.token)


def test_updating_a_message_that_is_gone_is_refused(chat: SlackChat, ws: Workspace) -> None:
    err = reason_of(lambda: chat.update(ws.incidents.id, "1.000001", "x"))
    assert type(err) is ChatRefused and "message_not_found" in err.reason


def test_base_url_gets_its_trailing_slash(slack: SimulatedSlack, ws: Workspace) -> None:
    chat = SlackChat(slack.token, slack.url.rstrip("/"))
    assert chat.resolve("#incidents") == ws.incidents.id
    assert slack.token not in repr(chat)


def test_post_request_carries_metadata_and_turns_parsing_off(chat: SlackChat, slack: SimulatedSlack,
                                                              ws: Workspace) -> None:
    chat.post(ws.incidents.id, "hello", "inc-1|declared|#incidents|0")
    args = slack.calls[-1].args
    assert args["metadata"] == {"event_type": "incident_bot", "event_payload": {"key": "inc-1|declared|#incidents|0"}}
    assert (args["parse"], args["link_names"], args["unfurl_links"], args["unfurl_media"]) == ("none", False, False,
                                                                                                False)
    assert slack.token not in str(args)


def test_history_request_asks_for_metadata_in_large_pages(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    chat.history(ws.incidents.id)
    args = slack.calls[-1].args
    assert args["include_all_metadata"] in ("1", "true", True) and str(args["limit"]) == "200"


def test_an_html_error_page_does_not_leak_into_the_reason(chat: SlackChat, slack: SimulatedSlack,
                                                          ws: Workspace) -> None:
    slack.html_errors, slack.fail_rate, slack.retry_after = True, 1.0, 1
    reasons = [reason_of(lambda: chat.post(ws.incidents.id, "hello", "k")) for _ in range(6)]
    assert {type(r) for r in reasons} == {ChatUnavailable}
    assert any(r.reason.endswith("HTTP 500: retry later") for r in reasons)
    for r in reasons:
        assert_one_line_without_token(r, slack.token)
        assert "html" not in r.reason.lower()


def test_threads_resolving_at_once_share_one_channel_list(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(chat.resolve, ["#incidents", "#e-group"] * 8))
    assert found == [ws.incidents.id, ws.e_group.id] * 8
    assert slack.count("conversations.list") == 1


def test_a_slow_answer_is_unavailable_not_a_hang(slack: SimulatedSlack, ws: Workspace) -> None:
    slack.latency = 0.6
    err = reason_of(lambda: SlackChat(slack.token, slack.url, timeout=0.2).post(ws.incidents.id, "x", "k"))
    assert isinstance(err, ChatUnavailable) and "retry later" in err.reason
    assert_one_line_without_token(err, slack.token)


@pytest.mark.parametrize("code", ["not_authed", "token_revoked", "account_inactive", "missing_scope"])
def test_token_problems_are_auth_errors(chat: SlackChat, slack: SimulatedSlack, ws: Workspace, code: str) -> None:
    slack.forced["chat.postMessage"] = code
    err = reason_of(lambda: chat.post(ws.incidents.id, "x", "k"))
    assert isinstance(err, ChatAuthError) and code in err.reason and "SLACK_BOT_TOKEN" in err.reason
    assert_one_line_without_token(err, slack.token)
    if code == "missing_scope":
        assert "chat:write" in err.reason


@pytest.mark.parametrize(("method", "code", "target"), [("conversations.open", "user_not_found", "UALICE01"),
                                                         ("users.lookupByEmail", "users_not_found", "email:a@b.c"),
                                                         ("conversations.list", "ratelimited", "#incidents")])
def test_lookups_map_errors_too(chat: SlackChat, slack: SimulatedSlack, method: str, code: str, target: str) -> None:
    slack.forced[method] = code
    err = reason_of(lambda: chat.resolve(target))
    expected = ChatUnavailable if code == "ratelimited" else ChatRefused
    assert type(err) is expected and (target in err.reason or code == "ratelimited")


def test_a_history_read_the_app_may_not_make_refuses_that_target_not_the_token(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace
) -> None:
    slack.forced["conversations.history"] = "missing_scope"  # e.g. no groups:history for a private channel
    err = reason_of(lambda: chat.history(ws.incidents.id))
    assert isinstance(err, ChatRefused) and not isinstance(err, ChatAuthError)
    assert "history" in err.reason and "\n" not in err.reason


def test_a_channel_archived_and_made_again_under_its_name_is_found_again(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace, slack_clock: Clock
) -> None:
    old = chat.resolve("#incidents")
    ws.incidents.archived = True
    fresh = slack.state.add_channel("incidents").id
    assert isinstance(reason_of(lambda: chat.post(old, "hello", "k1")), ChatRefused)
    slack_clock.advance(31)
    assert chat.resolve("#incidents") == fresh != old


def test_a_channel_created_after_the_list_was_read_is_found(
    chat: SlackChat, slack: SimulatedSlack, ws: Workspace, slack_clock: Clock
) -> None:
    chat.resolve("#incidents")
    late = slack.state.add_channel("inc-77").id
    assert isinstance(reason_of(lambda: chat.resolve("#inc-77")), ChatRefused), "the list was just read"
    slack_clock.advance(31)
    assert chat.resolve("#inc-77") == late
    assert slack.count("conversations.list") == 2
