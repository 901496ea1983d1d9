"""The client's threads: a comment that starts a discussion, and replies in it (GitLab's Discussions API)."""

from __future__ import annotations

import pytest

from bot.core.model import IncidentRef
from bot.gitlab.errors import GitLabCallError
from bot.simgitlab.world import World


def test_a_thread_and_its_replies_are_one_discussion(w: World) -> None:
    iid = w.incident("severity::3")
    ref = IncidentRef(w.project, iid)
    r = w.reconciler()
    try:
        client = r.client
        discussion, first = client.start_thread(ref, "status log")
        reply = client.reply_in_thread(ref, discussion, "second entry")
        _, secret = client.start_thread(ref, "internal thread", internal=True)
        with pytest.raises(GitLabCallError):
            client.reply_in_thread(ref, "0" * 40, "nowhere")
    finally:
        r.close()
    assert (first.body, reply.body, secret.internal) == ("status log", "second entry", True)
    threads = w.sim.client().projects.get(w.project).issues.get(iid).discussions.list(get_all=True)
    bodies = [[n["body"] for n in d.attributes["notes"]] for d in threads if not d.individual_note]
    assert bodies == [["status log", "second entry"], ["internal thread"]]
