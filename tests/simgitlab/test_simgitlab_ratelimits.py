"""The simulator's note and issue creation limits behave as GitLab's.

Source: gitlabhq ``lib/gitlab/application_rate_limiter.rb`` (``notes_create``/``issues_create``: a threshold per
``interval: 1.minute``, fixed windows ``Time.now.to_i.divmod(interval)``, refused when the count is above the
threshold), ``lib/api/helpers/rate_limiter.rb`` (the 429 body ``{"message": {"error": "This endpoint has been
requested too many times. Try again later."}}``), ``lib/api/notes.rb`` (``check_rate_limit! :notes_create, scope:
current_user``), ``app/services/issues/create_service.rb`` (``scope: [:project, :current_user, ...]``),
``app/services/concerns/rate_limited_service.rb`` (``headers`` is ``{}``: no Retry-After, no RateLimit-*), and
``lib/api/discussions.rb`` (threads and replies are not checked).
"""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simgitlab.ratelimits import THROTTLED_MESSAGE

FREE, PREMIUM = "sec/incidents", "sec/premium"  # seeded by conftest.sim


def _api(sim: SimulatedGitLab, path: str, json: dict[str, object], user: str | None = None) -> requests.Response:
    token = sim.token_for(user) if user else sim.token
    return requests.post(f"{sim.url}/api/v4{path}", json=json, headers={"PRIVATE-TOKEN": token}, timeout=5)


def _issue(sim: SimulatedGitLab) -> int:
    return int(sim.state.create_issue(FREE, "Incident", author="alice")["iid"])


def test_the_note_over_the_limit_gets_a_bare_429_until_the_minute_turns(
    sim: SimulatedGitLab, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC))
    sim.state.rate_limits.configure(notes_create=3)
    iid = _issue(sim)
    path = f"/projects/{FREE.replace('/', '%2F')}/issues/{iid}/notes"
    answers = [_api(sim, path, {"body": f"note {n}"}) for n in range(5)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429, 429]
    refused = answers[3]
    assert refused.json() == {"message": {"error": THROTTLED_MESSAGE}}
    assert not [h for h in refused.headers if h.lower() == "retry-after" or h.lower().startswith("ratelimit-")]
    assert any(h.lower().startswith("ratelimit-") for h in answers[0].headers)  # the general limit's information
    assert sim.state.rate_limits.refused == {"notes_create": 2}

    clock.set(datetime(2026, 3, 2, 9, 0, 59, tzinfo=UTC))  # same window (aligned to Unix minutes)
    assert _api(sim, path, {"body": "still"}).status_code == 429
    clock.set(datetime(2026, 3, 2, 9, 1, 0, tzinfo=UTC))
    assert _api(sim, path, {"body": "next minute"}).status_code == 201
    assert len(sim.state.notes_of(sim.state.find_issue(FREE, iid))) >= 4


def test_the_note_limit_is_per_user_and_spares_threads_and_the_allowlist(sim: SimulatedGitLab) -> None:
    sim.state.rate_limits.configure(notes_create=1)
    iid = _issue(sim)
    base = f"/projects/{FREE.replace('/', '%2F')}/issues/{iid}"
    assert _api(sim, f"{base}/notes", {"body": "one"}).status_code == 201
    assert _api(sim, f"{base}/notes", {"body": "two"}).status_code == 429
    assert _api(sim, f"{base}/notes", {"body": "alice's"}, user="alice").status_code == 201  # her own budget
    thread = _api(sim, f"{base}/discussions", {"body": "a thread"})
    assert thread.status_code == 201
    reply = _api(sim, f"{base}/discussions/{thread.json()['id']}/notes", {"body": "a reply"})
    assert reply.status_code == 201
    sim.state.rate_limits.configure(allowlist=["Incident-Bot"])  # notes_create_limit_allowlist, any case
    assert _api(sim, f"{base}/notes", {"body": "allowed"}).status_code == 201


def test_the_issue_limit_is_per_project_and_user(sim: SimulatedGitLab) -> None:
    sim.state.rate_limits.configure(issues_create=2)
    free, premium = FREE.replace("/", "%2F"), PREMIUM.replace("/", "%2F")
    codes = [_api(sim, f"/projects/{free}/issues", {"title": f"child {n}"}).status_code for n in range(3)]
    assert codes == [201, 201, 429]
    assert _api(sim, f"/projects/{premium}/issues", {"title": "other project"}).status_code == 201
    refused = _api(sim, f"/projects/{free}/issues", {"title": "again"})
    assert refused.status_code == 429
    assert refused.json() == {"message": {"error": THROTTLED_MESSAGE}}
    assert "Retry-After" not in refused.headers
    assert sum(1 for i in sim.state.issues_by_id.values() if i.title.startswith("child")) == 2


def test_a_limit_of_zero_is_off(sim: SimulatedGitLab) -> None:
    sim.state.rate_limits.configure(notes_create=0)
    iid = _issue(sim)
    path = f"/projects/{FREE.replace('/', '%2F')}/issues/{iid}/notes"
    assert {_api(sim, path, {"body": str(n)}).status_code for n in range(5)} == {201}
