"""``incident-bot init`` against the simulated GitLab, and a copied policy file that still works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import responses

from bot.commands.cli import main
from bot.commands.initproject import plan_labels, run_init, team_webhook_lines, wanted_labels, webhook_lines
from bot.commands.world import add_users
from bot.config import load_config
from bot.errors import UserError
from bot.gitlab.callpolicy import CallPolicy
from bot.gitlab.projectsetup import ProjectSetup
from bot.wiring import client_from
from tests.conftest import ROOT


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def live(monkeypatch, sim):
    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    monkeypatch.delenv("GITLAB_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("INCIDENT_BOT_CONFIG", raising=False)
    monkeypatch.delenv("INCIDENT_BOT_SCOPE", raising=False)
    return sim


def project_labels(sim, project: str) -> dict[str, dict]:
    return {lab.name: {"color": lab.color, "description": lab.description} for lab in
            sim.state.find_project(project).labels.values()}  # fmt: skip


def test_dry_run_lists_the_missing_labels_and_writes_nothing(capsys, live, w, default_config):
    live.reset_log()
    code, out, _ = run(capsys, "init", w.project)
    assert code == 0
    assert live.writes() == []
    assert f"would create  {default_config.labels.trigger}" in out
    assert "Run again with --apply" in out
    assert live.count("GET") == 2 and "2 API calls (0 writes)" in out


def test_apply_creates_exactly_the_missing_labels_and_keeps_a_teams_colours(capsys, live, w, default_config):
    live.state.add_label(w.project, "severity::1", "#123456", "ours")
    live.state.add_label(w.project, "comms-email", "#00ff00")
    wanted = {s.name: s for s in wanted_labels(default_config)}
    live.reset_log()

    code, out, _ = run(capsys, "init", w.project, "--apply")

    assert code == 0
    posts = live.find_requests("POST", r"/labels$")
    assert len(posts) == len(wanted) - 2 == len(live.writes())
    labels = project_labels(live, w.project)
    assert set(labels) >= set(wanted)
    assert labels["severity::1"] == {"color": "#123456", "description": "ours"}
    assert labels["comms-email"]["color"] == "#00ff00"
    trigger = wanted[default_config.labels.trigger]
    assert labels[trigger.name] == {"color": trigger.color, "description": trigger.description}
    # one project read, one labels page, one create per missing label
    assert f"{2 + len(wanted) - 2} API calls ({len(wanted) - 2} writes)" in out

    live.reset_log()
    code, out, _ = run(capsys, "init", w.project, "--apply")
    assert code == 0 and live.writes() == [] and "Nothing to create" in out
    assert project_labels(live, w.project) == labels


def test_a_bot_without_reporter_access_is_one_line_and_exit_2(capsys, live, default_config):
    """Reporter is what GitLab requires for everything the bot does where incidents live (ProjectPolicy:
    ``reporter_access`` enables admin_issue, admin_label, read_confidential_issues, read_internal_note)."""
    add_users(live, ["someone"])
    live.state.add_project("acme/guests", members={"someone": 40, default_config.bot.username: 10})
    code, out, err = run(capsys, "init", "acme/guests", "--apply")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "has Guest (10) on acme/guests; it needs Reporter (20)" in err
    assert live.writes() == []


def test_empty_permissions_are_checked_once_more_through_the_members_api(capsys, live, default_config):
    # A public project answers GET /projects/:id to anyone, with empty permissions for non-members (as
    # for a member through a shared group): the members API settles it.
    live.state.add_project("acme/public", visibility="public")
    live.reset_log()
    code, _, err = run(capsys, "init", "acme/public")
    assert code == 2 and "has no access (0) on acme/public" in err
    assert live.count("GET", r"/members/all/\d+$") == 1


def test_a_missing_project_is_one_line_and_exit_2(capsys, live, w):
    code, out, err = run(capsys, "init", "acme/no-such-project")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "project acme/no-such-project not found" in err and "(404)" in err


def test_a_bad_token_is_one_line_and_exit_2(capsys, live, monkeypatch, w):
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-wrong")
    code, _, err = run(capsys, "init", w.project)
    assert code == 2 and err.strip().count("\n") == 0 and "GITLAB_TOKEN was rejected" in err
    assert "glpat-wrong" not in err


def test_an_unreachable_gitlab_is_one_line(default_config):
    policy = CallPolicy(max_attempts=2, sleep=lambda _s: None, rate_per_minute=1e6, burst=100)
    client = client_from("http://127.0.0.1:9", "x", policy, timeout=2)
    with pytest.raises(UserError) as caught:
        run_init(ProjectSetup(client), default_config, "acme/sec", apply=True, gitlab_url="http://127.0.0.1:9",
                 out=lambda _line: None)  # fmt: skip
    assert str(caught.value).startswith("cannot reach GITLAB_URL http://127.0.0.1:9: ")
    assert "\n" not in str(caught.value)


def test_the_webhook_settings_name_the_secret_but_never_print_it(capsys, live, w, monkeypatch):
    monkeypatch.setenv("GITLAB_WEBHOOK_SECRET", "s3cr3t-value-xyz")
    code, out, _ = run(capsys, "init", w.project, "--url", "https://bot.example.com")
    assert code == 0
    assert "https://bot.example.com/webhook" in out
    assert "GITLAB_WEBHOOK_SECRET" in out and "s3cr3t-value-xyz" not in out
    assert "Issues events, Confidential issues events, Comments, Confidential comments" in out


def test_init_prints_the_line_that_puts_the_project_in_the_incident_scope(capsys, live, w, monkeypatch):
    code, out, _ = run(capsys, "init", w.project)  # the bundled policy: scope: [], no INCIDENT_BOT_SCOPE
    assert code == 0
    assert f"Incident scope: {w.project} is not in it, so the bot ignores incidents there" in out
    assert f"  INCIDENT_BOT_SCOPE={w.project}\n" in out and f"scope: [{w.project}]" in out
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", "acme-other")
    _, out, _ = run(capsys, "init", w.project)
    assert f"  INCIDENT_BOT_SCOPE=acme-other,{w.project}\n" in out
    monkeypatch.setenv("INCIDENT_BOT_SCOPE", "acme")
    _, out, _ = run(capsys, "init", w.project)
    assert f"Incident scope: {w.project} is inside it (acme): OK" in out and "INCIDENT_BOT_SCOPE=" not in out


def test_the_label_palette_follows_the_kind_of_label(default_config):
    specs = {s.name: s for s in wanted_labels(default_config)}
    kinds = {s.kind for s in specs.values()}
    assert kinds == {"trigger", "severity", "flag", "phase", "channel", "child"}
    # every channel and phase of the policy, and its child label, is among them
    assert {c.label for c in default_config.channels} <= set(specs)
    assert {p.label for p in default_config.phases} <= set(specs)
    assert default_config.labels.child in specs
    # most severe is the reddest: the green channel of the colour rises towards yellow
    sev = sorted((s for s in specs.values() if s.kind == "severity"), key=lambda s: s.name)
    greens = [int(s.color[3:5], 16) for s in sev]
    assert greens == sorted(greens)
    assert all(s.description.startswith("incident-bot") for s in specs.values())
    plan = plan_labels(default_config, {"severity::1": "#000000"})
    assert plan.existing == {"severity::1": "#000000"} and "severity::1" not in {s.name for s in plan.missing}


def test_webhook_url_without_a_path_gets_the_webhook_path():
    assert "https://bot.example.com/webhook" in "\n".join(webhook_lines("https://bot.example.com/", secret_is_set=True))
    assert "https://x.example/hooks/ib" in "\n".join(webhook_lines("https://x.example/hooks/ib", secret_is_set=True))


def test_init_names_the_webhook_each_team_project_needs_and_what_it_brings(default_config):
    """A child in a team's project reports its close only to a webhook on that project."""
    from tests.test_team_projects import team_config

    assert team_webhook_lines(default_config, None) == [], "no team project, nothing to add"
    lines = team_webhook_lines(team_config(), "https://bot.example.com")
    assert "ticked on its incident's checklist within seconds" in lines[0] and "next sweep" in lines[0]
    [team] = lines[1:]
    assert team.split()[0] == "marketing/programs" and "https://bot.example.com/webhook" in team
    assert "Issues events, Confidential issues events; nothing else" in team


