"""The status.io adapter against the simulated status.io over HTTP.

Behaviours of status.io modelled by the simulator, from its own clients (statusio/statusio-go ``incidents.go``,
``incidents_types.go``, ``statusio.go``; statusio/statusio-python ``statusio/api.py``): the ``x-api-id`` and
``x-api-key`` headers, ``incident/create`` answering the new id in ``result``, ``incident/list/{id}`` with
``active_incidents``/``resolved_incidents``, and ``status.error`` (``"yes"`` with ``status.message``) inside an
HTTP 200, which the clients treat as a failure after a 2xx.
"""

from __future__ import annotations

from bot.integrations.statuspage.config import StatusIoSettings, StatusPagePolicy
from bot.integrations.statuspage.plan import Recorded
from bot.integrations.statuspage.result import Ambiguous, Refused, Sent, Unavailable
from bot.integrations.statuspage.statusio import StatusIo
from bot.simstatus import SimulatedStatusIo
from tests.statuspage.conftest import KEY, PROJECT, TITLE, action

FIRST = "We are investigating a security issue affecting sign-in. Next update within 60 minutes."
SECOND = "A fix has been deployed. We continue to monitor."
LAST = "This incident is resolved. No customer action is required."
PAIR = "5f0c1a2b3c4d5e6f7a8b9c0d-5f0c1a2b3c4d5e6f7a8b9c0e"


def details(sim: SimulatedStatusIo) -> list[str]:
    return [m["details"] for i in sim.incidents.values() for m in i["messages"]]


def test_first_publish_creates_one_incident_with_the_draft_text(statusio: StatusIo,
                                                                 statusio_sim: SimulatedStatusIo) -> None:
    result = statusio.publish(action(FIRST))
    assert isinstance(result, Sent) and not result.found_again
    (incident,) = statusio_sim.incidents.values()
    assert result.remote_id == incident["_id"]
    assert incident["name"] == f"Security incident update (ref {KEY})"
    assert details(statusio_sim) == [FIRST]
    assert statusio_sim.component_status == {PAIR: 600}  # marked "security event"
    # one look for the name (a lost earlier answer), one create
    assert [(r.method, r.path) for r in statusio_sim.requests] == [
        ("GET", f"incident/list/{statusio_sim.statuspage_id}"), ("POST", "incident/create")]
    assert result.calls == 2


def test_update_then_resolve_puts_components_back_to_operational(statusio: StatusIo,
                                                                 statusio_sim: SimulatedStatusIo) -> None:
    created = statusio.publish(action(FIRST))
    assert isinstance(created, Sent)
    updated = statusio.publish(action(SECOND, "bbbb2222", recorded=Recorded(created.remote_id, "aaaa1111")))
    resolved = statusio.publish(action(LAST, "cccc3333", all_clear=True,
                                       recorded=Recorded(created.remote_id, "bbbb2222")))
    assert updated == Sent(created.remote_id, calls=1) and resolved == Sent(created.remote_id, calls=1)
    assert details(statusio_sim) == [FIRST, SECOND, LAST]
    (incident,) = statusio_sim.incidents.values()
    assert incident["resolved"] and statusio_sim.component_status == {PAIR: 100}


