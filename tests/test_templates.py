from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.text.escape import code_block, code_span
from bot.text.markers import Marker, parse_markers, strip_markers
from bot.text.templates import Handle, Safe, TemplateRenderer, TemplateRenderError, UnsafeOutput
from tests.hypothesis_profiles import examples
from tests.test_markdown import HOSTILE, LINE_BREAKS, any_text

ALL_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


@pytest.fixture(scope="module")
def r() -> TemplateRenderer:
    return TemplateRenderer([])


def render(r: TemplateRenderer, source: str, **context: object) -> str:
    return r.from_string(source).render(**context)


# --------------------------------------------------------------------------------------
# Escape by default
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@all", r"\@all"),
        ("/close", r"\/close"),
        ("eve\n/close", r"eve \/close"),
        ("\u2028/close", r"\/close"),
        ("#1 !2 ~bug %m $s &1 ^x", r"\#1 \!2 \~bug \%m \$s \&1 \^x"),
        ("[x](javascript:alert(1))", r"\[x\]\(javascript\:alert\(1\)\)"),
        ("{{ 7*7 }}", r"\{\{ 7\*7 \}\}"),
        ("{% raw %}", r"\{\% raw \%\}"),
        ("<!-- incident-bot:checklist {} -->", r"\<\!\-\- incident\-bot\:checklist \{\} \-\-\>"),
        (Handle("alice"), "alice"),
        (42, "42"),
        (["@all"], r"\[\'\@all\'\]"),
    ],
)
def test_values_are_escaped_by_default(r: TemplateRenderer, value: object, expected: str) -> None:
    assert render(r, "x {{ v }} y", v=value) == f"x {expected} y"


def test_values_are_never_evaluated(r: TemplateRenderer) -> None:
    out = render(
        r, "{{ a }} {{ b|code }} {{ c|block }}", a="{{ 7*7 }}", b="{{ 7*7 }}", c="{{ 7*7 }}\n{% if 1 %}x{% endif %}"
    )
    assert "49" not in out
    assert "{% if 1 %}x{% endif %}" in out  # shown verbatim in the code block, not run


def test_builtin_safe_and_escape_filters_do_not_bypass_escaping(r: TemplateRenderer) -> None:
    assert render(r, "{{ v|safe }}", v="@all") == r"\@all"
    assert render(r, "{{ v|e }}", v="/close") == r"\/close"
    assert "\\@ALL" in render(r, "{{ v|block|upper }}", v="@all")


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------


def test_block_filter(r: TemplateRenderer) -> None:
    out = render(r, "Description:\n{{ d|block }}\nend", d="line\n/close\n```\n@all\n```")
    assert out == "Description:\n\n\n<!-- -->\n\n    line\n    /close\n    ```\n    @all\n    ```\n\n\nend"


def test_mention_filter_mentions_only_handles(r: TemplateRenderer) -> None:
    assert render(r, "{{ h|mention }}", h=Handle("alice")) == "@alice"
    assert render(r, "{{ h|mention }}", h=Handle("sec/ops", group=True)) == "@sec/ops"
    assert render(r, "{{ h|mention }}", h="alice") == r"\@alice"
    assert render(r, "{{ h|mention }}", h="@all") == r"\@all"
    assert render(r, "{{ h|mention }}", h="eve\n/close") == r"\@eve \/close"


def test_mention_allowance_does_not_leak_between_renders(r: TemplateRenderer) -> None:
    assert render(r, "{{ h|mention }}", h=Handle("alice")) == "@alice"
    with pytest.raises(UnsafeOutput):
        render(r, "hello @alice")


def test_mention_must_not_run_into_following_text(r: TemplateRenderer) -> None:
    with pytest.raises(UnsafeOutput):
        render(r, "{{ h|mention }}.bob", h=Handle("alice"))
    assert render(r, "{{ h|mention }}.", h=Handle("alice")) == "@alice."


