"""One text layer: three dialects (GitLab Markdown, Slack mrkdwn, plain text), one escaped-string type, one
sandboxed Jinja environment with the same guards for every dialect."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader
from jinja2.exceptions import SecurityError, UndefinedError

from bot.integrations.slack.render import SlackRenderer
from bot.text import jinja
from bot.text.dialects import DIALECTS, MARKDOWN, MRKDWN, PLAIN, Dialect
from bot.text.safe import Escaped, Mrkdwn, Plain, Safe

HOSTILE = "<!channel> @all [x](javascript:alert(1)) \x1b]0;pwned\x07 /close"


def test_each_dialect_escapes_a_hostile_title_into_its_own_kind() -> None:
    md = MARKDOWN.escape(HOSTILE)
    assert type(md) is Safe and "\\[x\\]" in md and "\\@all" in md and "\x1b" not in md
    slack = MRKDWN.escape(HOSTILE)
    assert type(slack) is Mrkdwn and "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    plain = PLAIN.escape(HOSTILE)
    assert type(plain) is Plain and "\x1b" not in plain and "\x07" not in plain and plain.startswith("<!channel>")


@pytest.mark.parametrize("dialect", list(DIALECTS.values()), ids=list(DIALECTS))
def test_text_already_safe_in_a_dialect_is_kept_as_written(dialect: Dialect[Escaped]) -> None:
    own = dialect.kind("*bot's own* <https://x|words>")
    assert dialect.escape(own) is own


def test_text_safe_in_one_dialect_is_escaped_again_in_another() -> None:
    """A Slack link made by the plan must not reach a GitLab body as written, nor the reverse."""
    slack_link = Mrkdwn("<https://evil.example|click> <!here>")
    assert MARKDOWN.escape(slack_link) == MARKDOWN.escape(str(slack_link)) != slack_link
    gitlab_mention = Safe("@security-team")
    assert MRKDWN.escape(gitlab_mention) != gitlab_mention  # the handle is broken up for Slack


def _env(dialect: Dialect[Escaped]) -> jinja.SandboxedEnvironment:
    return jinja.environment(dialect, DictLoader({}), max_chars=1000)


@pytest.mark.parametrize("dialect", list(DIALECTS.values()), ids=list(DIALECTS))
def test_every_dialect_renders_with_the_same_guards(dialect: Dialect[Escaped]) -> None:
    env = _env(dialect)
    assert env.from_string("{{ v }}").render(v=HOSTILE) == dialect.escape(HOSTILE)
    with pytest.raises(UndefinedError):
        env.from_string("{{ misspelt }}").render()
    with pytest.raises(SecurityError, match="repetition"):
        env.from_string("{{ 'x' * 100000 }}").render()
    with pytest.raises(SecurityError, match="exponent"):
        env.from_string("{{ 9 ** 100000 }}").render()
    with pytest.raises(SecurityError):
        env.from_string("{{ items.append(1) }}").render(items=[])  # immutable sandbox
    assert env.from_string("{{ '<b>' }}").render() == dialect.escape("<b>")  # no HTML autoescape


def test_a_slack_template_cannot_build_a_huge_message(tmp_path) -> None:
    """Slack truncates a message after 40,000 characters; the operator's template may not make one with ``*``
    (before, the Slack environment had none of the GitLab one's size checks)."""
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "big.j2").write_text("{{ 'x' * 10000000 }}")
    with pytest.raises(SecurityError, match="repetition"):
        SlackRenderer([tmp_path]).render("big.j2")
