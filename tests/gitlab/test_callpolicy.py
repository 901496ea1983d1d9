"""CallPolicy driven through real python-gitlab calls (make_gitlab) against `responses` mocks.

Time is fake everywhere: the policy's clock/sleep/wallclock are a FakeTime, and time.sleep itself is
patched to fail so any sleep inside python-gitlab would be caught.
"""

from __future__ import annotations

import email.utils
import itertools
import pickle
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import gitlab
import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses.registries import OrderedRegistry
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from bot.gitlab.callpolicy import CallPolicy, TokenBucket, classify, parse_retry_after
from bot.gitlab.connect import make_gitlab
from bot.gitlab.errors import (
    GitLabAuthError,
    GitLabCallError,
    OutcomeUnknown,
    compact_message,
)
from tests.gitlab.faketime import FakeTime as SharedFakeTime
from tests.gitlab.faketime import no_real_sleep  # noqa: F401  (fixture)
from tests.hypothesis_profiles import examples

URL = "https://gitlab.test"
API = f"{URL}/api/v4"
ISSUES = f"{API}/projects/42/issues"
ISSUE7 = f"{ISSUES}/7"
LINKS = f"{ISSUE7}/links"
WALL0 = 1_900_000_000.0


class FakeTime(SharedFakeTime):
    """The shared fake time, with a wall clock (Unix seconds) that moves with it."""

    def __init__(self) -> None:
        super().__init__(5_000.0)

    def wall(self) -> float:
        return WALL0 + (self.now - self.start)


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def gl() -> gitlab.Gitlab:
    return make_gitlab(URL, "tok")


@pytest.fixture
def seq() -> Iterator[responses.RequestsMock]:
    """Responses served strictly in registration order (one per request)."""
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mock:
        yield mock


def make_policy(ft: FakeTime, **kw: Any) -> CallPolicy:
    kw.setdefault("rate_per_minute", 10**9)
    return CallPolicy(clock=ft.clock, sleep=ft.sleep, wallclock=ft.wall, rng=random.Random(7), **kw)


def create_issue(gl: gitlab.Gitlab) -> Callable[[], Any]:
    return lambda: gl.projects.get(42, lazy=True).issues.create({"title": "child", "confidential": True})


def get_issue(gl: gitlab.Gitlab) -> Callable[[], Any]:
    return lambda: gl.projects.get(42, lazy=True).issues.get(7)


