"""People checked before they are needed: ``check-config --live`` looks up every person and group the policy
names, and an incident whose role holder cannot be assigned says so in its status log.

Against the simulated GitLab: ``GET /users?username=`` (doc/api/users.md: a user's ``state`` is ``active``,
``blocked``, ``deactivated``, ...), ``GET /groups/:id`` (doc/api/groups.md) and
``GET /projects/:id/members/all`` (doc/api/members.md, inherited members included).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bot.commands.world import World
from bot.config import load_config
from bot.simgitlab import SimulatedGitLab
from tests.conftest import ROOT, look


def policy(tmp_path: Path, **changes: object) -> Path:
    """The bundled policy with ``roles.seoc.roster`` and team fields changed as given."""
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["templates_dir"] = str(ROOT / "issue_templates")
    if "seoc" in changes:
        data["roles"]["seoc"]["roster"] = changes["seoc"]
    for team, fields in changes.get("teams", {}).items():  # type: ignore[union-attr]
        data["teams"][team].update(fields)
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def live(capsys, monkeypatch, sim: SimulatedGitLab, cfg_path: Path, *extra: str) -> tuple[int, str, str]:
    from bot.commands.cli import main

    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    code = main(["check-config", "--config", str(cfg_path), "--live", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_bundled_people_pass_and_nothing_is_written(capsys, monkeypatch, w: World, sim, tmp_path) -> None:
    sim.reset_log()
    code, out, err = live(capsys, monkeypatch, sim, policy(tmp_path), "--project", w.project)
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith("people:")]
    assert "exist and are active" in line and f"members of {w.project}" in line
    assert sim.writes() == []


def test_the_operator_who_mistypes_a_roster_is_told_the_name_and_where(
    capsys, monkeypatch, w: World, sim, tmp_path
) -> None:
    """``alcie`` for ``alice``: one line naming the policy entry, with the closest project member."""
    sim.state.add_user("alice")
    sim.state.add_member(w.project, "alice", 30)
    code, _, err = live(capsys, monkeypatch, sim, policy(tmp_path, seoc=["alcie"]), "--project", w.project)
    assert code == 2
    assert "roles[seoc].roster: GitLab has no user @alcie (did you mean @alice?)" in err.splitlines()


def test_a_blocked_user_a_non_member_and_a_mistyped_team_handle(capsys, monkeypatch, w: World, sim, tmp_path) -> None:
    sim.state.add_user("gone", state="blocked")
    sim.state.add_user("outsider")
    cfg_path = policy(
        tmp_path,
        seoc=["gone", "outsider"],
        teams={"community_advocates": {"handle": "advocats"}},
    )
    code, _, err = live(capsys, monkeypatch, sim, cfg_path, "--project", w.project)
    assert code == 2
    lines = err.splitlines()
    assert "roles[seoc].roster: @gone is blocked in GitLab; the bot cannot assign them" in lines
    assert f"roles[seoc].roster: @outsider is not a member of {w.project}: GitLab will not assign them there" in lines
    assert any(
        line.startswith("teams[community_advocates].handle: GitLab has no user or group @advocats") for line in lines
    ), lines


def test_a_team_handle_that_is_a_group_the_bot_can_see_is_fine(capsys, monkeypatch, w: World, sim, tmp_path) -> None:
    cfg_path = policy(tmp_path, teams={"community_advocates": {"handle": "acme"}})  # the incidents' own group
    code, out, err = live(capsys, monkeypatch, sim, cfg_path, "--project", w.project)
    assert code == 0, err
    assert "and 1 group" in out


@pytest.fixture
def typo_world(w: World, tmp_path: Path) -> World:
    """The world's people, with the SEOC roster naming a user GitLab does not have."""
    return replace(w, cfg=load_config(str(policy(tmp_path, seoc=["alcie"]))))


def test_an_incident_whose_role_holder_cannot_be_assigned_says_so_once(typo_world: World, clock) -> None:
    w = typo_world
    iid = w.incident("severity::1", "comms-blog")
    changes = look(w, clock, iid).changes
    assert "could not assign the incident to @alcie: GitLab has no such user" in " ".join(changes)
    log = "\n".join(n["body"] for n in w.bot_notes(iid))
    assert log.count("could not assign the incident to \\@alcie") == 1
    assert log.count("could not assign the new comms\\-blog issue to \\@alcie") == 1
    look(w, clock, iid)
    log = "\n".join(n["body"] for n in w.bot_notes(iid))
    assert log.count("could not assign the incident to \\@alcie") == 1, "said once, not on every look"
