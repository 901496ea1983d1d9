"""GitLab text in Slack messages notifies no one and links nowhere it does not say."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.integrations.slack.slackapi import SlackChat
from bot.simslack import SimulatedSlack
from bot.text.mrkdwn import WORD_JOINER, escape_mrkdwn, slack_link
from tests.chat.conftest import Workspace

ATTACKS = ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<#C1>", "<#C1|general>", "<https://evil|click>",
           "<!subteam^S123|@security>", "<!date^1392734382^{date}|x>", "@here", "@channel", "@everyone", "@alice",
           "&lt;!channel&gt;", "<mailto:a@b.c|mail>"]

HOSTILE = st.text(alphabet=st.sampled_from(list("<>&!@#|^:/ abcCUhere\n*_~`\u2060")) | st.characters(), max_size=60)


def inert(text: str) -> bool:
    """Nothing Slack would turn into a mention, a channel link or a link: no ``<`` at all, no bare handle."""
    return "<" not in text and ">" not in text and not re.search(r"(?<![\w.])@[\w.\-]", text)


@given(HOSTILE)
def test_escaped_text_has_no_control_sequence(value: str) -> None:
    out = escape_mrkdwn(value)
    assert not any(seq in out for seq in ("<!", "<@", "<#", "<"))
    assert inert(out)


@given(HOSTILE)
def test_escaping_loses_no_visible_text(value: str) -> None:
    out = escape_mrkdwn(value)
    shown = out.replace(WORD_JOINER, "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert shown == re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\u2060]", "",
                           value.replace(WORD_JOINER, ""))


def test_ordinary_text_reads_as_written() -> None:
    assert escape_mrkdwn("Login fails for *some* users (api_v4) — see #12") == \
        "Login fails for *some* users (api_v4) — see #12"
    assert escape_mrkdwn("mail sec@example.com") == "mail sec@example.com"
    assert escape_mrkdwn("a < b & c > d") == "a &lt; b &amp; c &gt; d"


@given(st.text(max_size=40), HOSTILE)
def test_a_link_has_exactly_one_target_and_an_inert_label(path: str, label: str) -> None:
    out = slack_link("https://gitlab.example.com/sec/incidents/-/issues/1" + path, label)
    assert out.startswith("<https://gitlab.example.com/") and out.endswith(">")
    assert out.count("<") == 1 and out.count(">") == 1
    assert "<@" not in out and "<!" not in out and "<#" not in out


@pytest.mark.parametrize("url", ["javascript:alert(1)", "slack://open", "mailto:x@y.z", "", "https://", "//evil"])
def test_only_web_links_are_links(url: str) -> None:
    assert slack_link(url, "<!here> label") == "&lt;!here&gt; label"


def test_a_url_cannot_break_out_of_its_link() -> None:
    out = slack_link("https://evil.example/x|<!channel>", "ok")
    assert out == "<https://evil.example/x!channel|ok>"


def test_injection_attempts_are_stored_inert_in_slack(chat: SlackChat, slack: SimulatedSlack, ws: Workspace) -> None:
    title = " ".join(ATTACKS)
    text = f"Incident {slack_link('https://gitlab.example.com/i/1', title)} declared: {escape_mrkdwn(title)}"
    channel = chat.resolve("#incidents")
    ts = chat.post(channel, text, "k")
    chat.update(channel, ts, escape_mrkdwn("edited " + title))
    stored = slack.state.texts(channel)[0]
    assert stored.startswith("edited ") and inert(stored)
    posted = next(c.args["text"] for c in slack.calls if c.method == "chat.postMessage")
    links = re.findall(r"<([^>]*)>", posted)
    assert links == ["https://gitlab.example.com/i/1|" + escape_mrkdwn(title)]
    assert inert(posted.replace("<https://gitlab.example.com/i/1|", "").replace(">", "", 1))