def test_duplicate_deliveries_of_the_same_publish_leave_one_incident_and_one_message(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    results = [statusio.publish(action(FIRST)) for _ in range(3)]
    assert [type(r) for r in results] == [Sent, Sent, Sent]
    assert [r.found_again for r in results if isinstance(r, Sent)] == [False, True, True]
    assert len(statusio_sim.incidents) == 1 and details(statusio_sim) == [FIRST]
    assert len([r for r in statusio_sim.requests if r.path == "incident/create"]) == 1


def test_a_lost_answer_to_create_is_found_again_by_name_not_created_twice(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    statusio_sim.lose_answers("create")
    first = statusio.publish(action(FIRST))
    assert isinstance(first, Unavailable)  # the bot cannot know it landed: the outbox keeps the intent
    again = statusio.publish(action(FIRST), resumed=True)
    (incident,) = statusio_sim.incidents.values()
    assert again == Sent(incident["_id"], found_again=True, calls=1)
    assert details(statusio_sim) == [FIRST]


def test_a_lost_answer_to_an_update_is_not_posted_twice(statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    created = statusio.publish(action(FIRST))
    assert isinstance(created, Sent)
    update = action(SECOND, "bbbb2222", recorded=Recorded(created.remote_id, "aaaa1111"))
    statusio_sim.lose_answers("update")
    assert isinstance(statusio.publish(update), Unavailable)
    assert statusio.publish(update, resumed=True) == Sent(created.remote_id, found_again=True, calls=1)
    assert details(statusio_sim) == [FIRST, SECOND]


def test_an_empty_database_finds_the_incident_and_posts_only_the_new_text(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    assert isinstance(statusio.publish(action(FIRST)), Sent)
    # The bot's database is gone: nothing recorded, so the plan says "create" again.
    result = statusio.publish(action(SECOND, "bbbb2222", recorded=Recorded()))
    (incident,) = statusio_sim.incidents.values()
    assert result == Sent(incident["_id"], calls=2)
    assert details(statusio_sim) == [FIRST, SECOND]


def test_two_incidents_with_the_bot_s_name_are_ambiguous_and_nothing_is_sent(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    name = f"Security incident update (ref {KEY})"
    first, second = statusio_sim.add_incident(name), statusio_sim.add_incident(name, resolved=True)
    result = statusio.publish(action(FIRST))
    assert isinstance(result, Ambiguous)
    assert result.reason == (f"status.io has 2 incidents named {name!r} ({first}, {second}); remove the extra ones, "
                             "then publish again")
    assert statusio_sim.writes() == []


def test_an_in_band_error_is_a_failure_with_its_message(statusio_sim: SimulatedStatusIo,
                                                        statusio_policy: StatusPagePolicy) -> None:
    # A component id the page does not have: status.io answers HTTP 200 with status.error "yes".
    wrong = StatusPagePolicy(**{**statusio_policy.__dict__, "components": ("000000000000000000000bad",)})
    adapter = StatusIo(StatusIoSettings(statusio_sim.url, statusio_sim.api_id, statusio_sim.api_key,
                                        statusio_sim.statuspage_id), wrong, timeout=5)
    result = adapter.publish(action(FIRST))
    assert result == Refused("status.io incident/create: Invalid component-container combination: "
                             "000000000000000000000bad-5f0c1a2b3c4d5e6f7a8b9c0e", calls=2)
    assert statusio_sim.requests[-1].status == 200 and statusio_sim.incidents == {}


def test_a_wrong_key_is_refused_and_the_key_never_appears_in_the_reason(statusio_sim: SimulatedStatusIo,
                                                                        statusio_policy: StatusPagePolicy) -> None:
    key = "wrong-statusio-key-777"
    adapter = StatusIo(StatusIoSettings(statusio_sim.url, statusio_sim.api_id, key, statusio_sim.statuspage_id),
                       statusio_policy, timeout=5)
    result = adapter.publish(action(FIRST))
    assert result == Refused("status.io incident/list: Unauthorized: check the API ID and API key", calls=1)
    assert key not in repr(result)


def test_an_unreachable_provider_is_unavailable_without_the_key(statusio_policy: StatusPagePolicy) -> None:
    adapter = StatusIo(StatusIoSettings("http://127.0.0.1:9/v2/", "id-1", "unreachable-key-123", "sp1"),
                       statusio_policy, timeout=2)
    result = adapter.publish(action(FIRST))
    assert isinstance(result, Unavailable) and result.reason.startswith("status.io GET v2/incident/list/sp1: ")
    assert "unreachable-key-123" not in result.reason


def test_a_confidential_incident_s_title_and_path_never_reach_the_provider(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    statusio.publish(action(FIRST))
    statusio.publish(action(LAST, "cccc3333", all_clear=True, recorded=Recorded()))
    sent = statusio_sim.sent_text() + " ".join(r.path for r in statusio_sim.requests)
    assert FIRST in sent and LAST in sent
    for secret in (TITLE, "token leak", PROJECT, "security/", "#42", "gitlab"):
        assert secret not in sent


def test_the_live_check_names_a_component_and_a_container_the_page_lacks(
        statusio_sim: SimulatedStatusIo, statusio_policy: StatusPagePolicy) -> None:
    settings = StatusIoSettings(statusio_sim.url, statusio_sim.api_id, statusio_sim.api_key,
                                statusio_sim.statuspage_id)
    assert StatusIo(settings, statusio_policy).check() == []
    wrong = StatusPagePolicy(**{**statusio_policy.__dict__, "components": ("cbad",), "containers": ("kbad",)})
    assert StatusIo(settings, wrong).check() == [
        f"status_page.components: status.io page {statusio_sim.statuspage_id} has no component cbad",
        f"status_page.containers: status.io page {statusio_sim.statuspage_id} has no container kbad"]


def test_a_slow_provider_is_unavailable_and_nothing_was_applied(statusio_sim: SimulatedStatusIo,
                                                                statusio_policy: StatusPagePolicy) -> None:
    adapter = StatusIo(StatusIoSettings(statusio_sim.url, statusio_sim.api_id, statusio_sim.api_key,
                                        statusio_sim.statuspage_id), statusio_policy, timeout=0.2)
    statusio_sim.latency = 1.0
    result = adapter.publish(action(FIRST))
    assert result == Unavailable(f"status.io GET v2/incident/list/{statusio_sim.statuspage_id}: no answer "
                                 "within 0.2s", calls=1)
    assert statusio_sim.incidents == {}


def test_a_resolved_incident_takes_no_later_draft(statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    created = statusio.publish(action(FIRST))
    assert isinstance(created, Sent)
    statusio.publish(action(LAST, "cccc3333", all_clear=True, recorded=Recorded(created.remote_id, "aaaa1111")))
    # The same all-clear publish again after the database was lost: found, nothing posted.
    assert statusio.publish(action(LAST, "cccc3333", all_clear=True)) == Sent(created.remote_id, found_again=True,
                                                                              calls=1)
    assert statusio.publish(action("Later.", "dddd4444", all_clear=True)) == Refused(
        f"status.io incident {created.remote_id} is already resolved; a later draft cannot be posted to it", calls=1)
    assert details(statusio_sim) == [FIRST, LAST]


def test_an_incident_renamed_by_a_person_is_still_updated_by_its_recorded_id(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    created = statusio.publish(action(FIRST))
    assert isinstance(created, Sent)
    statusio_sim.incidents[created.remote_id]["name"] = "Sign-in security issue"
    update = action(SECOND, "bbbb2222", recorded=Recorded(created.remote_id, "aaaa1111"))
    assert statusio.publish(update, resumed=True) == Sent(created.remote_id, calls=2)
    assert details(statusio_sim) == [FIRST, SECOND]


def test_an_update_with_nothing_to_find_and_no_recorded_id_sends_nothing(
        statusio: StatusIo, statusio_sim: SimulatedStatusIo) -> None:
    result = statusio.publish(action(SECOND, "bbbb2222", recorded=Recorded(None, "aaaa1111")))
    assert result == Refused(f"status.io has no incident named 'Security incident update (ref {KEY})' to update",
                             calls=1)
    assert statusio_sim.writes() == []