@responses.activate
def test_the_requests_init_sends(default_config):
    base = "https://gitlab.example.com/api/v4/projects/acme%2Fsec"
    responses.get(base, json={"id": 7, "permissions": {"project_access": None, "group_access": {"access_level": 30}}})
    existing = [{"name": s.name, "color": "#111111"} for s in wanted_labels(default_config)[1:]]
    responses.get(f"{base}/labels", json=existing)
    responses.post(f"{base}/labels", json={"id": 1, "name": default_config.labels.trigger}, status=201)

    client = client_from("https://gitlab.example.com", "tok", CallPolicy(rate_per_minute=1e6, burst=100))
    report = run_init(ProjectSetup(client), default_config, "acme/sec", apply=True,
                      gitlab_url="https://gitlab.example.com", out=lambda _line: None)  # fmt: skip

    assert report.created == [default_config.labels.trigger]
    calls = [(c.request.method, c.request.url) for c in responses.calls]
    assert calls == [
        ("GET", base),
        ("GET", f"{base}/labels?include_ancestor_groups=true&page=1&per_page=100"),
        ("POST", f"{base}/labels"),
    ]
    trigger = wanted_labels(default_config)[0]
    sent = json.loads(responses.calls[2].request.body)
    assert sent == {"name": trigger.name, "color": trigger.color, "description": trigger.description}
    assert all(c.request.headers["PRIVATE-TOKEN"] == "tok" for c in responses.calls)


