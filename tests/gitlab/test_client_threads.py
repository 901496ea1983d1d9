"""The client's threads: a comment that starts a discussion, and replies in it (GitLab's Discussions API)."""

from __future__ import annotations

import pytest

from bot.commands.world import World
from bot.core.model import IncidentRef
from bot.gitlab.errors import GitLabCallError


def test_a_thread_and_its_replies_are_one_discussion(w: World) -> None:
    iid = w.incident("severity::3")
    ref = IncidentRef(w.project, iid)
    r = w.reconciler()
    try:
        client = r.client
        discussion, first = client.start_thread(ref, "status log")
        reply = client.reply_in_thread(ref, discussion, "second entry")
        # GitLab's Discussions API cannot start an internal thread (lib/api/discussions.rb takes no
        # ``internal``): the client posts an internal comment with the Notes API and replies into it.
        secret_thread, secret = client.start_thread(ref, "internal thread", internal=True)
        secret_reply = client.reply_in_thread(ref, secret_thread, "internal reply")
        with pytest.raises(GitLabCallError):
            client.reply_in_thread(ref, "0" * 40, "nowhere")
    finally:
        r.close()
    assert (first.body, reply.body) == ("status log", "second entry")
    assert (secret.internal, secret_reply.internal) == (True, True)
    threads = w.sim.client().projects.get(w.project).issues.get(iid).discussions.list(get_all=True)
    bodies = [[n["body"] for n in d.attributes["notes"]] for d in threads if not d.individual_note]
    assert bodies == [["status log", "second entry"], ["internal thread", "internal reply"]]
    internal = [n["internal"] for d in threads for n in d.attributes["notes"] if "internal" in n["body"]]
    assert internal == [True, True]