def test_safe_values_from_code_may_mention_valid_handles_only(r: TemplateRenderer) -> None:
    assert render(r, "DRI {{ who }}", who=Safe("@alice, @sec/ops")) == "DRI @alice, @sec/ops"
    for bad in ["@all", "@here", "/close", "<!-- x -->", "{{ x }}"]:
        with pytest.raises(UnsafeOutput):
            render(r, "{{ v }}", v=Safe(bad))


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{ n|ref }}", {"n": 12}, "#12"),
        ("{{ v|code }}", {"v": "a`b @all"}, "`` a`b @all ``"),
        (
            "{{ 'checklist'|marker(incident=3, note='-->') }}",
            {},
            '<!-- incident-bot:checklist {"incident":3,"note":"\\u002d\\u002d\\u003e"} -->',
        ),
        ("{{ b|checkbox }}{{ c|checkbox }}{{ n|checkbox }}", {"b": True, "c": False, "n": None}, "[x][ ][ ]"),
        (
            "{{ t|dt }}",
            {"t": datetime(2026, 11, 28, 15, 0, tzinfo=timezone(timedelta(hours=1)))},
            "2026-11-28 14:00 UTC",
        ),
        ("{{ t|dt }}", {"t": datetime(2026, 11, 28, 14, 0, 59)}, "2026-11-28 14:00 UTC"),
        ("{{ t|dt }}", {"t": datetime(2026, 11, 28, 14, 0, tzinfo=UTC)}, "2026-11-28 14:00 UTC"),
        ("{{ d|duration }}", {"d": timedelta(hours=1)}, "1h"),
        ("{{ d|duration }}", {"d": timedelta(minutes=30)}, "30m"),
        ("{{ d|duration }}", {"d": timedelta(hours=2, minutes=30, seconds=59)}, "2h 30m"),
        ("{{ d|duration }}", {"d": timedelta(days=1, hours=2)}, "1d 2h"),
        ("{{ d|duration }}", {"d": timedelta(seconds=45)}, "45s"),
        ("{{ d|duration }}", {"d": timedelta(0)}, "0s"),
        ("{{ xs|join(', ') }}", {"xs": ["a-b", "@all", "/close"]}, r"a\-b\, \@all\, \/close"),
        ("{{ xs|map('code')|join(', ') }}", {"xs": ["a", "@all"]}, r"` a `\, ` @all `"),
        ("{{ xs|join(', ', attribute='n') }}", {"xs": [{"n": "~x"}, {"n": "y"}]}, r"\~x\, y"),
        ("{{ xs|join(sep) }}", {"xs": ["a", "b"], "sep": "\n/close "}, "a\n\\/close b"),
    ],
)
def test_filters(r: TemplateRenderer, source: str, context: dict[str, object], expected: str) -> None:
    assert render(r, source, **context) == expected


@pytest.mark.parametrize(
    ("source", "context", "message"),
    [
        ("{{ n|ref }}", {"n": "12"}, "positive int"),
        ("{{ n|ref }}", {"n": 0}, "positive int"),
        ("{{ n|ref }}", {"n": True}, "positive int"),
        ("{{ b|checkbox }}", {"b": "yes"}, "checkbox needs a bool"),
        ("{{ t|dt }}", {"t": "2026-11-28"}, "dt needs a datetime"),
        ("{{ d|duration }}", {"d": 60}, "duration needs a timedelta"),
        ("{{ d|duration }}", {"d": timedelta(minutes=-1)}, "must not be negative"),
        ("{{ 'Bad'|marker }}", {}, "invalid marker kind"),
        ("{{ 'x'|marker(v=o) }}", {"o": object()}, "not JSON-serialisable"),
        ("{{ h|mention }}", {"h": Safe("x")}, ""),
    ],
)
def test_filter_errors_are_render_errors(
    r: TemplateRenderer, source: str, context: dict[str, object], message: str
) -> None:
    if not message:  # a Safe that is not a Handle is printed as inert text
        assert render(r, source, **context) == r"\@x"
        return
    with pytest.raises(TemplateRenderError, match=message):
        render(r, source, **context)


