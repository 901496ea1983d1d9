"""Quick actions in a team's template: which lines GitLab would run (``bot.text.quickactions``), and the text
with none left (table tests, no I/O).

The oracle is GitLab's own reading: comrak (GitLab's Markdown engine, through ``comrak-ext``, with the options of
gitlabhq ``lib/banzai/filter/markdown_engines/glfm_markdown.rb``) gives the top-level paragraphs, as
``lib/banzai/filter/quick_action_filter.rb`` takes them, and the extractor's regex
(``lib/gitlab/quick_actions/extractor.rb``) runs on each paragraph's lines.
"""

from __future__ import annotations

import re

import comrak
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text.hazards import find_hazards
from bot.text.quickactions import _NAMES_RE, _commands_in, neutralise, quick_actions, top_level_paragraphs
from tests.hypothesis_profiles import examples

# GitLab's Extractor#commands_regex (EXCLUSION_REGEX, then the command), flags /mix, as a Python regex.
GITLAB_REGEX = re.compile(
    r"(?P<inline_code>`.+?`)"
    r"|(?P<html>^<[^>]+?>\n.+?\n</[^>]+?>$)"
    rf"|(?:^/(?P<cmd>{_NAMES_RE})(?:[ ](?P<arg>[^\n]*))?(?:\s*\n|$))",
    re.M | re.S | re.I,
)

_EXT = comrak.ExtensionOptions(
    alerts=True,
    autolink=True,
    description_lists=True,
    footnotes=True,
    math_code=True,
    math_dollars=True,
    multiline_block_quotes=True,
    strikethrough=True,
    table=True,
    tasklist=True,
    front_matter_delimiter="---",
)


def comrak_paragraphs(text: str) -> list[tuple[int, int]]:
    doc = comrak.parse_document(text, _EXT, comrak.ParseOptions())
    return [
        (c.sourcepos.start.line - 1, c.sourcepos.end.line - 1)
        for c in doc.children
        if type(c.node_value).__name__ == "Paragraph"
    ]


def gitlab_commands(text: str) -> list[tuple[int, str, str]]:
    """(1-based line, name, arg) as GitLab would run them: comrak's paragraphs, then the extractor's regex."""
    text = text.replace("\r", "")
    lines = text.split("\n")
    found = []
    for first, last in comrak_paragraphs(text):
        paragraph = "\n".join(lines[first : last + 1]) + ("\n" if last + 1 < len(lines) else "")
        for m in GITLAB_REGEX.finditer(paragraph):
            if m.group("cmd"):
                found.append((first + paragraph.count("\n", 0, m.start()) + 1, m.group("cmd").lower(),
                              (m.group("arg") or "").strip()))
    return found


def ours(text: str) -> list[tuple[int, str, str]]:
    return [(q.line, q.name, q.arg) for q in quick_actions(text)]


