from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.markers import (
    MAX_MARKER_CHARS,
    Marker,
    MarkerError,
    find_marker,
    marker,
    marker_spans,
    parse_markers,
    strip_markers,
)

# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def test_marker_renders_compact_sorted_json() -> None:
    assert marker("checklist", b=2, a=1) == '<!-- incident-bot:checklist {"a":1,"b":2} -->'
    assert marker("log") == "<!-- incident-bot:log {} -->"


@pytest.mark.parametrize(
    "fields",
    [
        {"note": "-->"},
        {"note": "--!>"},
        {"note": "a--b"},
        {"note": "---"},
        {"note": ">"},
        {"note": "<!-- incident-bot:child {} -->"},
        {"note": "`code`"},
        {"note": "line1\nline2\r\u2028\u2029\x85"},
        {"note": "@all /close {{ 7*7 }} {% raw %} #1 ~bug"},
        {"note": "\\--\\>"},
        {"nested": {"list": ["-->", -1, 2.5, None, True]}},
    ],
)
def test_marker_payload_cannot_close_comment_or_break_line(fields: dict[str, object]) -> None:
    text = marker("child", **fields)
    inner = text[len("<!--") : -len("-->")]
    assert "--" not in inner.replace("incident-bot", "")
    assert ">" not in inner
    assert "`" not in text
    assert "\n" not in text and "\r" not in text and "\u2028" not in text
    assert "@" not in text and "{{" not in text and "{%" not in text
    assert text.isascii()
    assert parse_markers(text) == [Marker("child", fields)]


@pytest.mark.parametrize("kind", ["", "Checklist", "a--b", "a-", "-a", "1a", "a_b", "a b", "a>b", "ü"])
def test_marker_rejects_bad_kind(kind: str) -> None:
    with pytest.raises(MarkerError):
        marker(kind)


@pytest.mark.parametrize(
    "fields",
    [{"x": math.nan}, {"x": math.inf}, {"x": object()}, {"x": {1, 2}}, {"x": b"bytes"}],
)
def test_marker_rejects_non_json_fields(fields: dict[str, object]) -> None:
    with pytest.raises(MarkerError):
        marker("child", **fields)


def test_marker_rejects_oversize() -> None:
    with pytest.raises(MarkerError):
        marker("child", blob="x" * MAX_MARKER_CHARS)


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "<!-- incident-bot:child {not json} -->",
        "<!-- incident-bot:child [1,2] -->",
        '<!-- incident-bot:child {"a":1}-->',
        '<!--incident-bot:child {"a":1} -->',
        '<!-- incident-bot:Child {"a":1} -->',
        '<!-- incident-bot:child {"a":1} --',
        '<!-- incident-bot:child {"a":\n1} -->',
        '<!-- other-bot:child {"a":1} -->',
        '\\<!-- incident-bot:child {"a":">"} -->',
        "",
    ],
)
def test_parse_ignores_malformed(body: str) -> None:
    assert parse_markers(body) == []
    assert find_marker(body, "child") is None


def test_parse_finds_all_in_order_and_find_marker_picks_first() -> None:
    body = "\n".join(
        [
            "intro",
            marker("checklist", incident=1),
            "text " + marker("item", id="a") + " more " + marker("item", id="b"),
            marker("checklist", incident=2),
        ]
    )
    assert [m.kind for m in parse_markers(body)] == ["checklist", "item", "item", "checklist"]
    found = find_marker(body, "checklist")
    assert found is not None and found.fields == {"incident": 1}
    assert found.get("incident") == 1 and found.get("missing", "d") == "d"
    assert find_marker(body, "log") is None


def test_marker_spans_positions() -> None:
    m = marker("item", id="x")
    body = "ab " + m + " cd"
    [(start, end, parsed)] = marker_spans(body)
    assert body[start:end] == m and parsed == Marker("item", {"id": "x"})


def test_strip_markers_removes_marker_lines_and_inline_markers() -> None:
    m = marker("checklist", incident=3)
    body = f"{m}\n### Title\n- [ ] one {marker('item', id='one')}\nend"
    assert strip_markers(body) == "### Title\n- [ ] one \nend"
    assert strip_markers("no markers") == "no markers"
    assert strip_markers(m) == ""
    assert strip_markers("<!-- incident-bot:child {bad} -->") == "<!-- incident-bot:child {bad} -->"


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_kinds = st.from_regex(r"[a-z][a-z0-9]{0,5}(?:-[a-z0-9]{1,4}){0,2}", fullmatch=True)
_field_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=200)
@given(kind=_kinds, fields=st.dictionaries(_field_names, _json_values, max_size=5))
def test_marker_round_trips(kind: str, fields: dict[str, object]) -> None:
    text = marker(kind, **fields)
    expected = json.loads(json.dumps(fields))
    assert parse_markers(text) == [Marker(kind, expected)]
    assert find_marker(f"before\n{text}\nafter", kind) == Marker(kind, expected)
    assert strip_markers(f"a\n{text}\nb") == "a\nb"


@settings(max_examples=200)
@given(
    prefix=st.text(max_size=30),
    suffix=st.text(max_size=30),
    fields=st.dictionaries(_field_names, _json_values, max_size=3),
)
def test_marker_survives_any_surroundings(prefix: str, suffix: str, fields: dict[str, object]) -> None:
    text = marker("child", **fields)
    found = parse_markers(prefix + text + suffix)
    assert Marker("child", json.loads(json.dumps(fields))) in found


def test_broken_marker_cannot_swallow_the_next_one() -> None:
    good = marker("child", incident=5)
    for prefix in ["<!-- incident-bot:a {", "<!-- incident-bot:a {x", '<!-- incident-bot:child {"a":']:
        assert parse_markers(prefix + good) == [Marker("child", {"incident": 5})]
