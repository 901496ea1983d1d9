"""The simulated GitLab creating an issue over the API as GitLab does: the description's quick actions run as the
creator and win over the API's parameters (gitlabhq ``app/services/issues/create_service.rb`` ->
``IssuableBaseService#handle_quick_actions``; ``/assign`` and ``/label`` in
``lib/gitlab/quick_actions/issue_and_merge_request_actions.rb``), and a milestone, due date and weight are kept
(``doc/api/issues.md`` "New issue"; weight is Premium: ``ee/app/services/ee/issuable_base_service.rb``)."""

from __future__ import annotations

from bot.simgitlab import SimulatedGitLab


def setup(sim: SimulatedGitLab, tier: str = "free") -> int:
    for name in ("bot-user", "dri", "dev"):
        sim.state.add_user(name)
    pid = int(sim.state.add_project("team/p", {"bot-user": 20, "dri": 30, "dev": 30}, tier=tier)["id"])
    sim.state.add_label(pid, "security-incident")
    return pid


def test_a_descriptions_quick_actions_run_as_the_creator_over_the_apis_parameters(sim):
    pid = setup(sim)
    dri = sim.state.find_user("dri").id
    issue = sim.client("bot-user").projects.get(pid, lazy=True).issues.create(
        {"title": "t", "description": "Intro\n\n/assign me\n/label ~security-incident ~missing", "assignee_ids": [dri],
         "labels": "api-label", "confidential": True}
    )
    assert [a["username"] for a in issue.assignees] == ["bot-user"]  # /assign me: the creator, not the API's
    assert sorted(issue.labels) == ["api-label", "security-incident"]  # /label applies labels that exist
    assert "/assign" not in issue.description and "/label" not in issue.description


def test_milestone_due_date_and_weight_are_kept(sim):
    pid = setup(sim, tier="premium")
    milestone = sim.state.add_milestone(pid, "Q4 launch")
    sim.state.add_milestone(pid, "Old", state="closed")
    project = sim.client("bot-user").projects.get(pid, lazy=True)
    assert [m.title for m in project.milestones.list(title="Q4 launch", state="active")] == ["Q4 launch"]
    assert project.milestones.list(title="Old", state="active") == []
    issue = project.issues.create(
        {"title": "t", "milestone_id": milestone["id"], "due_date": "2026-12-24", "weight": 0}
    )
    assert (issue.milestone["title"], issue.due_date, issue.weight) == ("Q4 launch", "2026-12-24", 0)


def test_free_ignores_the_weight_and_a_milestone_of_another_project(sim):
    pid = setup(sim)
    other = int(sim.state.add_project("other/p", {"bot-user": 20})["id"])
    foreign = sim.state.add_milestone(other, "Theirs")
    issue = sim.client("bot-user").projects.get(pid, lazy=True).issues.create(
        {"title": "t", "milestone_id": foreign["id"], "weight": 3}
    )
    assert issue.milestone is None and "weight" not in issue.attributes
