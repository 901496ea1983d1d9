"""check-config: the bundled policy is valid; each broken config gives one clear line per problem."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.commands.cli import main
from bot.config import Role, Severity, load_config, parse_duration
from bot.core.rotation import on_call
from tests.conftest import ROOT

BROKEN = Path(__file__).parent / "configs" / "broken"

# file -> the lines check-config must print (each a substring of one line), and nothing else
EXPECTED = {
    "unknown_key.yaml": [
        "channels[comms-email]: unknown key 'asignee' (did you mean 'assignee'?)",
        "channels[comms-email].assignee: required key is missing",
    ],
    "unknown_party.yaml": [
        "engagements[sr-director-security].dri: unknown role 'ciso' (expected one of: seoc, simoc, cmoc)",
        "channels[comms-blog].assignee: unknown team 'markting_programs' (did you mean 'marketing_programs'? expected ",
    ],
    "bad_cadence.yaml": [
        "engagements[e-group].cadence: cannot parse cadence 'hourly' "
        "(expected a duration such as 1h or 30m, or 'continuous')"
    ],
    "scoped_channels.yaml": [
        "channels[comms::email].label: scoped label 'comms::email' shares the scope 'comms::' with the phase labels",
        "channels[comms::blog].label: scoped label 'comms::blog' shares the scope 'comms::' with 'comms::email'",
    ],
    "unknown_flag_and_phase.yaml": [
        "engagements[corporate-marketing-pr].when.any[0].phase_at_least: unknown phase 'comms::decided' "
        "(expected one of: ",
        "engagements[legal].when.any_flags[0]: unknown impact flag 'pii-leak' (declare it in impact_flags)",
    ],
    "missing_template.yaml": ["templates: ", "no-such-template.md.j2"],
    "bad_severity_missing_key.yaml": [
        "severity.in_scope_at_least: unknown severity 'urgent' (expected one of: unknown, low, medium, high, critical)",
        "status_update_points: required key is missing",
    ],
    "bad_rotation.yaml": [
        "roles.seoc.rotation.timezone: unknown time zone 'Mars/Olympus'",
        "roles.seoc.rotation.weekday: unknown weekday 'moonday'",
    ],
    "typos.yaml": [
        "engagements[sr-director-security].dri: unknown role 'simco' (did you mean 'simoc'? expected one of: ",
        "engagements[e-group].dri: unknown team 'sr_director_securty' (did you mean 'sr_director_security'? ",
        "engagements[e-group].when.any_flags[0]: unknown impact flag 'data-breech' (did you mean 'data-breach'? "
        "or declare it in impact_flags)",
    ],
    "invalid_yaml.yaml": ["line 3, column 1: invalid YAML: expected ',' or '}'"],
}


def test_bundled_config_is_valid(capsys):
    assert main(["check-config", "--config", str(ROOT / "config" / "bot.yaml")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "8 channels" in out


def test_every_broken_config_is_covered():
    assert {p.name for p in BROKEN.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_config_prints_one_clear_line_per_problem(name, capsys):
    code = main(["check-config", "--config", str(BROKEN / name)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code != 0
    assert "Traceback" not in err
    expected = EXPECTED[name]
    if name == "missing_template.yaml":
        assert len(lines) == 1 and all(part in lines[0] for part in expected)
        return
    assert len(lines) == len(expected), err
    for want in expected:
        assert any(line.startswith(str(BROKEN / name)) and want in line for line in lines), (want, err)


def test_missing_config_file_is_one_line(capsys, tmp_path):
    assert main(["check-config", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.yaml'}: file not found"


@pytest.mark.parametrize(("text", "minutes"), [("1h", 60), ("30m", 30), ("1h30m", 90), ("2d", 2880), (" 1h 15m ", 75)])
def test_durations(text, minutes):
    assert parse_duration(text).total_seconds() == minutes * 60


@pytest.mark.parametrize("text", ["", "h", "0m", "hourly", "-1h", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_severity_names():
    assert Severity.parse("CRITICAL") is Severity.CRITICAL
    with pytest.raises(ValueError, match="expected one of"):
        Severity.parse("urgent")


# ---- rotations ---------------------------------------------------------------------------------


def rotation_role(**overrides) -> Role:
    spec = {
        "name": "SEOC",
        "roster": ["ann", "ben", "cat"],
        "rotation": {"timezone": "Europe/Amsterdam", "weekday": "monday", "at": "09:00", "start": "2026-01-05"},
    }
    spec.update(overrides)
    return Role.model_validate(spec)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 1, 5, 7, 59, tzinfo=UTC), "cat"),  # 08:59 in Amsterdam: the week before start
        (datetime(2026, 1, 5, 8, 0, tzinfo=UTC), "ann"),  # 09:00 in Amsterdam: hand-over to roster[0]
        (datetime(2026, 1, 11, 22, 0, tzinfo=UTC), "ann"),  # Sunday night: still ann
        (datetime(2026, 1, 12, 8, 0, tzinfo=UTC), "ben"),  # next Monday 09:00 CET
        (datetime(2026, 1, 19, 8, 30, tzinfo=UTC), "cat"),
        (datetime(2026, 1, 26, 8, 0, tzinfo=UTC), "ann"),  # wraps round
        # Daylight saving: the hand-over stays at 09:00 local, which is 07:00 UTC in summer.
        # 2026-03-30 is 12 weeks after the start: roster[0] again, from 09:00 CEST (07:00 UTC).
        (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), "cat"),
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), "ann"),
    ],
)
def test_weekly_rotation_hands_over_at_local_time(when, expected):
    assert on_call(rotation_role(), when) == expected


def test_override_wins_for_its_dates():
    role = rotation_role(overrides=[{"from": "2026-01-06T00:00:00Z", "to": "2026-01-07T00:00:00Z", "user": "dan"}])
    assert on_call(role, datetime(2026, 1, 6, 12, tzinfo=UTC)) == "dan"
    assert on_call(role, datetime(2026, 1, 7, 12, tzinfo=UTC)) == "ann"


def test_roster_without_rotation_is_its_first_member():
    assert on_call(Role(name="x", roster=["solo", "backup"]), datetime(2030, 1, 1, tzinfo=UTC)) == "solo"
    assert on_call(Role(name="x"), datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_config_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INCIDENT_BOT_CONFIG", str(ROOT / "config" / "bot.yaml"))
    monkeypatch.chdir(tmp_path)
    from bot.settings import Settings

    assert load_config(Settings.from_env().config).bot.username == "incident-bot"


@pytest.mark.parametrize(
    "template", ["reminder.md.j2", "reply.md.j2", "all-clear.md.j2", "status-update.md.j2", "review.md.j2"]
)
def test_check_config_renders_the_templates_of_an_incidents_later_life(tmp_path, capsys, template):
    import shutil

    shutil.copytree(ROOT / "issue_templates", tmp_path / "issue_templates")
    (tmp_path / "config").mkdir()
    policy = (ROOT / "config" / "bot.yaml").read_text(encoding="utf-8") + "\ntemplates_dir: ../issue_templates\n"
    (tmp_path / "config" / "bot.yaml").write_text(policy, encoding="utf-8")
    broken = tmp_path / "issue_templates" / template
    broken.write_text(broken.read_text() + "\n{{ no_such_variable }}\n")
    assert main(["check-config", "--config", str(tmp_path / "config" / "bot.yaml")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and template in err and "no_such_variable" in err
