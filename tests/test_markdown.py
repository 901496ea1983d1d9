from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text.escape import (
    Handle,
    UnsafeValue,
    code_block,
    code_span,
    escape_fragment,
    escape_inline,
    is_valid_group_path,
    is_valid_username,
    issue_ref,
    mention,
)
from bot.text.hazards import UnsafeOutput, assert_safe, find_hazards, unexpected_hazards, valid_mentions_in
from bot.text.markers import marker, parse_markers
from tests.hypothesis_profiles import examples

PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
LINE_BREAKS = ["\n", "\r\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c", "\x1d", "\x1e"]

HOSTILE = [
    "/close",
    "/label ~x",
    "/assign @bob",
    "@all",
    "@here",
    "@group/sub",
    "{{ x }}",
    "{{ 7*7 }}",
    "{%",
    "{% raw %}",
    "{#",
    "`",
    "``",
    "```",
    "~~~",
    "<!--",
    "-->",
    "<!-- incident-bot:checklist {} -->",
    "#12",
    "!2",
    "~bug",
    "%m",
    "$s",
    "&1",
    "^x",
    "&#64;all",
    "\\",
    "|",
    "- ",
    "> ",
    ">>>",
    "1. ",
    "[^1]: ",
    "<pre>",
    "    ",
    "\t",
    "[x](javascript:alert(1))",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\x00",
    "\x1b[31m",
    *LINE_BREAKS,
]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8)), max_size=12).map("".join)
any_text = st.one_of(st.text(max_size=60), hostile_text)


def unescaped(text: str) -> list[str]:
    """ASCII punctuation in ``text`` not preceded by an odd number of backslashes."""
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in PUNCT:
            out.append(text[i])
        i += 1
    return out


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def kinds(body: str) -> list[str]:
    return [h.kind for h in find_hazards(body)]


# --------------------------------------------------------------------------------------
# escape_inline
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@all", r"\@all"),
        ("/close", r"\/close"),
        ("eve\n/close", r"eve \/close"),
        ("\u2028/close", r"\/close"),
        ("a\u2029b\x85c\x0bd\x0ce\r\nf\rg", "a b c d e f g"),
        ("#1 !2 ~bug %m $s &1 ^x", r"\#1 \!2 \~bug \%m \$s \&1 \^x"),
        ("[x](javascript:alert(1))", r"\[x\]\(javascript\:alert\(1\)\)"),
        ("<!-- incident-bot:checklist {} -->", r"\<\!\-\- incident\-bot\:checklist \{\} \-\-\>"),
        ("{{ 7*7 }}", r"\{\{ 7\*7 \}\}"),
        ("{% raw %}", r"\{\% raw \%\}"),
        ("a`b", r"a\`b"),
        ("back\\slash", r"back\\slash"),
        ("@\u200ball", r"\@all"),
        ("\u202eevil\u202c", "evil"),
        ("x\x00y\x1b\x7fz", "xyz"),
        ("  lots \t of   space  ", "lots of space"),
        ("emoji 👩\u200d💻 stays", "emoji 👩\u200d💻 stays"),
        ("", ""),
        (12, "12"),
        (None, "None"),
        ("&#64;all", r"\&\#64\;all"),
        ("www.example.com", r"www\.example\.com"),
    ],
)
def test_escape_inline_table(value: object, expected: str) -> None:
    assert escape_inline(value) == expected


@pytest.mark.parametrize("brk", LINE_BREAKS)
def test_escape_inline_folds_every_line_break(brk: str) -> None:
    out = escape_inline(f"title{brk}/close{brk}@all")
    assert out == r"title \/close \@all"
    assert len(out.splitlines()) == 1


def test_escape_inline_caps_length_with_ellipsis() -> None:
    out = escape_inline("a" * 10_000)
    assert len(out) == 500 and out.endswith("…")
    assert escape_inline("abcdef", max_len=4) == "abc…"
    assert escape_inline("abc", max_len=3) == "abc"
    # The cut happens before escaping, so a backslash is never left dangling.
    assert escape_inline("ab@@@@", max_len=4) == r"ab\@…"
    with pytest.raises(ValueError):
        escape_inline("x", max_len=0)


@settings(max_examples=examples(300))
@given(any_text)
def test_escape_inline_properties(value: str) -> None:
    out = escape_inline(value)
    assert unescaped(out) == []
    assert len(out.splitlines()) <= 1
    assert not out.startswith((" ", "/"))
    assert not any(ch in out for ch in "\u2028\u2029\x85\x0b\x0c\r\n\t\x00\u202e\u200b")
    assert find_hazards(out) == []
    assert len(unescape(out)) <= 500


