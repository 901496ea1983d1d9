"""The Atlassian Statuspage adapter against the simulated Statuspage over HTTP.

Statuspage behaviours the simulator models (developer.statuspage.io "Incidents", as in the generated clients'
``IncidentsApi`` docs): ``Authorization: OAuth <key>``; incidents created with ``{"incident": {...}}`` and
``metadata`` whose "top level values must be objects"; the list's ``q`` searching "name, status,
postmortem_body, and incident_updates"; and its rate limit of one request a second per key, answered 420 (429
since the announced change) with ``Retry-After`` (Atlassian Community, "Upcoming rate limiting changes to
Statuspage REST API").
"""

from __future__ import annotations

import itertools

import pytest

from bot.integrations.statuspage.atlassian import Pacer, Statuspage
from bot.integrations.statuspage.config import StatusPagePolicy, StatuspageSettings
from bot.integrations.statuspage.plan import Recorded
from bot.integrations.statuspage.result import Ambiguous, Refused, Sent, Unavailable
from bot.simstatus import SimulatedStatuspage
from tests.statuspage.conftest import KEY, PROJECT, TITLE, FakeClock, action

FIRST = "We are investigating a security issue affecting sign-in."
SECOND = "A fix has been deployed. We continue to monitor."
LAST = "This incident is resolved."


def bodies(sim: SimulatedStatuspage) -> list[str]:
    return [u["body"] for i in sim.incidents.values() for u in reversed(i["incident_updates"])]


def test_create_update_resolve(statuspage: Statuspage, statuspage_sim: SimulatedStatuspage) -> None:
    created = statuspage.publish(action(FIRST))
    assert isinstance(created, Sent) and created.calls == 3  # unresolved, search by key, create
    assert statuspage_sim.components == {"cmpweb000001": "partial_outage", "cmpapi000002": "partial_outage"}
    updated = statuspage.publish(action(SECOND, "bbbb2222", recorded=Recorded(created.remote_id, "aaaa1111")))
    resolved = statuspage.publish(action(LAST, "cccc3333", all_clear=True,
                                         recorded=Recorded(created.remote_id, "bbbb2222")))
    assert updated == resolved == Sent(created.remote_id, calls=1)
    (incident,) = statuspage_sim.incidents.values()
    assert incident["name"] == f"Security incident update (ref {KEY})"
    assert incident["status"] == "resolved" and bodies(statuspage_sim) == [FIRST, SECOND, LAST]
    assert statuspage_sim.components == {"cmpweb000001": "operational", "cmpapi000002": "operational"}


def test_metadata_holds_only_the_opaque_key(statuspage: Statuspage, statuspage_sim: SimulatedStatuspage) -> None:
    statuspage.publish(action(FIRST))
    (incident,) = statuspage_sim.incidents.values()
    assert incident["metadata"] == {"incident_bot": {"key": KEY}}


def test_a_lost_answer_is_found_again_by_metadata(statuspage: Statuspage,
                                                  statuspage_sim: SimulatedStatuspage) -> None:
    statuspage_sim.lose_answers("create")
    assert isinstance(statuspage.publish(action(FIRST)), Unavailable)
    again = statuspage.publish(action(FIRST), resumed=True)
    (incident,) = statuspage_sim.incidents.values()
    assert again == Sent(incident["id"], found_again=True, calls=1)
    assert bodies(statuspage_sim) == [FIRST]


def test_an_incident_renamed_by_hand_is_still_found_by_its_metadata(statuspage: Statuspage,
                                                                    statuspage_sim: SimulatedStatuspage) -> None:
    created = statuspage.publish(action(FIRST))
    assert isinstance(created, Sent)
    statuspage_sim.incidents[created.remote_id]["name"] = "Sign-in security issue"
    result = statuspage.publish(action(SECOND, "bbbb2222", recorded=Recorded()))  # an empty database
    assert result == Sent(created.remote_id, calls=2) and len(statuspage_sim.incidents) == 1
    assert bodies(statuspage_sim) == [FIRST, SECOND]


def test_a_resolved_incident_is_found_by_the_key_search(statuspage: Statuspage,
                                                        statuspage_sim: SimulatedStatuspage) -> None:
    created = statuspage.publish(action(FIRST))
    assert isinstance(created, Sent)
    statuspage.publish(action(LAST, "cccc3333", all_clear=True, recorded=Recorded(created.remote_id, "aaaa1111")))
    # Database lost after the resolution; the same all-clear publish is delivered again.
    again = statuspage.publish(action(LAST, "cccc3333", all_clear=True, recorded=Recorded()))
    assert again == Sent(created.remote_id, found_again=True, calls=2)
    later = statuspage.publish(action("One more thing.", "dddd4444", all_clear=True, recorded=Recorded()))
    assert later == Refused(f"Statuspage incident {created.remote_id} is already resolved; a later draft cannot be "
                            "posted to it", calls=2)
    assert bodies(statuspage_sim) == [FIRST, LAST]


def test_an_incident_that_only_names_the_key_is_not_taken_for_the_bot_s(statuspage: Statuspage,
                                                                       statuspage_sim: SimulatedStatuspage) -> None:
    statuspage_sim.add_incident(f"Copy of (ref {KEY})")  # no metadata: not the bot's
    result = statuspage.publish(action(FIRST))
    assert isinstance(result, Sent) and not result.found_again and len(statuspage_sim.incidents) == 2


