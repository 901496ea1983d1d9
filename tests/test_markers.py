from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text.markers import (
    MAX_MARKER_CHARS,
    Marker,
    MarkerError,
    StateKey,
    Trust,
    find_marker,
    marker,
    marker_spans,
    parse_markers,
    signed_marker,
    strip_markers,
    verify,
)
from tests.hypothesis_profiles import examples

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


@settings(max_examples=examples(200))
@given(kind=_kinds, fields=st.dictionaries(_field_names, _json_values, max_size=5))
def test_marker_round_trips(kind: str, fields: dict[str, object]) -> None:
    text = marker(kind, **fields)
    expected = json.loads(json.dumps(fields))
    assert parse_markers(text) == [Marker(kind, expected)]
    assert find_marker(f"before\n{text}\nafter", kind) == Marker(kind, expected)
    assert strip_markers(f"a\n{text}\nb") == "a\nb"


@settings(max_examples=examples(200))
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


# --------------------------------------------------------------------------------------
# Signed markers: only what the bot signed, for this incident, is believed
# --------------------------------------------------------------------------------------

KEY = StateKey(b"k" * 32)
OLD = StateKey(b"o" * 32)
ROTATED = StateKey(b"k" * 32, previous=(b"o" * 32,))
SCOPE = "11#3"
FIELDS = {"roles": {"simoc": "sam"}, "rev": 2, "snoozed_until": "2026-11-30T12:00:00+00:00"}


def _signed(key: StateKey = KEY, kind: str = "checklist", scope: str = SCOPE, **fields: object) -> Marker:
    found = parse_markers(signed_marker(kind, key, scope, **(fields or FIELDS)))
    assert len(found) == 1
    return found[0]


def _edited(m: Marker, **changes: object) -> Marker:
    return Marker(m.kind, {**m.fields, **changes})


@pytest.mark.parametrize(
    ("case", "found", "key", "scope", "trust"),
    [
        ("as signed", _signed(), KEY, SCOPE, Trust.SIGNED),
        ("a role holder changed", _edited(_signed(), roles={"simoc": "mallory"}), KEY, SCOPE, Trust.FORGED),
        ("snooze moved", _edited(_signed(), snoozed_until="2099-01-01T00:00:00+00:00"), KEY, SCOPE, Trust.FORGED),
        ("a field added", _edited(_signed(), handled=10**9), KEY, SCOPE, Trust.FORGED),
        ("copied from another incident", _signed(scope="11#4"), KEY, SCOPE, Trust.FORGED),
        ("copied from another project", _signed(scope="12#3"), KEY, SCOPE, Trust.FORGED),
        ("another kind with the same fields", _signed(kind="state"), KEY, SCOPE, Trust.SIGNED),
        ("mac removed", Marker("checklist", {k: v for k, v in FIELDS.items()}), KEY, SCOPE, Trust.UNSIGNED),
        ("mac not a string", _edited(_signed(), mac=12), KEY, SCOPE, Trust.FORGED),
        ("mac upper-cased", _edited(_signed(), mac=_signed().fields["mac"].upper()), KEY, SCOPE, Trust.FORGED),
        ("signed with another key", _signed(OLD), KEY, SCOPE, Trust.FORGED),
        ("signed with the previous key", _signed(OLD), ROTATED, SCOPE, Trust.SIGNED_EARLIER),
        ("signed with the current key after rotation", _signed(KEY), ROTATED, SCOPE, Trust.SIGNED),
    ],
)
def test_verify(case: str, found: Marker, key: StateKey, scope: str, trust: str) -> None:
    assert verify(found, key, scope) == trust, case


def test_a_signature_is_bound_to_the_marker_kind() -> None:
    state = _signed(kind="state")
    assert verify(Marker("checklist", state.fields), KEY, SCOPE) == Trust.FORGED


def test_a_signed_marker_refuses_a_mac_field_and_never_shows_the_key() -> None:
    with pytest.raises(MarkerError):
        signed_marker("checklist", KEY, SCOPE, mac="x")
    assert "kkkk" not in repr(KEY) and "32 bytes" in repr(KEY)
    with pytest.raises(ValueError):
        StateKey(b"short")


@settings(max_examples=examples(200))
@given(fields=st.dictionaries(_field_names.filter(lambda n: n != "mac"), _json_values, max_size=5))
def test_signed_markers_keep_the_marker_guarantees_and_verify(fields: dict[str, object]) -> None:
    text = signed_marker("checklist", KEY, SCOPE, **fields)
    inner = text[len("<!-- ") : -len(" -->")]
    assert "\n" not in text and "--" not in inner and ">" not in inner and "`" not in text
    (found,) = parse_markers(f"a\n{text}\nb")
    assert verify(found, KEY, SCOPE) == Trust.SIGNED
    assert {k: v for k, v in found.fields.items() if k != "mac"} == json.loads(json.dumps(fields))
