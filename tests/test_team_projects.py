"""Children in the team's own project, from the team's own issue template (issue 12, section 1).

Against the simulated GitLab: the email child of an S1 incident is opened in ``marketing/programs`` from its
``Email-Request-mpm`` template, exactly once through crashes and an empty database, and falls back to the
bundled template in the incident's project when the team's project or template cannot be read.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands.world import World, configured_users, world
from bot.config import Config, ConfigError, parse_config
from bot.core import bodies
from bot.core.model import IncidentRef
from bot.gitlab.errors import GitLabCallError
from bot.simgitlab import SimulatedGitLab
from tests.test_reconciler import fast_policy

ROOT = Path(__file__).resolve().parent.parent
TEAM = "marketing/programs"
NAME = "Email-Request-mpm"
TEMPLATE = (
    "## Email request\n\n"
    "Marketing Programs' intake form: fill in every field before the send date.\n\n"
    "- [ ] Audience list attached\n"
    "- [ ] Send time agreed with the requester\n"
)
S1 = ("severity::1", "data-breach", "comms-email", "comms-faq")
RULES = ("Contact data of the impacted parties is collected", "Plain text only", "No link tracking")


def team_config(**email: Any) -> Config:
    """The bundled policy with the email channel pointed at the team's project and template."""
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    for channel in data["channels"]:
        if channel["label"] == "comms-email":
            channel.update({"project": TEAM, "gitlab_template": NAME, **email})
    return parse_config(data, source="test.yaml", base_dir=ROOT / "config")


@pytest.fixture
def cfg() -> Config:
    return team_config()


@pytest.fixture
def w(sim: SimulatedGitLab, cfg: Config) -> World:
    return world(sim, cfg)


def reconcile(w: World, iid: int, **kw: Any):
    guard = kw.pop("guard", None)
    r = w.reconciler(**kw)  # a fresh process each time: new client, new caches, empty database
    try:
        return r.reconcile(IncidentRef(w.project, iid), guard=guard)
    finally:
        r.close()


def team_children(w: World) -> list[dict[str, Any]]:
    return [i for i in w.sim.state.issues(TEAM) if i["author"]["username"] == w.cfg.bot.username]


def writes_in(sim: SimulatedGitLab, pid: int) -> list[Any]:
    """Writes the bot sent to the team's project (by id or by path)."""
    encoded = TEAM.replace("/", "%2F")
    return [r for r in sim.writes() if f"/projects/{pid}/" in r.path or f"/projects/{encoded}" in r.path]


def template_reads(sim: SimulatedGitLab) -> int:
    return sim.count("GET", r"/templates/issues/")


def checklist(w: World, iid: int) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if bodies.find_checklist_marker(n["body"]))


def logged(w: World, iid: int) -> list[str]:
    return [k for n in w.bot_notes(iid) for k in bodies.logged_keys(n["body"])]


# ---- acceptance: one confidential child in the team's project, from its template ------------------------


def test_an_s1_opens_one_confidential_child_in_the_teams_project_from_its_template(w, sim):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident(*S1)
    reconcile(w, iid)

    [child] = team_children(w)
    assert child["confidential"]
    assert child["description"].startswith(TEMPLATE.rstrip())
    plan_part = child["description"][len(TEMPLATE.rstrip()) :]
    assert all(f"- [ ] {rule}" in plan_part for rule in RULES)
    assert "incident-bot:child" in plan_part  # the signed marker comes after the team's text
    assert [a["username"] for a in child["assignees"]] == ["mpm-oncall"]
    assert {"comms-email", "incident-comms"} <= set(child["labels"])
    # The way back to the incident is a cross-project reference, in the description and the title.
    assert f"acme/security-incidents#{iid}" in plan_part
    assert child["title"].endswith(f"for security incident acme/security-incidents#{iid}")
    # Linked to the incident across projects; nothing for the email channel in the incident's project.
    links = sim.state.links(w.project, iid)
    assert {(link["project_id"], link["iid"]) for link in links} >= {(pid, child["iid"])}
    assert [c for c in w.children() if "comms-email" in c["labels"]] == []
    assert len(w.children()) == 1  # the FAQ child, from the bundled template, stays in the incident's project
    # The team's labels exist in its project now.
    assert {"comms-email", "incident-comms"} <= {lab.name for lab in sim.client().projects.get(pid).labels.list()}
    # The incident's checklist and status log name the child by its full reference.
    ref = f"marketing/programs#{child['iid']}"
    assert ref in checklist(w, iid)
    assert any(ref in n["body"] and "opened" in n["body"] for n in w.bot_notes(iid))
    assert f"child:comms-email:{pid}/{child['iid']}" in logged(w, iid)