CASES = [
    # (template, the commands GitLab runs: (line, name, arg))
    ("/label ~security-incident ~severity::1 ~data-breach",
     [(1, "label", "~security-incident ~severity::1 ~data-breach")]),
    ("## Request\n\n/assign me\n/LABEL ~x\n", [(3, "assign", "me"), (4, "label", "~x")]),
    ("Intro line\n/relate #1\ntext after", [(2, "relate", "#1")]),
    ("/cc @alice", [(1, "cc", "@alice")]),  # a no-op for GitLab, which leaves the mention; a command for the bot
    ("/labelx ~a\n/label\t~a\n/etc is a path\n/ label", []),  # not commands: a name, then a space or the end
    ("/close", [(1, "close", "")]),
    ("```\n/close\n```", []),  # fenced code
    ("~~~\n/close\n~~~", []),
    ("    /close", []),  # indented code (and not at column 0)
    ("> quoted\n/close", []),  # a lazy continuation of the quote's paragraph
    ("> quoted\n\n/close", [(3, "close", "")]),
    (">>>\n/close\n>>>", []),  # GitLab's multi-line block quote
    ("- item\n/close", []),  # a lazy continuation of the list item
    ("- item\n\n/close", [(3, "close", "")]),
    ("1. item\n\n   /close\n", []),  # inside the list item
    ("<details>\n/close\n</details>", []),  # an HTML block
    ("<!-- note\n/close\n-->", []),
    ("text `code\n/close\n` more", []),  # inline code across lines
    ("/close\n===", []),  # a setext heading, not a paragraph
    ("/close\n---", []),
    ("# /close", []),
    ("| a | b |\n|---|---|\n/close", []),  # a table row
    ("---\n/close\n---\nbody", []),  # front matter
    ("[^1]: note\n/close", []),  # a footnote's lazy continuation
    ("Term\n: /close", []),
    ("text\n\n/close\n/due tomorrow\n/weight 3", [(3, "close", ""), (4, "due", "tomorrow"), (5, "weight", "3")]),
    ("a\r\n/close\r\n", [(2, "close", "")]),  # CRs deleted first
    ("a\r/close", []),  # ... so a lone CR joins the lines
    ("/shrug oops", [(1, "shrug", "oops")]),
    # Found by the differential test below: where lazy continuation ends.
    ("> quote\n>>>\n/CLOSE", [(3, "close", "")]),  # a nested, empty quote: no paragraph to continue
    ("-\n/CLOSE", [(2, "close", "")]),  # an empty list item
    ("- item\n<span>\n# head\n/label ~a", []),  # <span> opens an HTML block after a list item
    ("---\n---\n/CLOSE\n\n---", []),  # front matter needs a line between its delimiters
    ("---\n---\n/CLOSE", [(3, "close", "")]),
    ("text\n|---|---|\n|---|---|\n/CLOSE", [(4, "close", "")]),  # no table: one paragraph
    ("| a | b |\n|---|---|\n    indented\n/label ~a", [(4, "label", "~a")]),  # code ends the table
    ("/CLOSE\n\n: details", []),  # a description list's term, across a blank line
    ("> ```\n> - x\n/label ~a", [(3, "label", "~a")]),  # a fence in the quote: nothing to continue lazily
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_the_lines_gitlab_would_run(text, expected):
    assert ours(text) == expected
    assert gitlab_commands(text) == expected  # the oracle agrees with the table


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_no_quick_action_is_left_after_neutralising(text, expected):
    out, found = neutralise(text)
    assert [(q.line, q.name, q.arg) for q in found] == expected
    assert [h for h in find_hazards(out) if h.kind == "quick_action"] == []
    assert gitlab_commands(out) == []
    assert out.count("\n") == text.replace("\r", "").count("\n")  # one line for one line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/label ~x\n", "` /label ~x `\n"),  # GitLab's own redaction: a code span (no reference, no mention)
        ("/assign @alice", "` /assign @alice `"),
        ("```\n/usr/bin/env\n```", "```\n\\/usr/bin/env\n```"),  # not run by GitLab, escaped all the same
        ("a\u2028/close", "a\u2028\\/close"),  # a line break for other readers
        ("/etc is a path", "\\/etc is a path"),
    ],
)
def test_how_a_line_is_neutralised(text, shown):
    assert neutralise(text)[0] == shown


_LINES = st.sampled_from(
    [
        "", "", "text", "/label ~a", "/close", "/assign me", "> quote", ">>>", "```", "~~~", "- item", "1. item",
        "2. item", "    indented", "  /close", "<details>", "</details>", "<div>", "<!-- c", "-->", "# head", "---",
        "===", "| a | b |", "|---|---|", "[^1]: note", ": details", "`", "text `code`", "***", "<span>", "</span>",
        "* /close", "/CLOSE", "/title new", "    /close", "> # h", "> - x", ">", "-", "> ```", "> ---",
    ]
)


@settings(max_examples=examples(1500), deadline=None, derandomize=True)
@given(st.lists(_LINES, min_size=1, max_size=8))
def test_the_paragraphs_are_gitlabs(lines):
    text = "\n".join(lines)
    assert ours(text) == gitlab_commands(text), text
    out, _ = neutralise(text)
    assert gitlab_commands(out) == []
    assert [h for h in find_hazards(out) if h.kind == "quick_action"] == []


def test_top_level_paragraphs_of_a_template():
    lines = ["## Email request", "", "Fill in:", "/label ~a", "", "- [ ] x", "", "Thanks"]
    assert top_level_paragraphs(lines) == comrak_paragraphs("\n".join(lines)) == [(2, 3), (7, 7)]


def test_the_command_regex_is_case_insensitive_and_anchored():
    assert ours("/Label ~a") == [(1, "label", "~a")]
    assert ours("x /close") == []


_PARAGRAPH_LINES = st.sampled_from(
    ["text", "/close", "/label ~a", "/LABEL ~b x", "<a>", "</a>", "<b>", "</b> x", "`", "a `b` c", "``", "/cc @x",
     "/closed", "/close ", "<a b='c'>", "x/close", " /close"]
)


@settings(max_examples=examples(500), deadline=None, derandomize=True)
@given(st.lists(_PARAGRAPH_LINES, min_size=1, max_size=10), st.booleans())
def test_the_linear_scan_finds_what_gitlabs_regex_finds(lines, trailing):
    paragraph = "\n".join(lines) + ("\n" if trailing else "")
    expected = [
        (m.start(), m.group("cmd").lower(), (m.group("arg") or "").strip())
        for m in GITLAB_REGEX.finditer(paragraph)
        if m.group("cmd")
    ]
    assert _commands_in(paragraph) == expected, paragraph