def test_two_incidents_with_the_bot_s_key_are_ambiguous(statuspage: Statuspage,
                                                        statuspage_sim: SimulatedStatuspage) -> None:
    for _ in range(2):
        statuspage_sim.add_incident(f"Security incident update (ref {KEY})", metadata={"incident_bot": {"key": KEY}})
    result = statuspage.publish(action(FIRST))
    assert isinstance(result, Ambiguous) and result.reason.startswith(f"Statuspage has 2 incidents with the bot's "
                                                                      f"key {KEY} (")
    assert statuspage_sim.writes() == []


def test_requests_are_paced_to_one_a_second_per_key(statuspage: Statuspage, statuspage_sim: SimulatedStatuspage,
                                                    clock: FakeClock) -> None:
    created = statuspage.publish(action(FIRST))
    assert isinstance(created, Sent)
    statuspage.publish(action(SECOND, "bbbb2222", recorded=Recorded(created.remote_id, "aaaa1111")))
    assert [r.status for r in statuspage_sim.requests] == [200, 200, 201, 200]  # never 420/429
    times = [r.time for r in statuspage_sim.requests]
    assert [b - a for a, b in itertools.pairwise(times)] == [1.0, 1.0, 1.0]
    assert clock.slept == [1.0, 1.0, 1.0]  # waited on the injected clock, not in real time


def test_two_adapters_with_one_key_share_the_pace(statuspage_sim: SimulatedStatuspage,
                                                  statuspage_policy: StatusPagePolicy, clock: FakeClock) -> None:
    settings = StatuspageSettings(statuspage_sim.url, statuspage_sim.api_key, statuspage_sim.page_id)
    one, two = (Statuspage(settings, statuspage_policy, pacer=Pacer(settings.api_key, clock=clock, sleep=clock.sleep))
                for _ in range(2))
    assert one.check() == [] and two.check() == []
    assert [r.status for r in statuspage_sim.requests] == [200, 200] and clock.slept == [1.0]


@pytest.mark.parametrize("code", [420, 429])
def test_beyond_the_rate_limit_is_unavailable_with_retry_after(statuspage_sim: SimulatedStatuspage,
                                                               statuspage_policy: StatusPagePolicy,
                                                               clock: FakeClock, code: int) -> None:
    statuspage_sim.rate_status = code
    settings = StatuspageSettings(statuspage_sim.url, statuspage_sim.api_key, statuspage_sim.page_id)
    unpaced = Statuspage(settings, statuspage_policy, pacer=Pacer(settings.api_key, interval=0, clock=clock,
                                                                  sleep=clock.sleep))
    result = unpaced.publish(action(FIRST))
    assert result == Unavailable(f"Statuspage GET v1/pages/{statuspage_sim.page_id}/incidents: rate limited "
                                 f"(HTTP {code})", retry_after=1.0, calls=2)
    assert statuspage_sim.incidents == {}
    # The pacer keeps to Retry-After even with no pace of its own: the retry waits, then is answered.
    clock.slept.clear()
    seen = len(statuspage_sim.requests)
    assert unpaced.check() == []
    assert clock.slept == [1.0] and [r.status for r in statuspage_sim.requests[seen:]] == [200]


def test_a_wrong_key_is_refused_without_the_key(statuspage_sim: SimulatedStatuspage,
                                                statuspage_policy: StatusPagePolicy, clock: FakeClock) -> None:
    key = "wrong-statuspage-key-555"
    adapter = Statuspage(StatuspageSettings(statuspage_sim.url, key, statuspage_sim.page_id), statuspage_policy,
                         pacer=Pacer(key, clock=clock, sleep=clock.sleep))
    result = adapter.publish(action(FIRST))
    assert result == Refused(f"Statuspage GET v1/pages/{statuspage_sim.page_id}/incidents/unresolved: HTTP 401: "
                             "Could not authenticate", calls=1)
    assert key not in repr(result)


def test_a_confidential_incident_s_title_never_reaches_statuspage(statuspage: Statuspage,
                                                                  statuspage_sim: SimulatedStatuspage) -> None:
    statuspage.publish(action(FIRST))
    sent = statuspage_sim.sent_text() + " ".join(f"{r.path} {r.query}" for r in statuspage_sim.requests)
    assert FIRST in sent
    for secret in (TITLE, "token leak", PROJECT, "#42", "gitlab"):
        assert secret not in sent


def test_the_live_check_names_a_missing_component(statuspage_sim: SimulatedStatuspage,
                                                  statuspage_policy: StatusPagePolicy, clock: FakeClock) -> None:
    settings = StatuspageSettings(statuspage_sim.url, statuspage_sim.api_key, statuspage_sim.page_id)
    wrong = StatusPagePolicy(**{**statuspage_policy.__dict__, "components": ("cmpweb000001", "nosuch")})
    adapter = Statuspage(settings, wrong, pacer=Pacer(settings.api_key, clock=clock, sleep=clock.sleep))
    assert adapter.check() == [f"status_page.components: Statuspage page {statuspage_sim.page_id} has no "
                               "component nosuch"]
    assert statuspage_sim.requests[0].query == {"page": "1", "per_page": "100"}


def test_a_long_retry_after_is_not_slept_in_a_worker(statuspage: Statuspage, statuspage_sim: SimulatedStatuspage,
                                                     clock: FakeClock) -> None:
    statuspage.pacer.defer(60)  # as after a 429 with Retry-After: 60 (unpaginated list limits)
    result = statuspage.publish(action(FIRST))
    assert result == Unavailable(f"Statuspage GET v1/pages/{statuspage_sim.page_id}/incidents/unresolved: not sent, "
                                 "the provider's pace allows the next request in 60s", retry_after=60.0)
    assert statuspage_sim.requests == [] and clock.slept == []
    clock.now += 60
    assert isinstance(statuspage.publish(action(FIRST)), Sent)