def test_the_template_costs_one_call_on_the_creating_run_and_none_after(w, sim):
    w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident(*S1)
    sim.reset_log()
    reconcile(w, iid)
    assert template_reads(sim) == 1
    # The same writes as with both children in the incident's project: creates, links, checklist, log
    # comment, incident update.
    # (The incident's timeline events are GraphQL writes besides these: tests/test_timeline.py.)
    assert len([r for r in sim.writes() if r.path != "/api/graphql"]) == 2 + 2 + 1 + 1 + 1
    # Three reads more: the bot's access level on the team's project (the remit, cached for a minute), the
    # orphan search there (a child opened just before a crash is found again) and the template.
    assert sim.count("GET", route="GET /projects/:id/members/all/:user_id") == 2
    assert sim.count("GET", route="GET /projects/:id/issues") == 2
    sim.reset_log()
    report = reconcile(w, iid)
    assert report.actions == [] and sim.writes() == []
    assert len(sim.requests) == 3 and template_reads(sim) == 0


def test_one_template_read_for_two_channels_with_the_same_template(sim):
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    for channel in data["channels"]:
        if channel["label"] in ("comms-email", "comms-distribution-list"):
            channel.update({"project": TEAM, "gitlab_template": NAME})
    w = world(sim, parse_config(data, source="t.yaml", base_dir=ROOT / "config"))
    w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident("severity::1", "comms-email", "comms-distribution-list")
    sim.reset_log()
    reconcile(w, iid)
    assert template_reads(sim) == 1
    assert len(team_children(w)) == 2


def test_a_teams_edit_of_its_template_takes_effect_on_the_next_child(w, sim):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    first = w.incident(*S1)
    reconcile(w, first)
    sim.state.add_issue_template(pid, NAME, "## Email request, version 2\n")
    second = w.incident(*S1, title="another one")
    reconcile(w, second)
    descriptions = sorted(c["description"] for c in team_children(w))
    assert descriptions[0].startswith("## Email request\n")
    assert descriptions[1].startswith("## Email request, version 2")


def test_closing_the_child_in_the_teams_project_ticks_the_incidents_box(w, sim):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    sim.state.close_issue(pid, child["iid"], actor="mpm-oncall")
    reconcile(w, iid)
    line = next(x for x in checklist(w, iid).splitlines() if f"marketing/programs#{child['iid']}" in x)
    assert "[x]" in line


def test_a_child_from_the_bundled_template_can_live_in_the_teams_project_too(sim):
    w = world(sim, team_config(gitlab_template=None))
    w.team_project(TEAM)
    iid = w.incident(*S1)
    sim.reset_log()
    reconcile(w, iid)
    [child] = team_children(w)
    assert "Email request details" in child["description"]  # the bundled customer-email template
    assert template_reads(sim) == 0


# ---- exactly once across projects --------------------------------------------------------------------


def clean_snapshot(cfg: Config) -> dict[str, Any]:
    with SimulatedGitLab() as sim:
        w = world(sim, cfg)
        w.team_project(TEAM, templates={NAME: TEMPLATE})
        iid = w.incident(*S1)
        reconcile(w, iid)
        return w.snapshot(iid)


def test_a_crash_after_every_write_then_an_empty_database_still_gives_one_child(cfg):
    expected = clean_snapshot(cfg)
    writes = 2 + 2 + 3  # creates, links, checklist, log comment, incident update
    for k in range(1, writes + 1):
        with SimulatedGitLab() as sim:
            w = world(sim, cfg)
            w.team_project(TEAM, templates={NAME: TEMPLATE})
            iid = w.incident(*S1)
            sim.crash_after_writes(k)
            with pytest.raises(GitLabCallError):
                reconcile(w, iid, policy=fast_policy(max_attempts=1))
            sim.recover()
            reconcile(w, iid)
            assert w.snapshot(iid) == expected, f"crash after write {k}"
            assert len(team_children(w)) == 1, f"crash after write {k}"
            assert reconcile(w, iid).actions == [], f"not converged after crash at write {k}"