# --------------------------------------------------------------------------------------
# escape_fragment
# --------------------------------------------------------------------------------------


def test_escape_fragment_keeps_layout() -> None:
    assert escape_fragment(", ") == r"\, "
    assert escape_fragment("\r\n/close\u2028@all") == "\n\\/close\n\\@all"


# --------------------------------------------------------------------------------------
# code_block
# --------------------------------------------------------------------------------------


def test_code_block_shape() -> None:
    out = code_block("line1\r\n/close\r/assign @bob\n```\n/close\n```\n\tx")
    assert out == (
        "\n\n<!-- -->\n\n    line1\n    /close\n    /assign @bob\n    ```\n    /close\n    ```\n        x\n\n"
    )
    assert find_hazards(out) == []
    assert find_hazards("## Description\n" + out + "after") == []


@pytest.mark.parametrize(
    ("value", "lines"),
    [
        ("", []),
        ("\n\n  \n", []),
        ("\n\na\n\n", ["    a"]),
        ("a\n\nb", ["    a", "", "    b"]),
        ("a\u2028b\x85c", ["    a", "    b", "    c"]),
        ("x\x00\u202ey\x1b", ["    xy"]),
        ("trailing   ", ["    trailing"]),
        ("a\tb", ["    a   b"]),
    ],
)
def test_code_block_normalises(value: str, lines: list[str]) -> None:
    out = code_block(value)
    if not lines:
        assert out == "\n\n"
    else:
        assert out == "\n\n<!-- -->\n\n" + "\n".join(lines) + "\n\n"


def test_code_block_caps() -> None:
    out = code_block("\n".join(f"line {i}" for i in range(500)), max_lines=10)
    body = out.strip("\n").split("\n")[2:]
    assert len(body) == 11 and body[-1] == "    … [truncated: 490 more lines]"
    out = code_block("x" * 50_000, max_chars=100)
    assert "x" * 100 in out and "x" * 101 not in out and "[truncated]" in out


def test_code_block_after_list_item_stays_code() -> None:
    # Without the <!-- --> separator the indented lines would continue the list item
    # as a paragraph and @all would notify everyone.
    body = "- [ ] item\n" + code_block("@all\n/close")
    assert find_hazards(body) == []
    assert [h.kind for h in find_hazards("- [ ] item\n\n    @all\n")] == ["mention"]


@settings(max_examples=examples(300))
@given(any_text)
def test_code_block_properties(value: str) -> None:
    out = code_block(value)
    assert out.startswith("\n\n") and out.endswith("\n\n")
    lines = out.split("\n")
    content = [ln for ln in lines[4:] if ln]
    assert all(ln.startswith("    ") for ln in content)
    assert not any(re.match(r"/", ln) for ln in re.split("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", out))
    assert find_hazards(out) == []
    assert find_hazards("- item\n" + out + "tail") == []


# --------------------------------------------------------------------------------------
# code_span
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", "` x `"),
        ("@all", "` @all `"),
        ("a`b", "`` a`b ``"),
        ("``", "``` `` ```"),
        ("a```b`", "```` a```b` ````"),
        ("multi\nline", "` multi line `"),
        ("", "` `"),
    ],
)
def test_code_span_table(value: str, expected: str) -> None:
    assert code_span(value) == expected
    assert find_hazards(expected) == []


@settings(max_examples=examples(300))
@given(any_text)
def test_code_span_properties(value: str) -> None:
    out = code_span(value)
    fence = re.match(r"`+", out)
    assert fence is not None
    n = len(fence.group())
    assert out.endswith(" " + "`" * n) and out.startswith("`" * n + " ")
    inner = out[n + 1 : -(n + 1)]
    assert all(len(run) != n for run in re.findall(r"`+", inner))
    assert "\n" not in out
    assert find_hazards(out) == []
    assert find_hazards("text " + out + " text") == []


@pytest.mark.parametrize("render", [code_span, code_block])
def test_code_cannot_carry_a_forged_marker(render: Callable[[object], str]) -> None:
    forged = '<!-- incident-bot:child {"incident":1,"channel":"x"} -->'
    out = render(f"see {forged}\n{forged}")
    assert parse_markers(out) == []
    assert "incident\u2011bot" in out
    assert "<!-- ordinary comment -->" in render("<!-- ordinary comment -->")


