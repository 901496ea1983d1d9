"""The exact HTTP requests ``GitLabClient`` sends through the real python-gitlab, pinned with ``responses``.

Every test runs the client built by ``make_gitlab`` under a ``CallPolicy`` whose clock and sleep are
fake, against a ``RequestsMock`` that fails on an unmatched request and on a registered response that
was never requested. Each method is checked with the project given as a numeric id and as a
``group/project`` path (sent URL-encoded as ``group%2Fproject``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from bot.core.model import IncidentRef, Issue, Note
from bot.gitlab.callpolicy import CallPolicy
from bot.gitlab.client import GitLabClient, UnsafeBody, UserCache
from bot.gitlab.connect import make_gitlab
from bot.gitlab.errors import GitLabCallError, OutcomeUnknown
from bot.gitlab.ports import IssueListing, RemitProject
from tests.gitlab.faketime import FakeTime, no_real_sleep  # noqa: F401  (fixture)

URL = "https://gitlab.test"
API = f"{URL}/api/v4"
TOKEN = "glpat-test-token"
EVENT_UUID = "0a1b2c3d-4e5f-4a6b-8c9d-0e1f2a3b4c5d"
BOT = "incident-bot"
SINCE = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
UUID_HEADER = "X-Gitlab-Event-UUID"

# (project as the caller gives it, as it must appear in the URL path)
PROJECTS = [pytest.param("42", "42", id="numeric-id"), pytest.param("group/project", "group%2Fproject", id="path")]

AUTH = matchers.header_matcher({"PRIVATE-TOKEN": TOKEN})
AUTH_AND_UUID = matchers.header_matcher({"PRIVATE-TOKEN": TOKEN, UUID_HEADER: EVENT_UUID})
PAGE_1 = {"page": "1", "per_page": "100"}


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def policy(ft: FakeTime) -> CallPolicy:
    return CallPolicy(
        clock=ft.clock,
        sleep=ft.sleep,
        wallclock=lambda: 1_900_000_000.0,
        rng=random.Random(7),
        rate_per_minute=10**9,
        burst=1000,
    )


@pytest.fixture
def client(policy: CallPolicy) -> GitLabClient:
    return GitLabClient(lambda: make_gitlab(URL, TOKEN), policy, users=UserCache())


@pytest.fixture
def incident_client(client: GitLabClient) -> GitLabClient:
    """What the reconciler uses while handling one webhook delivery."""
    return client.for_incident("42#7", event_uuid=EVENT_UUID)


def issue_json(iid: int, *, project_id: int = 42, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": 5000 + iid,
        "iid": iid,
        "project_id": project_id,
        "title": f"Issue {iid}",
        "description": "",
        "state": "opened",
        "labels": [],
        "assignees": [],
        "author": {"id": 2, "username": BOT},
        "confidential": False,
        "created_at": "2026-11-28T10:00:00.000Z",
        "updated_at": "2026-11-28T10:00:00.000Z",
        "web_url": f"{URL}/group/project/-/issues/{iid}",
        "references": {"full": f"group/project#{iid}"},
    }
    data.update(extra)
    return data


def note_json(note_id: int, body: str = "hello", *, system: bool = False) -> dict[str, Any]:
    return {
        "id": note_id,
        "body": body,
        "author": {"id": 2, "username": BOT},
        "created_at": "2026-11-28T10:00:00.000Z",
        "system": system,
    }


def sent(rsps: responses.RequestsMock, index: int = 0) -> requests.PreparedRequest:
    request = rsps.calls[index].request
    assert isinstance(request, requests.PreparedRequest)
    return request


def assert_no_uuid_header(rsps: responses.RequestsMock) -> None:
    for call in rsps.calls:
        headers = {k.lower() for k in call.request.headers}
        assert UUID_HEADER.lower() not in headers, f"{call.request.method} {call.request.url} carried the event UUID"


# --------------------------------------------------------------------------- reads


@dataclass
class ReadCase:
    name: str
    call: Callable[[GitLabClient, str], Any]
    path: str  # under /api/v4, "{p}" is the encoded project
    query: dict[str, str]
    reply: Any
    check: Callable[[Any], None]


def _check_issue(result: Any) -> None:
    assert isinstance(result, Issue)
    assert result.ref.iid == 7 and result.id == 5007 and result.project_id == 42
    assert result.author == BOT and result.project_path == "group/project"


def _check_links(result: Any) -> None:
    assert [i.ref.iid for i in result] == [9, 10]
    assert [i.ref.project for i in result] == ["43", "43"]  # a linked issue is named by its own project id


def discussion_json(discussion_id: str, *notes: dict[str, Any]) -> dict[str, Any]:
    individual = len(notes) == 1 and notes[0].get("type") is None
    return {"id": discussion_id, "individual_note": individual, "notes": list(notes)}


def _check_notes(result: Any) -> None:
    # Oldest first, whatever thread each is in, and each knows its discussion (a reply goes there).
    assert [(n.id, n.body, n.system, n.discussion_id, n.threaded) for n in result] == [
        (1, "opened", True, "d1", False),
        (2, "hello", False, "d2", True),
        (3, "a reply", False, "d2", True),
        (4, "later", False, "d4", False),
    ]
    assert all(isinstance(n, Note) for n in result)


def _equal(result: Any, expected: Any) -> None:
    assert result == expected


def _check_listed(result: Any) -> None:
    assert [(i.ref.project, i.ref.iid) for i in result] == [("42", 11)]  # named by its own project id


def _check_found(result: Any) -> None:
    assert [i.ref.iid for i in result] == [11]


READS = [
    ReadCase(
        "get_issue",
        lambda c, p: c.get_issue(IncidentRef(p, 7)),
        "/projects/{p}/issues/7",
        {},
        issue_json(7),
        _check_issue,
    ),
    ReadCase(
        "links",
        lambda c, p: c.links(IncidentRef(p, 7)),
        "/projects/{p}/issues/7/links",
        PAGE_1,
        [issue_json(9, project_id=43, issue_link_id=1), issue_json(10, project_id=43, issue_link_id=2)],
        _check_links,
    ),
    ReadCase(
        "notes",
        lambda c, p: c.notes(IncidentRef(p, 7)),
        "/projects/{p}/issues/7/discussions",
        PAGE_1,
        [
            discussion_json("d1", note_json(1, "opened", system=True)),
            discussion_json("d4", note_json(4, "later")),  # a newer plain comment listed before an older thread
            discussion_json(
                "d2", {**note_json(2), "type": "DiscussionNote"}, {**note_json(3, "a reply"), "type": "DiscussionNote"}
            ),
        ],
        _check_notes,
    ),
    ReadCase(
        "find_issues",
        lambda c, p: c.find_issues(p, labels=["incident-comms", "comms-email"], author=BOT, created_after=SINCE),
        "/projects/{p}/issues",
        {
            "labels": "incident-comms,comms-email",
            "state": "all",
            "author_username": BOT,
            "created_after": "2026-11-28T10:00:00+00:00",
            **PAGE_1,
        },
        [issue_json(11)],
        _check_found,
    ),
    ReadCase(
        "find_issues without created_after",
        lambda c, p: c.find_issues(p, labels=["incident-comms"], author=BOT, created_after=None),
        "/projects/{p}/issues",
        {"labels": "incident-comms", "state": "all", "author_username": BOT, **PAGE_1},
        [issue_json(11)],
        _check_found,
    ),
    ReadCase(
        "project_path",
        lambda c, p: c.project_path(p),
        "/projects/{p}",
        {},
        {"id": 42, "path_with_namespace": "group/project"},
        lambda result: _equal(result, "group/project"),
    ),
    ReadCase(
        "open_issues of a project",
        lambda c, p: c.open_issues(IssueListing("project", p), "security-incident"),
        "/projects/{p}/issues",
        {"state": "opened", "labels": "security-incident", "order_by": "updated_at", **PAGE_1},
        [issue_json(11)],
        _check_listed,
    ),
    ReadCase(
        "open_issues of a group",
        lambda c, p: c.open_issues(IssueListing("group", p), "security-incident"),
        "/groups/{p}/issues",
        {"state": "opened", "labels": "security-incident", "order_by": "updated_at", **PAGE_1},
        [issue_json(11)],
        _check_listed,
    ),
    ReadCase(
        "member_projects",
        lambda c, p: c.member_projects(10),
        "/projects",
        {"membership": "true", "min_access_level": "10", "simple": "true", "archived": "false", **PAGE_1},
        [
            {"id": 42, "path_with_namespace": "group/project", "namespace": {"kind": "group", "full_path": "group"}},
            {"id": 43, "path_with_namespace": "sam/notes", "namespace": {"kind": "user", "full_path": "sam"}},
            {"path_with_namespace": "no/id"},
        ],
        lambda result: _equal(
            result, [RemitProject(42, "group/project", "group"), RemitProject(43, "sam/notes", None)]
        ),
    ),
]


@pytest.mark.parametrize(("project", "encoded"), PROJECTS)
@pytest.mark.parametrize("case", READS, ids=[c.name for c in READS])
def test_read_request_shape(
    rsps: responses.RequestsMock, incident_client: GitLabClient, case: ReadCase, project: str, encoded: str
) -> None:
    url = f"{API}{case.path.format(p=encoded)}"
    rsps.get(url, json=case.reply, match=[matchers.query_param_matcher(case.query), AUTH])

    case.check(case.call(incident_client, project))

    assert len(rsps.calls) == 1
    request = sent(rsps)
    assert request.method == "GET"
    assert request.path_url.split("?")[0] == f"/api/v4{case.path.format(p=encoded)}"  # %2F kept, not decoded
    assert request.body is None
    assert_no_uuid_header(rsps)


def test_an_invisible_project_has_no_path(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    rsps.get(f"{API}/projects/group%2Fgone", status=404, json={"message": "404 Project Not Found"}, match=[AUTH])
    assert client.project_path("group/gone") is None


def test_created_after_is_percent_encoded_in_the_query(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    rsps.get(f"{API}/projects/42/issues", json=[], match=[AUTH])
    client.find_issues("42", labels=["incident-comms"], author=BOT, created_after=SINCE)
    assert "created_after=2026-11-28T10%3A00%3A00%2B00%3A00" in sent(rsps).path_url  # '+' must not become a space


# --------------------------------------------------------------------------- pagination


@dataclass
class ListCase:
    name: str
    call: Callable[[GitLabClient], list[Any]]
    url: str
    query: dict[str, str]
    item: Callable[[int], dict[str, Any]]
    key: Callable[[Any], int] = field(default=lambda x: x.ref.iid)


LISTS = [
    ListCase("links", lambda c: c.links(IncidentRef("42", 7)), f"{API}/projects/42/issues/7/links", {}, issue_json),
    ListCase(
        "notes",
        lambda c: c.notes(IncidentRef("group/project", 7)),
        f"{API}/projects/group%2Fproject/issues/7/discussions",
        {},
        lambda i: discussion_json(f"d{i}", note_json(i)),
        lambda n: n.id,
    ),
    ListCase(
        "find_issues",
        lambda c: c.find_issues("42", labels=["incident-comms"], author=BOT, created_after=None),
        f"{API}/projects/42/issues",
        {"labels": "incident-comms", "state": "all", "author_username": BOT},
        issue_json,
    ),
]


@pytest.mark.parametrize("case", LISTS, ids=[c.name for c in LISTS])
def test_pagination_follows_x_next_page(rsps: responses.RequestsMock, client: GitLabClient, case: ListCase) -> None:
    pages = {1: [1, 2], 2: [3, 4], 3: [5]}
    for page, ids in pages.items():
        rsps.get(
            case.url,
            json=[case.item(i) for i in ids],
            headers={"X-Next-Page": str(page + 1) if page < 3 else "", "X-Page": str(page)},
            match=[matchers.query_param_matcher({**case.query, "page": str(page), "per_page": "100"}), AUTH],
        )

    items = case.call(client)

    assert [case.key(x) for x in items] == [1, 2, 3, 4, 5]
    assert len(rsps.calls) == 3
    assert client.policy.stats.attempts == 3  # one policy call per page


def test_pagination_stops_when_x_next_page_is_missing(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    rsps.get(f"{API}/projects/42/issues/7/links", json=[issue_json(9)], match=[matchers.query_param_matcher(PAGE_1)])
    assert len(client.links(IncidentRef("42", 7))) == 1
    assert len(rsps.calls) == 1


# --------------------------------------------------------------------------- writes


@dataclass
class WriteCase:
    name: str
    call: Callable[[GitLabClient, str], Any]
    method: str
    path: str
    body: Callable[[str], dict[str, Any]]
    status: int
    reply: Any
    check: Callable[[Any], None]


CHILD_DESCRIPTION = "<!-- incident-bot:child {} -->\n**Customer email** for incident #7.\n\nUse `/assign` here."


def _check_created(result: Any) -> None:
    assert isinstance(result, Issue) and result.ref.iid == 12 and result.confidential


def _check_updated(result: Any) -> None:
    assert isinstance(result, Issue) and result.assignees == ("sec-oncall",)


def _check_note(result: Any) -> None:
    assert isinstance(result, Note) and result.id == 55


def _check_in(note: Note, discussion_id: str) -> None:
    assert note.discussion_id == discussion_id and note.threaded


def _check_thread(result: Any, discussion_id: str) -> None:
    found, note = result
    assert found == discussion_id
    _check_note(note)
    _check_in(note, discussion_id)


WRITES = [
    WriteCase(
        "create_issue",
        lambda c, p: c.create_issue(
            p,
            title="Customer email for incident #7",
            description=CHILD_DESCRIPTION,
            labels=("incident-comms", "comms-email"),
            assignee_ids=[13],
        ),
        "POST",
        "/projects/{p}/issues",
        lambda p: {
            "title": "Customer email for incident #7",
            "description": CHILD_DESCRIPTION,
            "labels": ["incident-comms", "comms-email"],
            "confidential": True,
            "assignee_ids": [13],
        },
        201,
        issue_json(12, confidential=True),
        _check_created,
    ),
    WriteCase(
        "link",
        lambda c, p: c.link(IncidentRef(p, 7), IncidentRef(p, 12)),
        "POST",
        "/projects/{p}/issues/7/links",
        # A path goes into the JSON body as is: GitLab's find_project! takes "group/project" there,
        # only the URL path needs it percent-encoded.
        lambda p: {"target_project_id": p, "target_issue_iid": 12, "link_type": "relates_to"},
        201,
        {"source_issue": issue_json(7), "target_issue": issue_json(12), "link_type": "relates_to"},
        lambda result: None,
    ),
    WriteCase(
        "update_issue",
        lambda c, p: c.update_issue(
            IncidentRef(p, 7), assignee_ids=[13], add_labels=["comms::investigating", "comms-email"]
        ),
        "PUT",
        "/projects/{p}/issues/7",
        lambda p: {"assignee_ids": [13], "add_labels": "comms::investigating,comms-email"},
        200,
        issue_json(7, assignees=[{"id": 13, "username": "sec-oncall"}]),
        _check_updated,
    ),
    WriteCase(
        "update_issue labels only",
        lambda c, p: c.update_issue(IncidentRef(p, 7), add_labels=["comms::investigating"]),
        "PUT",
        "/projects/{p}/issues/7",
        lambda p: {"add_labels": "comms::investigating"},
        200,
        issue_json(7, assignees=[{"id": 13, "username": "sec-oncall"}]),
        _check_updated,
    ),
    WriteCase(
        "create_note",
        lambda c, p: c.create_note(IncidentRef(p, 7), "**incident-bot status log**\n\n- engaged"),
        "POST",
        "/projects/{p}/issues/7/notes",
        lambda p: {"body": "**incident-bot status log**\n\n- engaged"},
        201,
        note_json(55),
        _check_note,
    ),
    WriteCase(
        "start_thread",
        lambda c, p: c.start_thread(IncidentRef(p, 7), "**incident-bot status log**\n\n- engaged"),
        "POST",
        "/projects/{p}/issues/7/discussions",
        lambda p: {"body": "**incident-bot status log**\n\n- engaged"},
        201,
        discussion_json("d55", {**note_json(55), "type": "DiscussionNote"}),
        lambda result: _check_thread(result, "d55"),
    ),
    WriteCase(
        "reply_in_thread",
        lambda c, p: c.reply_in_thread(IncidentRef(p, 7), "d12", "- opened #13"),
        "POST",
        "/projects/{p}/issues/7/discussions/d12/notes",
        lambda p: {"body": "- opened #13"},
        201,
        {**note_json(55), "type": "DiscussionNote"},
        lambda result: _check_note(result) or _check_in(result, "d12"),
    ),
    WriteCase(
        "update_note",
        lambda c, p: c.update_note(IncidentRef(p, 7), 55, "- [x] notify\n- [ ] publish"),
        "PUT",
        "/projects/{p}/issues/7/notes/55",
        lambda p: {"body": "- [x] notify\n- [ ] publish"},
        200,
        note_json(55),
        _check_note,
    ),
]


@pytest.mark.parametrize(("project", "encoded"), PROJECTS)
@pytest.mark.parametrize("case", WRITES, ids=[c.name for c in WRITES])
def test_write_request_shape(
    rsps: responses.RequestsMock, incident_client: GitLabClient, case: WriteCase, project: str, encoded: str
) -> None:
    path = case.path.format(p=encoded)
    rsps.add(
        case.method,
        f"{API}{path}",
        status=case.status,
        json=case.reply,
        match=[
            matchers.json_params_matcher(case.body(project)),  # strict: no other keys
            matchers.query_param_matcher({}),
            AUTH_AND_UUID,
        ],
    )

    case.check(case.call(incident_client, project))

    assert len(rsps.calls) == 1
    request = sent(rsps)
    assert request.method == case.method
    assert request.path_url == f"/api/v4{path}"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("case", WRITES, ids=[c.name for c in WRITES])
def test_writes_without_an_event_carry_no_uuid(
    rsps: responses.RequestsMock, client: GitLabClient, case: WriteCase
) -> None:
    rsps.add(case.method, f"{API}{case.path.format(p='42')}", status=case.status, json=case.reply, match=[AUTH])
    case.call(client, "42")
    assert len(rsps.calls) == 1
    assert_no_uuid_header(rsps)


# --------------------------------------------------------------------------- failures and refusals


def test_link_409_already_linked_is_success_in_one_request(
    rsps: responses.RequestsMock, client: GitLabClient, ft: FakeTime
) -> None:
    rsps.post(f"{API}/projects/42/issues/7/links", status=409, json={"message": "Issue(s) already assigned"})
    assert client.link(IncidentRef("42", 7), IncidentRef("42", 12)) is None
    assert len(rsps.calls) == 1
    assert ft.sleeps == []


def test_link_persistent_resource_lock_409_is_not_success(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    rsps.post(f"{API}/projects/42/issues/7/links", status=409, json={"message": "409 Conflict: Resource lock"})
    with pytest.raises(GitLabCallError) as info:
        client.link(IncidentRef("42", 7), IncidentRef("42", 12))
    assert info.value.status == 409 and info.value.transient


@pytest.mark.parametrize(("project", "encoded"), PROJECTS)
def test_missing_issue_404_raises_once(
    rsps: responses.RequestsMock, client: GitLabClient, project: str, encoded: str
) -> None:
    rsps.get(f"{API}/projects/{encoded}/issues/999", status=404, json={"message": "404 Not found"})
    with pytest.raises(GitLabCallError) as info:
        client.get_issue(IncidentRef(project, 999))
    assert info.value.status == 404
    assert info.value.permanent
    assert len(rsps.calls) == 1


def test_commands_only_202_on_note_creation_raises_unsafe_body(
    rsps: responses.RequestsMock, client: GitLabClient
) -> None:
    rsps.post(
        f"{API}/projects/42/issues/7/notes",
        status=202,
        json={"commands_changes": {"assignee_ids": [13]}, "summary": ["Assigned @sec-oncall."]},
        match=[matchers.json_params_matcher({"body": "assign the on-call"})],
    )
    with pytest.raises(UnsafeBody, match="quick actions only"):
        client.create_note(IncidentRef("42", 7), "assign the on-call")
    assert len(rsps.calls) == 1


QUICK_ACTION_BODY = "Status update\n/close\nmore text"

REFUSED: list[tuple[str, Callable[[GitLabClient], Any]]] = [
    ("create_note", lambda c: c.create_note(IncidentRef("42", 7), QUICK_ACTION_BODY)),
    ("update_note", lambda c: c.update_note(IncidentRef("42", 7), 55, "/assign @mallory")),
    (
        "create_issue",
        lambda c: c.create_issue("42", title="t", description=QUICK_ACTION_BODY, labels=["x"], assignee_ids=[]),
    ),
    ("create_note CRLF", lambda c: c.create_note(IncidentRef("42", 7), "ok\r\n/label ~leak")),
]


@pytest.mark.parametrize("call", [c for _, c in REFUSED], ids=[n for n, _ in REFUSED])
def test_column_zero_quick_action_is_refused_before_any_request(
    rsps: responses.RequestsMock, client: GitLabClient, call: Callable[[GitLabClient], Any]
) -> None:
    with pytest.raises(UnsafeBody, match="quick-action"):
        call(client)
    assert len(rsps.calls) == 0
    assert client.policy.stats.snapshot().calls == 0


@pytest.mark.parametrize(
    "reply",
    [
        {
            "status": 502,
            "body": "<html><head><title>502 Bad Gateway</title></head></html>",
            "content_type": "text/html",
        },
        {"status": 500, "json": {"message": "500 Internal Server Error"}},
    ],
    ids=["502-html", "500-json"],
)
def test_create_issue_5xx_is_sent_once_and_outcome_unknown(
    rsps: responses.RequestsMock, client: GitLabClient, ft: FakeTime, reply: dict[str, Any]
) -> None:
    rsps.post(f"{API}/projects/42/issues", **reply)
    with pytest.raises(OutcomeUnknown) as info:
        client.create_issue("42", title="t", description="d", labels=["incident-comms"], assignee_ids=[])
    assert info.value.status == reply["status"]
    assert info.value.transient
    assert len(rsps.calls) == 1
    assert ft.sleeps == []


# --------------------------------------------------------------------------- user look-ups


def test_user_lookup_request_and_cache(rsps: responses.RequestsMock, incident_client: GitLabClient) -> None:
    rsps.get(
        f"{API}/users",
        json=[{"id": 13, "username": "sec-oncall"}],
        match=[matchers.query_param_matcher({"username": "sec-oncall", "per_page": "100"}), AUTH],
    )
    assert incident_client.user_id("sec-oncall") == 13
    assert incident_client.user_id("sec-oncall") == 13
    assert incident_client.user_id("SEC-Oncall") == 13  # GitLab's username search ignores case
    assert len(rsps.calls) == 1
    assert_no_uuid_header(rsps)


def test_unknown_user_is_none_and_cached(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    rsps.get(f"{API}/users", json=[], match=[matchers.query_param_matcher({"username": "ghost", "per_page": "100"})])
    assert client.user_id("ghost") is None
    assert client.user_id("ghost") is None
    assert len(rsps.calls) == 1


def test_user_cache_is_shared_with_incident_clients(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    rsps.get(f"{API}/users", json=[{"id": 13, "username": "sec-oncall"}])
    assert client.for_incident("42#7", event_uuid=EVENT_UUID).user_id("sec-oncall") == 13
    assert client.for_incident("42#8").user_id("sec-oncall") == 13
    assert client.user_id("sec-oncall") == 13
    assert len(rsps.calls) == 1


def test_concurrent_lookups_of_one_user_send_one_request(rsps: responses.RequestsMock, client: GitLabClient) -> None:
    lock = threading.Lock()
    arrived = [0]
    first_arrived = threading.Event()
    second_arrived = threading.Event()

    def reply(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        with lock:
            arrived[0] += 1
            first = arrived[0] == 1
        if first:
            first_arrived.set()
            second_arrived.wait(2.0)  # the first answer is held until a second look-up shows up (or 2 s pass)
        else:
            second_arrived.set()
        return 200, {"Content-Type": "application/json"}, '[{"id": 13, "username": "sec-oncall"}]'

    rsps.add_callback(responses.GET, f"{API}/users", callback=reply)
    results: list[int | None] = []

    def look_up() -> None:
        results.append(client.for_incident("42#7").user_id("sec-oncall"))

    early = threading.Thread(target=look_up)
    early.start()
    assert first_arrived.wait(5), "the first look-up never reached GitLab"
    late = threading.Thread(target=look_up)  # starts while the first answer is still outstanding
    late.start()
    early.join(5)
    late.join(5)
    assert results == [13, 13]
    assert len(rsps.calls) == 1
