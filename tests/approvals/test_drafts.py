"""The draft, its digest and the customer email's lint, as tables (pure)."""

from __future__ import annotations

import pytest

from bot.core import drafts

BASE = "**Incident response customer email** for security incident #1\n\n### Purpose\nThe email.\n\n"


@pytest.mark.parametrize(
    ("description", "draft"),
    [
        (BASE, None),  # no draft heading yet
        (BASE + "## Draft\n", None),  # a heading with nothing under it is no draft
        (BASE + "## Draft\nHello\n", "Hello"),
        (BASE + "## draft ##\nHello\n", "Hello"),  # any case, a closing sequence
        (BASE + "   ## Draft\nHello\n", "Hello"),  # up to 3 spaces of indent is still a heading
        (BASE + "    ## Draft\nHello\n", None),  # 4 spaces: an indented code block, not a heading
        (BASE + "### Draft\nHello\n", None),  # another level is another section
        (BASE + "## Draft\nHello\n### Details\nmore\n## Notes\nnot sent\n", "Hello\n### Details\nmore"),
        (BASE + "## Draft\nHello\n# Appendix\nnot sent\n", "Hello"),  # a higher level ends it too
        (BASE + "## Draft\n```\n## not a heading\n```\nend\n## Next\nx", "```\n## not a heading\n```\nend"),
        (BASE + "```\n## Draft\n```\n## Draft\nreal\n", "real"),  # a heading inside a fence does not start it
        (BASE + "## Draft\r\nWindows\r\nlines\r\n", "Windows\nlines"),
    ],
)
def test_the_draft_is_the_section_under_its_heading(description: str, draft: str | None) -> None:
    assert drafts.draft_of(description) == draft


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Hello\nworld", "Hello\r\nworld", True),  # line endings
        ("Hello\nworld", "Hello\rworld", True),
        ("Hello  \nworld\t", "Hello\nworld", True),  # trailing spaces and tabs
        ("Hello\n\n\n\nworld", "Hello\n\nworld", True),  # runs of blank lines
        ("\n\nHello\n\n", "Hello", True),  # blank lines at either end
        ("caf\u00e9", "cafe\u0301", True),  # Unicode NFC: one code point or e + combining accent
        ("Hello\nworld", "Hello world", False),  # a visible change
        ("Hello\n\nworld", "Hello\nworld", False),  # a paragraph break is visible
        ("  Hello", "Hello", False),  # leading spaces can be Markdown (indentation)
        ("Send on 2026-12-01", "Send on 2026-12-02", False),
    ],
)
def test_the_digest_names_the_normalised_text(a: str, b: str, same: bool) -> None:
    assert (drafts.digest(a) == drafts.digest(b)) is same
    assert len(drafts.digest(a)) == 8 and drafts.is_digest(drafts.digest(a))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Plain text. Questions: security@gitlab.com", []),
        ("See https://about.gitlab.com/blog/incident. security@gitlab.com", []),
        ("<p>Hello</p> security@gitlab.com", ["HTML"]),
        ("Hello<br/>there security@gitlab.com", ["HTML"]),
        ("if a < b and c > d, security@gitlab.com", []),  # comparison signs are not HTML
        ("Read https://click.mailer.example.com/ls/abc security@gitlab.com", ["tracking"]),
        ("Read https://gitlab.us1.list-manage.com/track/click?u=1 security@gitlab.com", ["tracking"]),
        ("Read https://about.gitlab.com/blog?utm_source=email security@gitlab.com", ["tracking"]),
        ("Read https://eur01.safelinks.protection.outlook.com/?url=x security@gitlab.com", ["tracking"]),
        ("Plain text, write to support@gitlab.com", ["security@"]),
        ("<b>x</b> https://bit.ly/abc", ["HTML", "tracking", "security@"]),
    ],
)
def test_the_customer_email_lint(text: str, found: list[str]) -> None:
    got = drafts.email_findings(text)
    assert len(got) == len(found), got
    for finding, word in zip(got, found, strict=True):
        assert word in finding