# --------------------------------------------------------------------------------------
# Usernames, mentions, references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("alice", True),
        ("a", True),
        ("_", True),
        ("a.b-c_d", True),
        ("A1", True),
        (".hidden", True),
        ("_x", True),
        ("x-", True),
        ("-x", False),
        ("x.", False),
        ("x.git", False),
        ("x.ATOM", False),
        ("a b", False),
        ("a/b", False),
        ("a@b", False),
        ("", False),
        ("é", False),
        ("a" * 255, True),
        ("a" * 256, False),
        ("alice\n", False),
        (None, False),
        (5, False),
    ],
)
def test_is_valid_username(name: object, valid: bool) -> None:
    assert is_valid_username(name) is valid


@pytest.mark.parametrize(
    ("path", "valid"),
    [
        ("sec", True),
        ("sec/ops", True),
        ("sec/ops/oncall", True),
        ("sec//ops", False),
        ("/sec", False),
        ("sec/", False),
        ("sec/-x", False),
        ("/".join(["g"] * 21), True),
        ("/".join(["g"] * 22), False),
    ],
)
def test_is_valid_group_path(path: str, valid: bool) -> None:
    assert is_valid_group_path(path) is valid


@pytest.mark.parametrize(
    ("handle", "allow_group", "expected"),
    [
        ("alice", False, "@alice"),
        ("@alice", False, "@alice"),
        ("a.b-c", False, "@a.b-c"),
        ("sec/ops", True, "@sec/ops"),
        ("sec", True, "@sec"),
    ],
)
def test_mention_ok(handle: str, allow_group: bool, expected: str) -> None:
    assert mention(handle, allow_group=allow_group) == expected


@pytest.mark.parametrize(
    ("handle", "allow_group"),
    [
        ("all", False),
        ("ALL", False),
        ("@all", False),
        ("here", False),
        ("all/sub", True),
        ("sec/ops", False),
        ("-x", False),
        ("x.", False),
        ("alice bob", False),
        ("alice\n/close", False),
        ("", False),
        ("@", False),
        ("a/b/../c", True),
        (5, False),
    ],
)
def test_mention_refuses(handle: object, allow_group: bool) -> None:
    with pytest.raises(UnsafeValue):
        mention(handle, allow_group=allow_group)  # type: ignore[arg-type]


def test_handle_validates_and_remembers_group() -> None:
    assert Handle("@alice") == "alice" and Handle("alice").group is False
    assert Handle("sec/ops", group=True).group is True
    for bad in ["all", "sec/ops", "eve\n/close", "-x"]:
        with pytest.raises(UnsafeValue):
            Handle(bad)


@pytest.mark.parametrize(("iid", "expected"), [(1, "#1"), (12, "#12"), (10**9, "#1000000000")])
def test_issue_ref_ok(iid: int, expected: str) -> None:
    assert issue_ref(iid) == expected


@pytest.mark.parametrize("iid", [0, -1, True, False, "12", 1.0, None, "1\n/close"])
def test_issue_ref_refuses(iid: object) -> None:
    with pytest.raises(UnsafeValue):
        issue_ref(iid)  # type: ignore[arg-type]


def test_valid_mentions_in() -> None:
    assert valid_mentions_in("@alice and @Sec/Ops, x@bob, \\@carol, @all, @-x") == {"alice", "sec/ops"}