def refused() -> requests.ConnectionError:
    """What requests raises when the TCP connect is refused (nothing was sent)."""
    conn = HTTPSConnection("gitlab.test", 443)
    reason = NewConnectionError(conn, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/api/v4/projects/42/issues", reason=reason))  # type: ignore[arg-type]


def aborted() -> requests.ConnectionError:
    """What requests raises when the connection dies after the request was sent."""
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


ISSUE_JSON = {"id": 100, "iid": 7, "title": "child"}


# --------------------------------------------------------------------------- Retry-After handling


def test_429_retry_after_3_then_201(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.post(ISSUES, status=429, headers={"Retry-After": "3"}, json={"message": "429 Too Many Requests"})
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    policy = make_policy(ft)
    issue = policy.call(create_issue(gl), step="create child issue", incident="INC-1", write="create")
    assert issue.iid == 7
    assert len(seq.calls) == 2
    assert ft.sleeps == [3.0]
    snap = policy.stats.snapshot()
    assert snap.retries == 1 and snap.waited_s == 3.0
    assert snap.attempts_by_status == {"429": 1, "ok": 1}


def test_429_http_date_retry_after_uses_wallclock(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    when = email.utils.format_datetime(datetime.fromtimestamp(WALL0 + 7, tz=UTC), usegmt=True)
    seq.get(ISSUE7, status=429, headers={"Retry-After": when})
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    policy = make_policy(ft)
    assert policy.call(get_issue(gl), step="read issue").iid == 7
    assert ft.sleeps == [7.0]
    assert len(seq.calls) == 2


def test_429_forever_stops_at_max_attempts_within_budget(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    for _ in range(10):
        seq.get(ISSUE7, status=429, json={"message": "429 Too Many Requests"})
    policy = make_policy(ft, max_attempts=4, call_budget_s=30.0)
    with pytest.raises(GitLabCallError) as info:
        policy.call(get_issue(gl), step="read issue", incident="INC-2")
    err = info.value
    assert len(seq.calls) == 4
    assert err.transient and err.status == 429 and err.attempts == 4
    assert sum(ft.sleeps) <= 30.0
    assert str(err) == "INC-2: read issue failed: 429 Too Many Requests (transient, after 4 attempts)"


def test_429_retry_after_10_forever_uses_whole_budget_but_not_more(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    for _ in range(10):
        seq.get(ISSUE7, status=429, headers={"Retry-After": "10"})
    policy = make_policy(ft, max_attempts=10, call_budget_s=30.0)
    with pytest.raises(GitLabCallError) as info:
        policy.call(get_issue(gl), step="read issue")
    assert ft.sleeps == [10.0, 10.0, 10.0]
    assert len(seq.calls) == 4
    assert "beyond the call budget" in str(info.value)


def test_retry_after_beyond_budget_fails_fast(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.post(ISSUES, status=429, headers={"Retry-After": "3600"})
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    policy = make_policy(ft)
    with pytest.raises(GitLabCallError) as info:
        policy.call(create_issue(gl), step="create child issue", incident="INC-3", write="create")
    err = info.value
    assert not isinstance(err, OutcomeUnknown)  # a 429 means GitLab did nothing
    assert len(seq.calls) == 1 and ft.sleeps == []
    assert err.transient and err.retry_after == 3600.0
    assert "3600" in str(err)


def test_ratelimit_reset_is_honoured_on_429_only(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.get(ISSUE7, status=429, headers={"RateLimit-Reset": str(int(WALL0) + 5)})
    seq.get(ISSUE7, status=500, headers={"RateLimit-Reset": str(int(WALL0) + 55)})
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    policy = make_policy(ft, max_wait=2.0)
    policy.call(get_issue(gl), step="read issue")
    assert ft.sleeps[0] == 5.0
    assert 0.0 <= ft.sleeps[1] <= 1.0  # 500: jittered backoff, not the 50 s until the window resets


def test_malformed_retry_after_falls_back_to_backoff(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    seq.get(ISSUE7, status=429, headers={"Retry-After": "soon-ish"})
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    make_policy(ft, max_wait=1.0).call(get_issue(gl), step="read issue")
    assert len(seq.calls) == 2
    assert 0.0 <= ft.sleeps[0] <= 0.5


def test_stock_client_value_error_on_http_date_is_transient(ft: FakeTime, seq: responses.RequestsMock) -> None:
    """A plain gitlab.Gitlab (obey_rate_limit on) crashes with ValueError; the policy treats it as a 429."""
    stock = gitlab.Gitlab(URL, private_token="tok", timeout=5)
    seq.get(ISSUE7, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    policy = make_policy(ft)
    assert policy.call(get_issue(stock), step="read issue").iid == 7
    assert len(seq.calls) == 2


def test_stock_client_value_error_on_create_429_is_retried(ft: FakeTime, seq: responses.RequestsMock) -> None:
    stock = gitlab.Gitlab(URL, private_token="tok", timeout=5)
    seq.post(ISSUES, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    assert make_policy(ft).call(create_issue(stock), step="create child issue", write="create").iid == 7
    assert len(seq.calls) == 2


def test_stock_client_value_error_on_create_503_is_outcome_unknown(ft: FakeTime, seq: responses.RequestsMock) -> None:
    stock = gitlab.Gitlab(URL, private_token="tok", timeout=5, retry_transient_errors=True)
    seq.post(ISSUES, status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(OutcomeUnknown) as info:
        make_policy(ft).call(create_issue(stock), step="create child issue", write="create")
    assert info.value.status == 503 and len(seq.calls) == 1


def test_nested_policy_errors_pass_through_unchanged(ft: FakeTime) -> None:
    inner = GitLabCallError("inner", "INC-1", 404, "gone", False)

    def nested() -> None:
        raise inner

    policy = make_policy(ft)
    with pytest.raises(GitLabCallError) as info:
        policy.call(nested, step="outer")
    assert info.value is inner


def test_other_value_errors_are_permanent(ft: FakeTime) -> None:
    calls = []

    def bug() -> None:
        calls.append(1)
        int("not a number")

    with pytest.raises(GitLabCallError) as info:
        make_policy(ft).call(bug, step="parse")
    assert len(calls) == 1 and info.value.permanent and info.value.status is None
    assert "ValueError" in str(info.value)


# --------------------------------------------------------------------------- reads vs creates


def test_read_500_503_201_takes_three_calls(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.get(ISSUE7, status=500)
    seq.get(ISSUE7, status=503)
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    policy = make_policy(ft)
    assert policy.call(get_issue(gl), step="read issue").iid == 7
    assert len(seq.calls) == 3
    assert len(ft.sleeps) == 2
    assert ft.sleeps[0] <= 0.5 and ft.sleeps[1] <= 1.0  # full jitter under 0.5·2^n


def test_create_502_is_one_call_and_outcome_unknown(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    seq.post(ISSUES, status=502, body="<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    with pytest.raises(OutcomeUnknown) as info:
        make_policy(ft).call(create_issue(gl), step="create child issue", incident="INC-4", write="create")
    err = info.value
    assert len(seq.calls) == 1 and ft.sleeps == []
    assert isinstance(err, GitLabCallError) and err.transient and err.status == 502
    assert str(err).startswith("INC-4: create child issue failed: 502 Bad Gateway; it may have been applied")
    assert str(err).endswith("(transient, after 1 attempt)")


def test_create_429_is_retried(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.post(ISSUES, status=429)
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    policy = make_policy(ft)
    assert policy.call(create_issue(gl), step="create child issue", write="create").iid == 7
    assert len(seq.calls) == 2 and policy.stats.retries == 1


@pytest.mark.parametrize(
    "error",
    [requests.exceptions.ConnectTimeout("connect timed out"), refused()],
    ids=["connect-timeout", "connection-refused"],
)
def test_create_retried_when_nothing_was_sent(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock, error: Exception
) -> None:
    seq.post(ISSUES, body=error)
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    assert make_policy(ft).call(create_issue(gl), step="create child issue", write="create").iid == 7
    assert len(seq.calls) == 2


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("truncated"),
        aborted(),
    ],
    ids=["read-timeout", "chunked", "aborted"],
)
def test_create_not_retried_when_request_may_have_landed(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock, error: Exception
) -> None:
    seq.post(ISSUES, body=error)
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    with pytest.raises(OutcomeUnknown) as info:
        make_policy(ft).call(create_issue(gl), step="create child issue", write="create")
    assert len(seq.calls) == 1
    assert info.value.status is None and info.value.transient


def test_create_unparseable_2xx_is_outcome_unknown(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    seq.post(ISSUES, status=201, body="{not json", content_type="application/json")
    with pytest.raises(OutcomeUnknown):
        make_policy(ft).call(create_issue(gl), step="create child issue", write="create")
    assert len(seq.calls) == 1


def test_read_connection_error_retried_then_transient(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    for _ in range(6):
        seq.get(ISSUE7, body=refused())
    with pytest.raises(GitLabCallError) as info:
        make_policy(ft, max_attempts=4).call(get_issue(gl), step="read issue", incident="INC-5")
    err = info.value
    assert len(seq.calls) == 4
    assert err.transient and err.status is None and err.attempts == 4
    assert str(err).startswith("INC-5: read issue failed: ConnectionError: Failed to establish a new connection")
    assert "\n" not in str(err)


def test_idempotent_put_retried_on_timeout(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    url = f"{ISSUE7}/notes/55"
    seq.put(url, body=requests.exceptions.ReadTimeout("read timed out"))
    seq.put(url, status=200, json={"id": 55, "body": "checklist"})
    issue = gl.projects.get(42, lazy=True).issues.get(7, lazy=True)
    make_policy(ft).call(
        lambda: issue.notes.update(55, {"body": "checklist"}), step="update checklist", write="idempotent"
    )
    assert len(seq.calls) == 2


def test_409_resource_lock_is_transient(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.get(ISSUE7, status=409, json={"message": "Resource lock"})
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    make_policy(ft).call(get_issue(gl), step="read issue")
    assert len(seq.calls) == 2


# --------------------------------------------------------------------------- permanent errors


@pytest.mark.parametrize("status", [400, 403, 404, 422])
@pytest.mark.parametrize("write", ["read", "create"])
def test_permanent_4xx_is_one_call(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock, status: int, write: str
) -> None:
    seq.post(ISSUES, status=status, json={"message": f"{status} Nope"})
    seq.post(ISSUES, status=201, json=ISSUE_JSON)
    with pytest.raises(GitLabCallError) as info:
        make_policy(ft).call(create_issue(gl), step="create child issue", write=write)  # type: ignore[arg-type]
    err = info.value
    assert type(err) is GitLabCallError
    assert len(seq.calls) == 1 and ft.sleeps == []
    assert err.permanent and err.status == status
    assert str(err) == f"create child issue failed: {status} Nope (permanent, after 1 attempt)"


def test_401_is_permanent_and_blames_the_token(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.post(ISSUES, status=401, json={"message": "401 Unauthorized"})
    with pytest.raises(GitLabAuthError) as info:
        make_policy(ft).call(create_issue(gl), step="create child issue", incident="INC-6", write="create")
    err = info.value
    assert err.permanent and err.status == 401 and len(seq.calls) == 1
    assert str(err) == (
        "INC-6: create child issue failed: 401 Unauthorized: GITLAB_TOKEN was rejected "
        "(is it expired, revoked or missing the api scope?) (permanent, after 1 attempt)"
    )


def test_409_already_linked_is_permanent_409(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.post(LINKS, status=409, json={"message": "Issue(s) already assigned"})
    issue = gl.projects.get(42, lazy=True).issues.get(7, lazy=True)
    with pytest.raises(GitLabCallError) as info:
        make_policy(ft).call(
            lambda: issue.links.create({"target_project_id": 42, "target_issue_iid": 8}),
            step="link child",
            incident="INC-7",
            write="idempotent",
        )
    err = info.value
    assert err.status == 409 and err.permanent and len(seq.calls) == 1
    assert err.message == "Issue(s) already assigned"


def test_dict_error_message_is_rendered_compactly(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seq.post(ISSUES, status=400, json={"message": {"title": ["is too long"], "labels": ["is invalid", "x"]}})
    with pytest.raises(GitLabCallError) as info:
        make_policy(ft).call(create_issue(gl), step="create child issue", incident="INC-8", write="create")
    assert str(info.value) == (
        "INC-8: create child issue failed: 400 title: is too long; labels: is invalid, x (permanent, after 1 attempt)"
    )


def test_unexpected_exception_is_wrapped_permanent(ft: FakeTime) -> None:
    def broken() -> None:
        raise KeyError("iid")

    with pytest.raises(GitLabCallError) as info:
        make_policy(ft).call(broken, step="read issue")
    assert info.value.permanent and isinstance(info.value.__cause__, KeyError)


# --------------------------------------------------------------------------- budget, jitter, stats


def test_backoff_is_full_jitter_capped_at_max_wait(
    ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock
) -> None:
    for _ in range(8):
        seq.get(ISSUE7, status=503)
    with pytest.raises(GitLabCallError):
        make_policy(ft, max_attempts=8, max_wait=1.5, call_budget_s=100).call(get_issue(gl), step="read")
    assert len(ft.sleeps) == 7
    caps = [min(1.5, 0.5 * 2**n) for n in range(7)]
    assert all(0.0 <= wait <= cap for wait, cap in zip(ft.sleeps, caps, strict=True))
    assert len(set(ft.sleeps)) == 7  # jittered, not a fixed schedule


def test_budget_checked_before_sleeping_counts_slow_attempts(ft: FakeTime) -> None:
    def slow_503() -> None:
        ft.advance(9.0)
        raise gitlab.exceptions.GitlabGetError("Service Unavailable", 503)

    policy = make_policy(ft, max_attempts=10, call_budget_s=20.0, max_wait=5.0)
    with pytest.raises(GitLabCallError):
        policy.call(slow_503, step="read")
    assert sum(ft.sleeps) <= 20.0
    assert policy.stats.attempts <= 3


def test_stats_and_on_call_hook(ft: FakeTime, gl: gitlab.Gitlab, seq: responses.RequestsMock) -> None:
    seen: list[tuple[str, str, float]] = []
    seq.get(ISSUE7, status=503)
    seq.get(ISSUE7, status=200, json=ISSUE_JSON)
    seq.post(ISSUES, status=404)
    policy = make_policy(ft, on_call=lambda step, status, secs: seen.append((step, status, secs)))
    policy.call(get_issue(gl), step="read issue")
    with pytest.raises(GitLabCallError):
        policy.call(create_issue(gl), step="create child issue", write="create")
    snap = policy.stats.snapshot()
    assert snap.calls == 2 and snap.attempts == 3 and snap.retries == 1 and snap.failures == 1
    assert snap.attempts_by_step == {"read issue": 2, "create child issue": 1}
    assert snap.attempts_by_status == {"503": 1, "ok": 1, "404": 1}
    assert [(step, status) for step, status, _ in seen] == [
        ("read issue", "503"),
        ("read issue", "ok"),
        ("create child issue", "404"),
    ]
    policy.stats.reset()
    assert policy.stats.attempts == 0


def test_failing_on_call_hook_does_not_break_calls(ft: FakeTime) -> None:
    def hook(step: str, status: str, secs: float) -> None:
        raise RuntimeError("prometheus down")

    assert make_policy(ft, on_call=hook).call(lambda: 42, step="x") == 42


def test_invalid_write_kind_rejected(ft: FakeTime) -> None:
    with pytest.raises(ValueError, match="write"):
        make_policy(ft).call(lambda: 1, step="x", write="post")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rate limiting


def test_rate_limiter_spaces_calls(ft: FakeTime, gl: gitlab.Gitlab) -> None:
    started: list[float] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        started.append(ft.now)
        return 200, {"Content-Type": "application/json"}, '{"id": 100, "iid": 7}'

    policy = make_policy(ft, rate_per_minute=60)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, ISSUE7, callback=record)
        for _ in range(10):
            policy.call(get_issue(gl), step="read issue")
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert len(started) == 10
    assert gaps == pytest.approx([1.0] * 9)
    assert policy.stats.snapshot().throttled_s == pytest.approx(9.0)


def test_token_bucket_is_thread_safe() -> None:
    """Concurrent reservations on a frozen clock must get distinct, evenly spaced slots."""
    bucket = TokenBucket(60, clock=lambda: 100.0, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([float(i) for i in range(400)])


def test_limiter_wait_beyond_budget_fails_without_calling(ft: FakeTime) -> None:
    bucket = TokenBucket(1, clock=ft.clock, sleep=ft.sleep)  # one request a minute
    policy = make_policy(ft, limiter=bucket, call_budget_s=30)
    calls: list[int] = []
    assert policy.call(lambda: calls.append(1), step="first") is None
    with pytest.raises(GitLabCallError) as info:
        policy.call(lambda: calls.append(2), step="second")
    assert calls == [1] and info.value.transient and ft.sleeps == []


def test_shared_limiter_across_policies(ft: FakeTime) -> None:
    bucket = TokenBucket(60, clock=ft.clock, sleep=ft.sleep)
    a = make_policy(ft, limiter=bucket)
    b = make_policy(ft, limiter=bucket)
    a.call(lambda: None, step="a")
    b.call(lambda: None, step="b")
    assert ft.sleeps == [1.0]


# --------------------------------------------------------------------------- helpers


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("3", now_wall=WALL0) == 3.0
    assert parse_retry_after(" 1.5 ", now_wall=WALL0) == 1.5
    assert parse_retry_after("-4", now_wall=WALL0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_wall=WALL0) == 0.0
    future = email.utils.format_datetime(datetime.fromtimestamp(WALL0 + 90, tz=UTC), usegmt=True)
    assert parse_retry_after(future, now_wall=WALL0) == 90.0
    assert parse_retry_after("garbage", now_wall=WALL0) is None
    assert parse_retry_after("nan", now_wall=WALL0) is None
    assert parse_retry_after(None, now_wall=WALL0) is None


def test_errors_survive_pickling() -> None:
    for err in (
        GitLabCallError("read", "INC-1", 503, "down", True, attempts=3, retry_after=2.0),
        OutcomeUnknown("create", "INC-1", 502, "bad gateway", attempts=1),
        GitLabAuthError("create", "", 401, "token", False),
    ):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err)
        assert (copy.attempts, copy.retry_after, copy.transient) == (err.attempts, err.retry_after, err.transient)


def test_compact_message() -> None:
    assert compact_message({"title": ["is too long"]}) == "title: is too long"
    assert compact_message(b"plain\n  bytes") == "plain bytes"
    assert compact_message("x" * 1000).endswith("…")
    assert len(compact_message("x" * 1000)) == 300


def test_ssl_certificate_failure_is_permanent() -> None:
    err = requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert not classify(err).transient


# --------------------------------------------------------------------------- property


STEPS = {
    "ok": (200, {}),
    "429": (429, {}),
    "429-ra": (429, {"Retry-After": "2"}),
    "429-ra-big": (429, {"Retry-After": "3600"}),
    "429-ra-date": (429, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}),
    "429-reset": (429, {"RateLimit-Reset": str(int(WALL0) + 20)}),
    "500": (500, {}),
    "502": (502, {}),
    "503-ra": (503, {"Retry-After": "5"}),
    "404": (404, {}),
    "409": (409, {}),
    "409-lock": (409, {}),
    "refused": (0, {}),
    "read-timeout": (0, {}),
}
UNKNOWN_ON_CREATE = {"500", "502", "503-ra", "read-timeout", "409-lock"}


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outcomes=st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=10),
    latencies=st.lists(st.floats(0, 8), min_size=10, max_size=10),
    write=st.sampled_from(["read", "idempotent", "create"]),
    max_attempts=st.integers(1, 6),
    budget=st.floats(0.5, 60),
    max_wait=st.floats(0.05, 20),
    seed=st.integers(0, 2**16),
)
def test_property_attempts_and_time_are_bounded(
    outcomes: list[str],
    latencies: list[float],
    write: str,
    max_attempts: int,
    budget: float,
    max_wait: float,
    seed: int,
) -> None:
    ft = FakeTime()
    gl = make_gitlab(URL, "tok")
    policy = CallPolicy(
        max_attempts=max_attempts,
        max_wait=max_wait,
        call_budget_s=budget,
        rate_per_minute=1800,
        clock=ft.clock,
        sleep=ft.sleep,
        wallclock=ft.wall,
        rng=random.Random(seed),
    )
    served: list[str] = []
    starts: list[float] = []
    start = ft.now

    def callback(request: requests.PreparedRequest) -> Any:
        index = min(len(served), len(outcomes) - 1)
        name = outcomes[index]
        served.append(name)
        starts.append(ft.now)
        ft.advance(latencies[index])
        if name == "refused":
            raise refused()
        if name == "read-timeout":
            raise requests.exceptions.ReadTimeout("read timed out")
        status, headers = STEPS[name]
        message = "Resource lock" if name == "409-lock" else f"{status}"
        body = '{"id": 100, "iid": 7}' if status == 200 else f'{{"message": "{message}"}}'
        return status, {"Content-Type": "application/json", **headers}, body

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, ISSUE7, callback=callback)
        mock.add_callback(responses.POST, ISSUES, callback=callback)
        fn = create_issue(gl) if write == "create" else get_issue(gl)
        try:
            policy.call(fn, step="step", write=write)  # type: ignore[arg-type]
            succeeded = True
        except GitLabCallError as err:
            succeeded = False
            assert err.attempts == len(served)
            if write == "create" and served[-1] in UNKNOWN_ON_CREATE:
                assert isinstance(err, OutcomeUnknown)

    assert len(served) <= max_attempts
    assert sum(ft.sleeps) <= budget + 1e-9
    assert all(s - start <= budget + 1e-9 for s in starts)
    assert policy.stats.snapshot().waited_s <= budget + 1e-9
    if succeeded:
        assert served[-1] == "ok"
    if write == "create":
        # Once a create may have landed, it is never sent again.
        assert all(name not in UNKNOWN_ON_CREATE for name in served[:-1])