# ---- a policy file copied anywhere ----------------------------------------------------------------------


def test_a_copied_policy_uses_the_bundled_templates(capsys, tmp_path: Path):
    copy = tmp_path / "elsewhere" / "bot.yaml"
    copy.parent.mkdir()
    shutil.copy(ROOT / "config" / "bot.yaml", copy)
    code, out, err = run(capsys, "check-config", "--config", str(copy))
    assert code == 0, err
    assert f"templates in {(ROOT / 'issue_templates').resolve()}" in out


def test_a_policy_with_its_own_templates_dir_resolves_it_next_to_the_file(capsys, tmp_path: Path):
    shutil.copytree(ROOT / "issue_templates", tmp_path / "my-templates")
    (tmp_path / "bot.yaml").write_text(
        (ROOT / "config" / "bot.yaml").read_text(encoding="utf-8") + "\ntemplates_dir: my-templates\n",
        encoding="utf-8",
    )
    cfg = load_config(tmp_path / "bot.yaml")
    assert cfg.template_dir == (tmp_path / "my-templates").resolve()
    (tmp_path / "my-templates" / "reminder.md.j2").unlink()
    code, _, err = run(capsys, "check-config", "--config", str(tmp_path / "bot.yaml"))
    assert code == 1 and "reminder.md.j2" in err


@responses.activate
def test_a_label_create_refused_with_403_is_one_line_naming_the_role_needed(default_config):
    base = "https://gitlab.example.com/api/v4/projects/acme%2Fsec"
    responses.get(base, json={"id": 7, "permissions": {"project_access": {"access_level": 30}, "group_access": None}})
    responses.get(f"{base}/labels", json=[])
    responses.post(f"{base}/labels", json={"message": "403 Forbidden"}, status=403)
    client = client_from("https://gitlab.example.com", "tok", CallPolicy(rate_per_minute=1e6, burst=100))
    with pytest.raises(UserError) as caught:
        run_init(ProjectSetup(client), default_config, "acme/sec", apply=True,
                 gitlab_url="https://gitlab.example.com", out=lambda _line: None)  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message and "(403)" in message and "Reporter role" in message
    assert len(responses.calls) == 3  # stopped at the first refusal


def test_the_simulator_refuses_a_label_colour_gitlab_would_refuse(sim, w):
    import gitlab

    project = sim.client().projects.get(w.project)
    with pytest.raises(gitlab.GitlabCreateError) as caught:
        project.labels.create({"name": "x", "color": "#12345"})
    assert caught.value.response_code == 400
    project.labels.create({"name": "y", "color": "#123abc"})