# --------------------------------------------------------------------------------------
# Errors: one clear line with template name and line number
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("ok\n{{ usr }}", {}, "template '<string>' line 2: undefined: 'usr' is undefined"),
        (
            "ok\n\n{{ issue.nope }}",
            {"issue": {}},
            "template '<string>' line 3: undefined: 'dict object' has no attribute 'nope'",
        ),
        ("{% if %}", {}, "template '<string>' line 1: syntax error:"),
        ("a\n{{ x|nosuchfilter }}", {}, "template '<string>' line 2: syntax error: No filter named 'nosuchfilter'"),
        (
            "{{ ''.__class__.__mro__ }}",
            {},
            "template '<string>' line 1: security error: access to attribute '__class__'",
        ),
        ("{{ labels.append('x') }}", {"labels": []}, "security error: access to attribute 'append'"),
        ("{{ 'a' * 10**7 }}", {}, "security error: repetition would exceed 100000"),
        ("{{ [1] * 10**7 }}", {}, "security error: repetition would exceed"),
        ("{{ 2 ** 100000 }}", {}, "security error: exponent 100000"),
        ("{% for i in range(10**6) %}{% endfor %}", {}, "OverflowError"),
        ("{% for i in range(90000) %}{{ 'abcd' }}{% endfor %}", {}, "output exceeds 100000 characters"),
    ],
)
def test_render_errors(r: TemplateRenderer, source: str, context: dict[str, object], expected: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(r, source, **context)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_default_undefined_tests_still_work(r: TemplateRenderer) -> None:
    assert render(r, "{{ x|default('none') }}{% if y is defined %}y{% endif %}") == "none"


def test_max_chars_is_a_hard_limit() -> None:
    small = TemplateRenderer([], max_chars=10)
    assert small.from_string("{{ v }}").render(v="a" * 10) == "a" * 10
    with pytest.raises(TemplateRenderError, match="exceeds 10 characters"):
        small.from_string("{{ v }}").render(v="a" * 11)


# --------------------------------------------------------------------------------------
# Unsafe output: the template text itself
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("Done.\n/label ~triaged", "quick_action"),
        ("/close", "quick_action"),
        ("{{ x }}\n/close", "quick_action"),
        ("ping @security-team", "mention"),
        ("<!-- note to self -->", "html_comment"),
        ("{% raw %}{{ x }}{% endraw %}", "template_syntax"),
        ("- item\n\n    {{ d }}", "mention"),
    ],
)
def test_unsafe_template_text_is_refused(r: TemplateRenderer, source: str, kind: str) -> None:
    with pytest.raises(UnsafeOutput) as info:
        render(r, source, x="v", d=Safe("@alice.bob @all"))
    assert info.value.hazards and info.value.hazards[0].kind == kind
    assert str(info.value).startswith("template '<string>': unsafe output:")


def test_values_inside_raw_html_blocks_are_refused(r: TemplateRenderer) -> None:
    source = "<details>\n<summary>{{ t }}</summary>\n\n{{ d|block }}\n</details>\n"
    assert render(r, source, t="Plain words", d="@all") == (
        "<details>\n<summary>Plain words</summary>\n\n\n\n<!-- -->\n\n    @all\n\n\n</details>\n"
    )
    for title in ["#12", "@all", "<b>x</b>"]:
        with pytest.raises(UnsafeOutput):
            render(r, source, t=title, d="")
    with pytest.raises(UnsafeOutput):
        render(r, "{{ 'log'|marker }} {{ t }}", t="~bug")


def test_block_in_list_context_is_still_code(r: TemplateRenderer) -> None:
    out = render(r, "- [ ] triage\n{{ d|block }}", d="@all\n/close")
    assert "    @all" in out


