"""make_gitlab builds clients whose every API call is exactly one HTTP request; check_token explains failures."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import gitlab
import gitlab.exceptions
import pytest
import requests
import responses
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.gitlab.connect import BoundedGitlab, check_token, make_gitlab
from bot.gitlab.errors import GitLabConfigError

URL = "https://gitlab.test"
API = f"{URL}/api/v4"
ISSUES = f"{API}/projects/42/issues"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any sleep inside python-gitlab would mean its own retry loop ran."""

    def boom(seconds: float) -> None:
        raise AssertionError(f"python-gitlab slept {seconds} s: its retries are not off")

    monkeypatch.setattr(time, "sleep", boom)


def _issues(gl: gitlab.Gitlab):  # type: ignore[no-untyped-def]
    return gl.projects.get(42, lazy=True).issues


def test_make_gitlab_returns_configured_client() -> None:
    gl = make_gitlab(URL, "tok")
    assert isinstance(gl, BoundedGitlab)
    assert isinstance(gl, gitlab.Gitlab)
    assert gl.timeout == 10.0
    assert gl.per_page == 100
    assert gl.retry_transient_errors is False
    assert gl.headers["User-Agent"] == "incident-bot/0.1.0"


def test_one_429_is_exactly_one_request(rsps: responses.RequestsMock) -> None:
    rsp = rsps.post(ISSUES, status=429, json={"message": "429 Too Many Requests"}, headers={"Retry-After": "1"})
    gl = make_gitlab(URL, "tok")
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as info:
        _issues(gl).create({"title": "t"})
    assert info.value.response_code == 429
    assert rsp.call_count == 1


def test_per_call_retry_arguments_cannot_turn_retries_back_on(rsps: responses.RequestsMock) -> None:
    rsp = rsps.post(ISSUES, status=429, headers={"Retry-After": "1"})
    rsps.get(f"{ISSUES}/7", status=503)
    gl = make_gitlab(URL, "tok")
    gl.retry_transient_errors = True
    with pytest.raises(gitlab.exceptions.GitlabCreateError):
        _issues(gl).create({"title": "t"}, max_retries=10, obey_rate_limit=True, retry_transient_errors=True)
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        _issues(gl).get(7, max_retries=-1, retry_transient_errors=True)
    assert rsp.call_count == 1
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520])
def test_transient_5xx_is_one_request(rsps: responses.RequestsMock, status: int) -> None:
    rsps.post(ISSUES, status=status)
    with pytest.raises(gitlab.exceptions.GitlabCreateError):
        _issues(make_gitlab(URL, "tok")).create({"title": "t"})
    assert len(rsps.calls) == 1


def test_connection_error_is_one_request_and_raw(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{ISSUES}/7", body=requests.ConnectionError("reset"))
    with pytest.raises(requests.ConnectionError):
        _issues(make_gitlab(URL, "tok")).get(7)
    assert len(rsps.calls) == 1


def test_http_date_retry_after_does_not_crash_and_headers_are_kept(rsps: responses.RequestsMock) -> None:
    date = email.utils.format_datetime(datetime(2030, 1, 1, tzinfo=UTC), usegmt=True)
    rsps.post(ISSUES, status=429, headers={"Retry-After": date, "RateLimit-Reset": "1893456000"})
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as info:
        _issues(make_gitlab(URL, "tok")).create({"title": "t"})
    cause = info.value.__cause__
    assert isinstance(cause, gitlab.exceptions.GitlabHttpError)
    assert cause.response_headers["Retry-After"] == date  # type: ignore[attr-defined]
    assert cause.response_reason == "Too Many Requests"  # type: ignore[attr-defined]


def test_timeout_is_always_sent(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{ISSUES}/7", json={"iid": 7})
    rsps.get(f"{ISSUES}/8", json={"iid": 8})
    gl = make_gitlab(URL, "tok", timeout=4.5)
    _issues(gl).get(7)
    _issues(gl).get(8, timeout=2.0)
    assert rsps.calls[0].request.req_kwargs["timeout"] == 4.5  # type: ignore[attr-defined]
    assert rsps.calls[1].request.req_kwargs["timeout"] == 2.0  # type: ignore[attr-defined]
    assert rsps.calls[0].request.headers["PRIVATE-TOKEN"] == "tok"
    assert rsps.calls[0].request.headers["User-Agent"] == "incident-bot/0.1.0"


@pytest.mark.parametrize("timeout", [None, 0, -1.0])
def test_make_gitlab_refuses_missing_timeout(timeout: float | None) -> None:
    with pytest.raises(ValueError, match="timeout"):
        make_gitlab(URL, "tok", timeout=timeout)  # type: ignore[arg-type]


def test_make_gitlab_refuses_empty_url_or_token() -> None:
    with pytest.raises(ValueError, match="GITLAB_URL"):
        make_gitlab("", "tok")
    with pytest.raises(ValueError, match="GITLAB_TOKEN"):
        make_gitlab(URL, "")


def test_session_is_used_but_retrying_adapters_are_refused(rsps: responses.RequestsMock) -> None:
    plain = requests.Session()
    gl = make_gitlab(URL, "tok", session=plain)
    assert gl.session is plain
    retrying = requests.Session()
    retrying.mount("https://", HTTPAdapter(max_retries=Retry(total=3)))
    with pytest.raises(ValueError, match="retries on its own"):
        make_gitlab(URL, "tok", session=retrying)


def test_check_token_returns_username(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/user", json={"id": 5, "username": "incident-bot", "web_url": f"{URL}/incident-bot"})
    assert check_token(make_gitlab(URL, "tok")) == "incident-bot"


def test_check_token_401_is_one_line(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/user", status=401, json={"message": "401 Unauthorized"})
    with pytest.raises(GitLabConfigError) as info:
        check_token(make_gitlab(URL, "tok"))
    assert str(info.value) == (
        "GITLAB_TOKEN was rejected by https://gitlab.test: 401 Unauthorized (is it expired or missing the api scope?)"
    )


def test_check_token_403_names_the_status(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/user", status=403, json={"message": "403 Forbidden"})
    with pytest.raises(GitLabConfigError, match=r"^GitLab at https://gitlab.test refused GET /user: 403 "):
        check_token(make_gitlab(URL, "tok"))


def test_check_token_connection_refused_real_socket() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(GitLabConfigError) as info:
        check_token(make_gitlab(url, "tok", timeout=2.0))
    message = str(info.value)
    assert message.startswith(f"cannot reach GITLAB_URL {url}: ")
    assert "refused" in message.lower()
    assert "\n" not in message