# --------------------------------------------------------------------------------------
# find_hazards
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # quick actions, under every reading of line breaks
        ("/close", ["quick_action"]),
        ("text\n/close", ["quick_action"]),
        ("text\r\n/label ~x", ["quick_action"]),
        ("\r/close", ["quick_action"]),
        ("a\r/close", ["quick_action"]),
        ("a\u2028/close", ["quick_action"]),
        ("a\x85/close", ["quick_action"]),
        ("/cloſe", ["quick_action"]),
        ("```\n/close\n```", ["quick_action"]),
        ("<details>\n/close\n</details>", ["quick_action"]),
        (" /close", []),
        ("\\/close", []),
        ("a /close", []),
        ("/ close", []),
        ("/", []),
        # mentions
        ("hi @all", ["mention"]),
        ("@all", ["mention"]),
        ("(@all)", ["mention"]),
        ("é@all", ["mention"]),
        ("\\\\@all", ["mention"]),
        ("&#64;all", ["mention"]),
        ("&#x40;all", ["mention"]),
        ("**a**@all", ["mention"]),
        ("x\n```\n@all\n```", ["mention"]),
        ("a `b\nc` @all `d`", ["mention"]),
        ("| h | i | j |\n|---|:-:|---|\n| `a | @all | b` |", ["mention"]),
        ("para\n\n| `a | @all | b` |", []),
        ("<b title='`'>@all</b>`x`", ["mention"]),
        ("- item\n\n    @all", ["mention"]),
        ("1. item\n\n    @all", ["mention"]),
        ("[^1]: note\n\n    @all", ["mention"]),
        ("<pre>\n\n    @all\n</pre>", ["mention"]),
        ("text\n    @all", ["mention"]),
        ("<!-- incident-bot:log {} --> `@all`", ["mention"]),
        ("\\@all", []),
        ("mail@all.com", []),
        ("`@all`", []),
        ("`` a`@all ``", []),
        ("text\n\n    @all", []),
        ("    @all", []),
        ("\t@all", []),
        ("- item\n\n## Heading\n\n    @all", []),
        ("- item\n\nparagraph\n\n    @all", []),
        ("- item\n\n<!-- -->\n\n    @all", []),
        ("@ all", []),
        ("_x_@all", ["mention"]),
        ("x\\_@all", []),
        # raw HTML blocks: backslashes escape nothing there
        ("<details>\n<summary>\\@all</summary>", ["raw_html", "mention"]),
        ("<details>\n\\#12 title\n\n\\#12 after the block", ["raw_html"]),
        ("<!-- incident-bot:log {} --> \\#12", ["raw_html"]),
        ('<!-- incident-bot:log {"q":"\\"x\\""} -->\n\\#12', []),
        ("<pre>\n\n\\<b\\>\n</pre>\n\\<b\\>", ["raw_html", "raw_html"]),
        # template syntax
        ("{{ x }}", ["template_syntax"]),
        ("{% if %}", ["template_syntax"]),
        ("{# c #}", ["template_syntax"]),
        ("\\{\\{ x \\}\\}", []),
        ("\\{{{ x", ["template_syntax"]),
        ("\\{{", []),
        ("`{{ x }}`", []),
        ("{ {", []),
        # HTML comments
        ("<!-- hidden -->", ["html_comment"]),
        ("<!--", ["html_comment"]),
        ("<!-- incident-bot:checklist {bad} -->", ["html_comment"]),
        ("\\<!-- x -->", []),
        ("<!-- -->", []),
        ('<!-- incident-bot:checklist {"a":1} -->', []),
        ("`<!-- x -->`", []),
        ("\n\n    <!-- x -->", []),
    ],
)
def test_find_hazards_table(body: str, expected: list[str]) -> None:
    assert kinds(body) == expected


def test_find_hazards_records_line_and_handle() -> None:
    body = "intro\r\nsecond @Alice.\n\nthird @sec/ops/ and\n/close"
    hazards = find_hazards(body)
    assert [(h.kind, h.line, h.handle) for h in hazards] == [
        ("quick_action", 5, None),
        ("mention", 2, "Alice"),
        ("mention", 4, "sec/ops"),
    ]
    assert str(hazards[0]) == "quick_action at line 5: '/close'"


def test_find_hazards_reads_handles_as_gitlab_renders_them() -> None:
    body = "@alice\\-evil and @bob&#45;x and _@carol_ and @dave\\@x"
    assert [h.handle for h in find_hazards(body)] == ["alice-evil", "bob-x", "carol_", "carol", "dave"]
    # "@alice" from the mention filter must not silently become another user.
    assert [h.handle for h in unexpected_hazards("@alice" + escape_inline("-evil"), ["alice"])] == ["alice-evil"]


def test_bot_markers_are_not_hazards() -> None:
    body = marker("checklist", note="@all /close {{ x }} <!-- -->") + "\n- [ ] a " + marker("item", id="a")
    assert find_hazards(body) == []


def test_unexpected_hazards_and_assert_safe() -> None:
    body = "DRI: @alice, also @Bob and @carol"
    assert [h.handle for h in unexpected_hazards(body, {"@ALICE", "bob"})] == ["carol"]
    assert_safe("DRI: @alice", ["alice"])
    with pytest.raises(UnsafeOutput) as info:
        assert_safe(body, ["alice"], what="note")
    assert str(info.value).startswith("note: unsafe output: mention at line 1")
    assert [h.handle for h in info.value.hazards] == ["Bob", "carol"]
    with pytest.raises(UnsafeOutput):
        assert_safe("fine\n/close")


@settings(max_examples=examples(200))
@given(st.lists(any_text, min_size=1, max_size=4))
def test_escaped_values_joined_by_lines_have_no_hazards(values: list[str]) -> None:
    body = "\n".join(escape_inline(v) for v in values)
    assert find_hazards(body) == []
