"""GitLab behaviours the bot relies on, each modelled in the simulator from GitLab's own source (named in
the test): where a test passes on the simulator, it passes on GitLab for the same reason."""

from __future__ import annotations

import gitlab
import pytest
from gitlab.v4.objects import Project

from bot.simgitlab import SimulatedGitLab

FREE = "sec/incidents"  # seeded by conftest.sim: bot (Maintainer), alice/bob (Developers), gus (Guest)


def _issue(sim: SimulatedGitLab, username: str, iid: int):  # type: ignore[no-untyped-def]
    return sim.client(username).projects.get(FREE, lazy=True).issues.get(iid, lazy=True)


def _discussion_of(issue, note_id: int):  # type: ignore[no-untyped-def]
    return next(d for d in issue.discussions.list(get_all=True) if d.attributes["notes"][0]["id"] == note_id)


# ----------------------------------------------------------------------- internal threads and replies


def test_starting_a_discussion_takes_no_internal_parameter(project: Project) -> None:
    """gitlabhq lib/api/discussions.rb: ``POST :noteable_id/discussions`` declares ``body``, ``created_at``
    and ``position`` and passes only those to ``create_note``; ``internal`` is read by the Notes API alone
    (lib/api/notes.rb). A thread started with ``internal: true`` is public."""
    issue = project.issues.create({"title": "t"})
    thread = issue.discussions.create({"body": "meant to be internal", "internal": True, "confidential": True})
    assert thread.attributes["notes"][0]["internal"] is False
    assert issue.notes.create({"body": "internal", "internal": True}).internal is True


def test_a_reply_takes_its_threads_confidentiality_whatever_it_asks(sim: SimulatedGitLab, project: Project) -> None:
    """gitlabhq app/services/notes/build_service.rb, ``new_note``: with a discussion to reply to,
    ``note.confidential = parent_confidential``; the request's own flag counts only for a new comment.
    Replying to an individual note turns it into a thread (``convert_to_discussion!``)."""
    issue = project.issues.create({"title": "t"})
    secret = issue.notes.create({"body": "internal comment", "internal": True})
    secret_thread = _discussion_of(issue, secret.id)
    reply = secret_thread.notes.create({"body": "reply, asking for nothing"})
    assert reply.internal is True and issue.discussions.get(secret_thread.id).individual_note is False

    public = issue.discussions.create({"body": "public thread"})
    asked = public.notes.create({"body": "reply, asking to be internal", "internal": True})
    assert asked.internal is False
    # Seeded replies follow the same rule.
    seeded = sim.state.add_note(FREE, issue.iid, "seeded reply", author="alice", reply_to=secret.id)
    assert seeded["internal"] is True


def test_only_reporters_and_up_can_make_a_comment_internal(sim: SimulatedGitLab, project: Project) -> None:
    """gitlabhq app/services/notes/build_service.rb: ``can_set_confidential`` is ``mark_note_as_internal``,
    which app/policies/note_policy.rb enables from the Reporter role (``can_read_internal_note``); a Guest's
    ``internal: true`` is silently dropped and the comment is public."""
    issue = project.issues.create({"title": "t"})
    by_guest = _issue(sim, "gus", issue.iid).notes.create({"body": "guest asks internal", "internal": True})
    by_developer = _issue(sim, "alice", issue.iid).notes.create({"body": "developer", "internal": True})
    assert (by_guest.internal, by_developer.internal) == (False, True)


# ------------------------------------------------------------------------- who may tick a comment's boxes


def test_only_a_comments_author_and_maintainers_can_edit_it_task_list_included(
    sim: SimulatedGitLab, project: Project
) -> None:
    """A comment's task list is part of its body: ticking a box updates the note (the UI's toggle goes
    through ``Projects::NotesController#update``, ``before_action :authorize_admin_note!``; the API through
    lib/api/helpers/notes_helpers.rb ``update_note``, ``authorize! :admin_note, note``). app/policies/
    note_policy.rb enables ``admin_note`` for the author; app/policies/project_policy.rb enables it for
    ``maintainer_access``. A Developer cannot tick the bot's checklist."""
    sim.state.add_user("mia")
    sim.state.add_member(FREE, "mia", 40)
    issue = project.issues.create({"title": "t"})
    checklist = issue.notes.create({"body": "- [ ] notify\n- [ ] publish"})
    ticked = "- [x] notify\n- [ ] publish"
    for developer_or_guest in ("alice", "gus"):
        with pytest.raises(gitlab.GitlabUpdateError) as refused:
            _issue(sim, developer_or_guest, issue.iid).notes.update(checklist.id, {"body": ticked})
        assert refused.value.response_code == 403
    assert _issue(sim, "mia", issue.iid).notes.update(checklist.id, {"body": ticked})["body"] == ticked
    own = _issue(sim, "alice", issue.iid).notes.create({"body": "- [ ] mine"})
    assert _issue(sim, "alice", issue.iid).notes.update(own.id, {"body": "- [x] mine"})["body"] == "- [x] mine"


# ------------------------------------------------------------------------------------------- links


def test_guests_in_both_projects_can_link_issues(sim: SimulatedGitLab, project: Project) -> None:
    """GitLab 17.0 lowered linking issues from Reporter to Guest: gitlabhq doc/user/project/issues/
    related_issues.md ("You must have at least the Guest role for both projects"), and
    app/services/issue_links/create_service.rb keeps the targets the user may ``admin_issue_link``, else 403
    "Couldn't link issues. You must have at least the Guest role in both projects." """
    sim.state.add_project("team/programs", members={"gus": 10, "incident-bot": 40})
    sim.state.add_project("team/elsewhere", members={"incident-bot": 40}, visibility="public")
    incident = project.issues.create({"title": "incident"})
    child = sim.client().projects.get("team/programs", lazy=True).issues.create({"title": "child"})
    other = sim.client().projects.get("team/elsewhere", lazy=True).issues.create({"title": "other"})
    as_guest = _issue(sim, "gus", incident.iid)
    as_guest.links.create({"target_project_id": "team/programs", "target_issue_iid": child.iid})
    assert [x.iid for x in incident.links.list(get_all=True)] == [child.iid]
    with pytest.raises(gitlab.GitlabCreateError) as refused:
        as_guest.links.create({"target_project_id": "team/elsewhere", "target_issue_iid": other.iid})
    assert refused.value.response_code == 403  # readable (public), but gus is no member there
    assert refused.value.error_message == (
        "Couldn't link issues. You must have at least the Guest role in both projects."
    )
    link_id = incident.links.list(get_all=True)[0].issue_link_id
    as_guest.links.delete(link_id)  # IssueLinks::DestroyService: admin_issue_link on both ends
    assert incident.links.list(get_all=True) == []