# --------------------------------------------------------------------------------------
# Loading from directories, check()
# --------------------------------------------------------------------------------------


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def test_render_from_dirs_first_match_wins(tmp_path: Path) -> None:
    override, default = tmp_path / "override", tmp_path / "default"
    write(default, "a.md.j2", "default {{ name }}\n")
    write(default, "b.md.j2", "b from default\n")
    write(override, "a.md.j2", "override {{ name }}\n")
    r = TemplateRenderer([override, default])
    assert r.render("a.md.j2", name="@x") == "override \\@x\n"
    assert r.render("b.md.j2") == "b from default\n"


def test_render_error_names_file_template_and_line(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "line 1\nline 2 {{ missing }}\n")
    with pytest.raises(TemplateRenderError) as info:
        TemplateRenderer([tmp_path]).render("t.md.j2")
    assert str(info.value) == "template 't.md.j2' line 2: undefined: 'missing' is undefined"
    assert info.value.template == "t.md.j2" and info.value.lineno == 2


def test_trim_and_lstrip_blocks_and_trailing_newline(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "Items:\n{% for i in xs %}\n    - {{ i }}\n{% endfor %}\nend\n")
    out = TemplateRenderer([tmp_path]).render("t.md.j2", xs=["a", "b"])
    assert out == "Items:\n    - a\n    - b\nend\n"


def test_check_reports_one_line_per_problem(tmp_path: Path) -> None:
    write(tmp_path, "good.md.j2", "{{ 'log'|marker }}\nHello {{ who }}, see {{ n|ref }}.\n")
    write(tmp_path, "syntax.md.j2", "ok\n{% for x in %}\n")
    write(tmp_path, "filter.md.j2", "{{ x|nope }}\n")
    write(tmp_path, "qa.md.j2", "text\n/label ~x\n")
    write(tmp_path, "mention.md.j2", "cc @security\n")
    write(tmp_path, "comment.md.j2", "<!-- todo -->\n")
    r = TemplateRenderer([tmp_path])
    assert r.check(["good.md.j2"]) == []
    problems = r.check(
        ["good.md.j2", "missing.md.j2", "syntax.md.j2", "filter.md.j2", "qa.md.j2", "mention.md.j2", "comment.md.j2"]
    )
    assert len(problems) == 6
    assert all("\n" not in p for p in problems)
    assert problems[0].startswith("template 'missing.md.j2': not found in ")
    assert problems[1].startswith("template 'syntax.md.j2' line 2: syntax error:")
    assert problems[2] == "template 'filter.md.j2' line 1: syntax error: No filter named 'nope'."
    assert problems[3] == "template 'qa.md.j2' line 2: line starts with '/', a quick action; the bot never writes one"
    assert problems[4] == "template 'mention.md.j2' line 1: mention in template text: '@security'"
    assert problems[5] == "template 'comment.md.j2' line 1: html_comment in template text: '<!-- todo -->'"


def test_render_missing_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateRenderError) as info:
        TemplateRenderer([tmp_path]).render("nope.md.j2")
    assert str(info.value) == f"template 'nope.md.j2': not found in {tmp_path}"


def test_render_name_is_positional_only(r: TemplateRenderer, tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "{{ name }}")
    assert TemplateRenderer([tmp_path]).render("t.md.j2", name="n") == "n"


# --------------------------------------------------------------------------------------
# Properties: arbitrary values in every field of a realistic template
# --------------------------------------------------------------------------------------

REALISTIC = """\
{{ "checklist" | marker(incident=iid) }}
### Incident {{ iid | ref }}: {{ title }}

**Reporter:** {{ author }} · **DRI:** {{ dri | mention }} · **Author:** {{ author | mention }}
**Labels:** {{ labels | join(", ") }}
**Label codes:** {% for label in labels %}{{ label | code }}{% if not loop.last %}, {% endif %}{% endfor %}

#### Checklist
- {{ done | checkbox }} Notify the reporter {{ author }} {{ "item" | marker(id="notify") }}
- [ ] Review {{ title | code }}
{% for label in labels %}
- [ ] Label {{ label }}
{% endfor %}
{{ description | block }}
Last updated {{ when | dt }}, {{ title }}
"""