class RecordingGuard:
    """The worker's create records (``bot.worker._JobGuard`` over the job store), in memory."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[datetime, int | None]] = {}

    def before_write(self) -> None:
        pass

    def before_create(self, channel: str) -> tuple[datetime, int | None] | None:
        if channel in self.records:
            return self.records[channel]
        self.records[channel] = (datetime.now().astimezone(), None)
        return None

    def created(self, channel: str, iid: int) -> None:
        self.records[channel] = (self.records[channel][0], iid)

    def create_failed(self, channel: str) -> None:
        self.records.pop(channel, None)


def test_a_create_whose_answer_was_lost_is_found_in_the_teams_project_not_made_again(w, sim):
    w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident("severity::1", "comms-email")
    guard = RecordingGuard()
    # The create lands, its answer is lost; the retry must find it there (unlinked, no log yet).
    sim.inject("reset", times=1, method="POST", path_regex=r"/projects/[^/]+/issues$", applied=True)
    with pytest.raises(GitLabCallError):
        reconcile(w, iid, policy=fast_policy(max_attempts=1), guard=guard)
    assert len(team_children(w)) == 1 and guard.records["comms-email"][1] is None
    reconcile(w, iid, guard=guard)
    assert len(team_children(w)) == 1
    assert w.snapshot(iid)["links"] == 1


# ---- fallback: the team's project or template cannot be read --------------------------------------------


def fallback_lines(w: World, iid: int) -> list[str]:
    return [k for k in logged(w, iid) if k.startswith("fallback:")]


def test_a_removed_template_falls_back_to_the_bundled_one_with_one_log_line(w, sim):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    sim.state.remove_issue_template(pid, NAME)
    iid = w.incident(*S1)
    sim.reset_log()
    reconcile(w, iid)
    assert team_children(w) == [] and writes_in(sim, pid) == []
    [email] = [c for c in w.children() if "comms-email" in c["labels"]]
    assert "Email request details" in email["description"]
    assert fallback_lines(w, iid) == ["fallback:comms-email"]
    note = next(n["body"] for n in w.bot_notes(iid) if "fallback:comms-email" in bodies.logged_keys(n["body"]))
    assert "Email-Request-mpm" in note and "marketing/programs" in note
    reconcile(w, iid)
    reconcile(w, iid)
    assert fallback_lines(w, iid) == ["fallback:comms-email"]
    assert len([c for c in w.children() if "comms-email" in c["labels"]]) == 1


@pytest.mark.parametrize("bot_level", [None, 10], ids=["not-a-member", "guest"])
def test_no_access_to_the_teams_project_falls_back_and_writes_nothing_there(sim, cfg, bot_level):
    w = world(sim, cfg)
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE}, bot_level=bot_level)
    iid = w.incident(*S1)
    sim.reset_log()
    reconcile(w, iid)
    assert writes_in(sim, pid) == [] and sim.state.issues(pid) == []
    assert template_reads(sim) == 0  # not even asked where the bot may not act
    assert len([c for c in w.children() if "comms-email" in c["labels"]]) == 1
    assert fallback_lines(w, iid) == ["fallback:comms-email"]
    assert reconcile(w, iid).actions == []


def test_a_missing_project_falls_back(sim, cfg):
    w = world(sim, cfg)  # marketing/programs does not exist (renamed, or a typo)
    iid = w.incident(*S1)
    reconcile(w, iid)
    assert len([c for c in w.children() if "comms-email" in c["labels"]]) == 1
    assert fallback_lines(w, iid) == ["fallback:comms-email"]


# ---- quick actions: the team's label is applied by the bot, nothing from the incident adds one ---------------


def test_the_teams_label_is_applied_and_the_incidents_title_cannot_add_a_quick_action(w, sim, cfg):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE + "\n/label ~mpm-intake\n"})
    sim.state.add_label(pid, "mpm-intake")
    iid = w.incident(*S1, title="Data exposed\n/close\n/label ~pwned @all")
    reconcile(w, iid)
    [child] = team_children(w)
    assert "mpm-intake" in child["labels"]  # the team's label, applied by the bot through the API
    assert "pwned" not in child["labels"] and child["state"] == "opened"
    plan_part = child["description"][len(TEMPLATE.rstrip()) :]
    assert not re.search(r"(?m)^/", plan_part)
    # No quick action is sent at all (the team's line is shown as code); no unexpected mention anywhere.
    assert "` /label ~mpm-intake `" in child["description"]
    assert [h for h in sim.hazards_except(configured_users(cfg)) if h["kind"] == "quick_action"] == []
    assert [h for h in sim.hazards_except(configured_users(cfg)) if h["kind"] == "mention"] == []
    assert writes_in(sim, pid)


# ---- actors in the team's project --------------------------------------------------------------------


def test_a_reporter_editing_the_childs_marker_in_the_teams_project_opens_no_duplicate(w, sim):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    sim.state.add_user("tina-team-reporter")
    sim.state.add_member(pid, "tina-team-reporter", 20)
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    edited = re.sub(r"<!-- incident-bot:child [^\n]*-->", "", child["description"])
    issue = sim.client("tina-team-reporter").projects.get(pid, lazy=True).issues.get(child["iid"])
    issue.description = edited
    issue.labels = ["incident-comms"]
    issue.save()
    reconcile(w, iid)
    reconcile(w, iid)
    assert len(team_children(w)) == 1 and len(w.children()) == 1
    assert w.snapshot(iid)["links"] == 2


def test_a_team_maintainer_deleting_the_link_gets_it_relinked_not_duplicated(w, sim):
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    sim.state.add_user("mia-team-maintainer")
    sim.state.add_member(pid, "mia-team-maintainer", 40)
    sim.state.add_member(w.project, "mia-team-maintainer", 20)
    iid = w.incident(*S1)
    reconcile(w, iid)
    [child] = team_children(w)
    gl = sim.client("mia-team-maintainer")
    links = gl.projects.get(pid, lazy=True).issues.get(child["iid"], lazy=True).links.list()
    [link] = [lk for lk in links if lk.iid == iid]
    gl.projects.get(pid, lazy=True).issues.get(child["iid"], lazy=True).links.delete(link.issue_link_id)
    assert w.snapshot(iid)["links"] == 1
    reconcile(w, iid)
    assert len(team_children(w)) == 1
    assert w.snapshot(iid)["links"] == 2
    assert reconcile(w, iid).actions == []


# ---- the configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"project": "marketing programs"}, "channels[comms-email].project: invalid GitLab group or project path"),
        ({"gitlab_template": "Email-Request-mpm.md"}, "name it without '.md'"),
        ({"gitlab_template": "../secrets"}, "invalid issue template name"),
        ({"gitlab_template": ""}, "invalid issue template name"),
        ({"gitlab_templte": "x"}, "unknown key 'gitlab_templte' (did you mean 'gitlab_template'?)"),
    ],
)
def test_a_mistyped_team_setting_is_one_clear_line(fields, expected):
    with pytest.raises(ConfigError) as err:
        team_config(**fields)
    assert len(err.value.problems) == 1
    assert expected in str(err.value)


def test_a_team_project_named_in_the_incident_scope_too_is_reported():
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["scope"] = ["acme", "Marketing/Programs"]
    for channel in data["channels"]:
        if channel["label"] == "comms-email":
            channel.update({"project": TEAM, "gitlab_template": NAME})
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="t.yaml", base_dir=ROOT / "config")
    assert len(err.value.problems) == 1
    assert (
        "channels[comms-email].project: project 'marketing/programs' is also named in the incident scope: a team "
        "project never holds incidents" in str(err.value)
    )
    data["scope"] = ["acme"]  # outside the incident scope is where a team project belongs
    assert parse_config(data, source="t.yaml", base_dir=ROOT / "config").scope == ["acme"]


# ---- check-config --live --------------------------------------------------------------------------------


def live(capsys, monkeypatch, sim, cfg_path: Path, *extra: str) -> tuple[int, str, str]:
    from bot.commands.cli import main

    monkeypatch.setenv("GITLAB_URL", sim.url)
    monkeypatch.setenv("GITLAB_TOKEN", sim.token)
    code = main(["check-config", "--config", str(cfg_path), "--live", *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "config" / "bot.yaml").read_text(encoding="utf-8"))
    data["templates_dir"] = str(ROOT / "issue_templates")
    for channel in data["channels"]:
        if channel["label"] == "comms-email":
            channel.update({"project": TEAM, "gitlab_template": NAME})
        if channel["label"] == "comms-distribution-list":
            channel.update({"project": "marketing/ops"})
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_check_config_live_reports_each_team_channel_and_writes_nothing(capsys, monkeypatch, w, sim, cfg_path):
    w.team_project(TEAM, templates={NAME: TEMPLATE})
    w.team_project("marketing/ops")
    sim.reset_log()
    code, out, err = live(capsys, monkeypatch, sim, cfg_path, "--project", w.project)
    assert code == 0, err
    access = [line for line in out.strip().splitlines() if line.startswith("access[")]
    assert [line.split(":")[0] for line in access] == [
        f"access[{w.project}] (incidents)", "access[marketing/programs] (children)", "access[marketing/ops] (children)"
    ]
    assert all(line.endswith("; enough") for line in access), access
    lines = [line for line in out.strip().splitlines() if line.startswith("channels[")]
    assert lines == [
        "channels[comms-email]: marketing/programs: OK (the bot user is Reporter, template 'Email-Request-mpm' "
        "found; may create confidential issues and link them)",
        "channels[comms-distribution-list]: marketing/ops: OK (the bot user is Reporter; may create confidential "
        "issues and link them)",
    ]
    assert sim.writes() == []
    assert template_reads(sim) == 1


def test_check_config_live_says_what_becomes_of_the_templates_quick_actions(capsys, monkeypatch, w, sim, cfg_path):
    w.team_project(TEAM, templates={NAME: TEMPLATE + "\n/label ~mpm-intake ~security-incident\n/assign me\n"})
    w.team_project("marketing/ops")
    code, out, err = live(capsys, monkeypatch, sim, cfg_path, "--project", w.project)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if line.startswith("channels[comms-email]")]
    assert "2 quick action line(s) shown as code, never run" in line
    assert "'/label ~mpm-intake ~security-incident' (~security-incident is one of the bot's labels)" in line
    assert "'/assign me' (`me` would be the bot)" in line


def test_check_config_live_names_each_problem_in_one_line_and_exits_2(capsys, monkeypatch, w, sim, cfg_path):
    w.team_project(TEAM, templates={"Other": "x"})  # the template is not there
    w.team_project("marketing/ops", bot_level=10)  # only a Guest
    code, _, err = live(capsys, monkeypatch, sim, cfg_path)
    assert code == 2
    problems = [line for line in err.strip().splitlines() if line.startswith("channels[")]
    assert len(problems) == 2
    assert "access[marketing/ops] (children): Guest (10): create issues: yes" in err
    assert problems[0].startswith("channels[comms-email]: marketing/programs: no issue template 'Email-Request-mpm'")
    assert problems[1].startswith("channels[comms-distribution-list]: marketing/ops: the bot user is Guest")
    assert all("bundled template in the incident's project" in p for p in problems)
    assert sim.writes() == []


def test_check_config_live_on_a_project_the_bot_cannot_see(capsys, monkeypatch, w, sim, cfg_path):
    w.team_project(TEAM, templates={NAME: TEMPLATE}, bot_level=None, visibility="private")
    w.team_project("marketing/ops")
    code, _, err = live(capsys, monkeypatch, sim, cfg_path)
    assert code == 2
    assert "channels[comms-email]: marketing/programs: the bot user cannot see marketing/programs (404" in err


def test_check_config_renders_the_plans_part_of_a_team_template_child(tmp_path):
    from bot.commands.checks import check_templates
    from bot.text.templates import TemplateRenderer

    templates = tmp_path / "templates"
    templates.mkdir()
    for f in (ROOT / "issue_templates").iterdir():
        if f.is_dir():  # slack/: the Slack messages' templates, not GitLab's
            continue
        (templates / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (templates / "child-plan.md.j2").write_text("{{ marker }}\n{{ child.nonexistent.field }}\n", encoding="utf-8")
    cfg = team_config()
    assert check_templates(cfg, TemplateRenderer([ROOT / "issue_templates"])) == []
    problems = check_templates(cfg, TemplateRenderer([templates]))
    assert len(problems) == 1 and "rendering a sample incident failed" in problems[0]


def test_a_team_project_outside_the_incident_scope_still_receives_its_child(sim, cfg):
    """The incident scope says where incidents live; the team projects, where children go: two remits."""
    from bot.gitlab.remit import Remit

    w = world(sim, cfg.model_copy(update={"scope": ["acme"]}))
    pid = w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident(*S1)
    reconcile(w, iid, remit=Remit.for_config(w.cfg))
    [child] = sim.state.issues(pid)
    assert child["confidential"] and "Audience list attached" in child["description"]


def test_the_team_childs_description_reads_as_gitlab_renders_it(w, sim):
    from tests.security.gitlab_render import mentions, read, references

    w.team_project(TEAM, templates={NAME: TEMPLATE})
    iid = w.incident(*S1, title="Exposed @all ~bug #3 /close")
    reconcile(w, iid)
    [child] = team_children(w)
    _, text, html = read(child["description"])
    assert "<h2>Email request</h2>" in html  # the team's text as the team wrote it
    assert "Plain text only" in text
    # References: the way back to the incident, across projects; no label, no #3 from the incident's title.
    refs = [r for kind, r in references(child["description"]) if kind == "issue"]
    assert f"acme/security-incidents#{iid}" in refs and "#3" not in refs
    assert not [r for kind, r in references(child["description"]) if kind == "label"]
    assert set(mentions(child["description"])) <= configured_users(w.cfg)


def test_an_offline_plan_says_where_the_child_will_be_opened(capsys, cfg_path):
    from bot.commands.cli import main

    assert main(["plan", "--config", str(cfg_path), "--payload", str(ROOT / "examples/payloads/s1-incident.json")]) == 0
    out = capsys.readouterr().out
    assert (
        "create confidential child issue 'Incident response customer email for security incident "
        "acme/security-incidents#12' in marketing/programs from its template 'Email-Request-mpm'" in out
    )


def test_an_oversized_template_falls_back(w, sim):
    w.team_project(TEAM, templates={NAME: "x\n" * 60_000})
    iid = w.incident(*S1)
    reconcile(w, iid)
    assert team_children(w) == []
    note = next(n["body"] for n in w.bot_notes(iid) if "fallback:comms-email" in bodies.logged_keys(n["body"]))
    assert "longer than 100\\,000 characters" in note  # as written, the comma escaped


def test_check_config_live_judges_the_bots_access_as_gitlab_rules_it(capsys, monkeypatch, w, sim, cfg_path):
    """GitLab 17+ lets Guests in both projects link issues (gitlabhq doc/user/project/issues/related_issues.md;
    the simulated GitLab answers as GitLab 18); reading confidential incidents and internal notes and
    labelling or assigning existing issues still take Reporter. One line per project, what the level permits."""
    from bot.commands.checks import link_level, permits

    w.team_project(TEAM, templates={NAME: TEMPLATE})
    w.team_project("marketing/ops")
    sim.state.add_member(w.project, w.cfg.bot.username, 10)  # the bot only a Guest where incidents live
    code, _, err = live(capsys, monkeypatch, sim, cfg_path, "--project", w.project)
    assert code == 2
    line = next(x for x in err.splitlines() if x.startswith(f"access[{w.project}]"))
    assert line.startswith(f"access[{w.project}] (incidents): Guest (10): create issues: yes; comment: yes; "
                           "link issues: yes; read confidential issues and internal notes: no; ")
    assert "linking needs Guest in both projects on GitLab 18" in line
    assert line.endswith("not enough to read confidential issues and internal notes, label and assign existing issues")
    # Before GitLab 17, linking took Reporter in both projects.
    assert (link_level(16), link_level(None), link_level(17)) == (20, 20, 10)
    assert permits(10, 16)["link issues"] is False and permits(10, 17)["link issues"] is True
