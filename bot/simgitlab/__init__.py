"""A stateful simulated GitLab (a REST v4 subset) served over real HTTP for tests, benchmarks and the demo.

    with SimulatedGitLab(now=ManualClock()) as sim:
        sim.state.add_user("alice")
        sim.state.add_project("sec/incidents", members={"incident-bot": 40, "alice": 30})
        gl = gitlab.Gitlab(sim.url, private_token=sim.token)   # the bot user's token
        ...
        assert sim.hazards_except(allowed_mentions=["alice"]) == []

Pieces: ``state`` (the model and its seeding methods), ``app``/``endpoints`` (routes),
``server`` (sockets, request log, faults, crashes), ``hooks`` (webhook payloads) and
``delivery`` (webhooks for changes made through the API).
"""

from .clock import ManualClock
from .hooks import issue_hook, note_hook
from .records import ApiError
from .server import RecordedRequest, SimulatedGitLab
from .state import GitLabState

__all__ = [
    "ApiError",
    "GitLabState",
    "ManualClock",
    "RecordedRequest",
    "SimulatedGitLab",
    "issue_hook",
    "note_hook",
]