hostile_multiline = st.lists(
    st.one_of(
        st.sampled_from([*HOSTILE, "\n/close\n", "\r\n/label ~x\r\n", "\n```\n/close\n```\n"]), st.text(max_size=10)
    ),
    max_size=16,
).map("".join)


def unescaped_at(text: str, needle_re: str) -> list[str]:
    """Matches of ``needle_re`` whose first character is not backslash-escaped."""
    hits = []
    for m in re.finditer(needle_re, text):
        backslashes = len(text[: m.start()]) - len(text[: m.start()].rstrip("\\"))
        if backslashes % 2 == 0:
            hits.append(m.group())
    return hits


@settings(max_examples=examples(250), deadline=None)
@given(
    iid=st.integers(min_value=1, max_value=10**6),
    title=any_text,
    author=any_text,
    labels=st.lists(any_text, max_size=4),
    description=st.one_of(hostile_multiline, st.text(max_size=200)),
    done=st.booleans(),
)
def test_realistic_template_never_leaks(
    iid: int, title: str, author: str, labels: list[str], description: str, done: bool
) -> None:
    values = [title, author, description, *labels]
    r = TemplateRenderer([])
    out = r.from_string(REALISTIC).render(
        iid=iid,
        title=title,
        author=author,
        dri=Handle("alice"),
        labels=labels,
        description=description,
        done=done,
        when=datetime(2026, 11, 28, 14, 0, tzinfo=UTC),
    )

    # No quick action under any reading of line breaks (GitLab deletes CRs first).
    for view in (ALL_BREAKS.split(out), out.replace("\r", "").split("\n")):
        assert not any(line.startswith("/") for line in view)

    # Exactly the template's own markers, whatever the values held.
    assert parse_markers(out) == [Marker("checklist", {"incident": iid}), Marker("item", {"id": "notify"})]

    # Template syntax in values is printed, never evaluated.
    if not any("49" in v for v in values) and "49" not in str(iid):
        assert "49" not in out

    # Independent of find_hazards: outside the code block and code spans produced by
    # the filters, the only live @ is the DRI's, and no {{ {% {# or <!-- is live.
    rest = out
    block = code_block(description)
    assert block in rest
    rest = rest.replace(block, "\n")
    for span in sorted({code_span(v) for v in [title, *labels]}, key=len, reverse=True):
        rest = rest.replace(span, "")
    rest = strip_markers(rest).replace("**DRI:** @alice ", "")
    assert unescaped_at(rest, r"@[A-Za-z0-9_.]") == []
    assert unescaped_at(rest, r"\{[{%#]") == []
    assert unescaped_at(rest, r"<!--") == []


@settings(max_examples=examples(100), deadline=None)
@given(value=any_text, brk=st.sampled_from(LINE_BREAKS))
def test_line_breaks_in_values_never_start_a_line(value: str, brk: str) -> None:
    r = TemplateRenderer([])
    out = r.from_string("Title: {{ t }}\n{{ t }}\n").render(t=f"x{brk}/close{brk}@all{brk}{value}")
    assert out.count("\n") == 2
    assert out.startswith("Title: x \\/close \\@all")


@settings(max_examples=examples(100), deadline=None)
@given(st.text(max_size=40))
def test_any_value_in_any_filter_renders_or_fails_cleanly(value: str) -> None:
    r = TemplateRenderer([])
    out = r.from_string("{{ v }} {{ v|code }} {{ v|mention }} {{ [v, v]|join(v) }}\n{{ v|block }}").render(v=value)
    assert not any(line.startswith("/") for line in ALL_BREAKS.split(out))
    assume(value.strip())
    assert parse_markers(out) == []
