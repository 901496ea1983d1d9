"""Latency, scripted and random faults, crashes, and server lifecycle."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import gitlab
import pytest
import requests
from gitlab.v4.objects import Project

from bot.simgitlab import SimulatedGitLab

FREE = "sec/incidents"


def get(sim: SimulatedGitLab, path: str = "/user", timeout: float = 2.0) -> requests.Response:
    return requests.get(f"{sim.url}/api/v4{path}", headers={"PRIVATE-TOKEN": sim.token}, timeout=timeout)


def post_issue(sim: SimulatedGitLab, title: str, timeout: float = 2.0) -> requests.Response:
    return requests.post(
        f"{sim.url}/api/v4/projects/sec%2Fincidents/issues",
        json={"title": title},
        headers={"PRIVATE-TOKEN": sim.token},
        timeout=timeout,
    )


def titles(sim: SimulatedGitLab) -> list[str]:
    return [i["title"] for i in sim.state.issues(FREE)]


def test_429_with_retry_after_seconds(sim: SimulatedGitLab) -> None:
    sim.retry_after = 7
    sim.inject("429")
    r = get(sim)
    assert r.status_code == 429 and r.text == "Retry later\n"
    assert r.headers["Retry-After"] == "7"
    assert r.headers["RateLimit-Remaining"] == "0" and r.headers["RateLimit-Limit"] == "2000"
    parsedate_to_datetime(r.headers["RateLimit-ResetTime"])
    assert get(sim).status_code == 200  # times=1 by default


def test_429_with_http_date(sim: SimulatedGitLab) -> None:
    sim.inject("429-date")
    r = get(sim)
    assert r.status_code == 429
    retry_at = parsedate_to_datetime(r.headers["Retry-After"])
    assert retry_at == parsedate_to_datetime(r.headers["RateLimit-ResetTime"])
    assert int(r.headers["RateLimit-Reset"]) == int(retry_at.timestamp())


def test_server_errors(sim: SimulatedGitLab) -> None:
    sim.inject("500")
    sim.inject("502")
    sim.inject("503")
    first, second, third = get(sim), get(sim), get(sim)
    assert first.status_code == 500 and first.json() == {"message": "500 Internal Server Error"}
    assert second.status_code == 502 and second.headers["Content-Type"] == "text/html" and "Bad Gateway" in second.text
    assert third.status_code == 503 and "Unavailable" in third.text
    assert [f["kind"] for f in sim.fault_log] == ["500", "502", "503"]


def test_timeout_holds_then_drops(sim: SimulatedGitLab) -> None:
    sim.timeout_hold = 0.3
    sim.inject("timeout", times=2)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        get(sim, timeout=0.1)
    with pytest.raises(requests.ConnectionError, match="closed connection without response"):
        get(sim, timeout=2)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert [r.status for r in sim.requests] == [None, None]


def test_reset_is_a_connection_reset(sim: SimulatedGitLab) -> None:
    sim.inject("reset")
    with pytest.raises(requests.ConnectionError) as err:
        get(sim)
    assert "reset by peer" in str(err.value)
    assert get(sim).status_code == 200


def test_fault_scoping_and_applied_writes(sim: SimulatedGitLab) -> None:
    sim.inject("502", method="POST", path_regex=r"/issues$", applied=True)
    sim.inject("500", method="POST", applied=False)
    sim.inject("429", method="POST", applied=True)  # a 429 is never applied
    assert get(sim).status_code == 200  # GETs are not matched
    assert post_issue(sim, "landed").status_code == 502
    assert post_issue(sim, "lost").status_code == 500
    assert post_issue(sim, "throttled").status_code == 429
    assert post_issue(sim, "normal").status_code == 201
    assert titles(sim) == ["landed", "normal"]
    assert [(f["kind"], f["applied"]) for f in sim.fault_log] == [("502", True), ("500", False), ("429", False)]
    assert sim.faults.pending == 0


def test_default_applied_split_is_seeded(sim: SimulatedGitLab) -> None:
    sim.inject("503", times=12, method="POST")
    for n in range(12):
        assert post_issue(sim, f"t{n}").status_code == 503
    applied = [f["applied"] for f in sim.fault_log]
    assert True in applied and False in applied
    assert titles(sim) == [f"t{n}" for n, hit in enumerate(applied) if hit]


def run_random(seed: int) -> list[int | None]:
    with SimulatedGitLab() as sim:
        sim.random_faults(rate=0.5, kinds=["500", "503", "429"], seed=seed)
        return [get(sim).status_code for _ in range(16)]


def test_random_faults_are_reproducible() -> None:
    first = run_random(7)
    assert first == run_random(7)
    assert 200 in first and set(first) - {200}


def test_crash_after_writes_then_recover(sim: SimulatedGitLab, project: Project) -> None:
    sim.crash_after_writes(2)
    project.issues.create({"title": "one"})
    with pytest.raises(requests.ConnectionError):
        project.issues.create({"title": "two"})
    assert titles(sim) == ["one", "two"]  # the crashing write was applied
    assert sim.crashed
    with pytest.raises(requests.ConnectionError):
        get(sim)
    sim.recover()
    assert get(sim).status_code == 200
    assert [(f["kind"], f["applied"]) for f in sim.fault_log] == [("crash", True)]
    assert [r.fault for r in sim.requests][-3:] == ["crash", "crashed", None]


def test_python_gitlab_retry_duplicates_an_applied_502(sim: SimulatedGitLab) -> None:
    sim.inject("502", method="POST", applied=True)
    gl = gitlab.Gitlab(sim.url, private_token=sim.token, retry_transient_errors=True)
    gl.projects.get(FREE, lazy=True).issues.create({"title": "child"})
    assert titles(sim) == ["child", "child"]


def test_latency_is_per_request_and_concurrent(sim: SimulatedGitLab) -> None:
    sim.latency = 0.2
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: get(sim).status_code, range(4)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 4
    assert 0.2 <= elapsed < 0.6


def test_stop_is_quick_and_releases_the_port() -> None:
    sim = SimulatedGitLab().start()
    port = int(sim.url.rsplit(":", 1)[1])
    session = requests.Session()
    assert session.get(f"{sim.url}/api/v4/user", headers={"PRIVATE-TOKEN": sim.token}, timeout=2).ok
    sim.inject("timeout")
    sim.timeout_hold = 30
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(get, sim, "/user", 5)
        time.sleep(0.1)
        started = time.monotonic()
        sim.stop()
        assert time.monotonic() - started < 0.5
        with pytest.raises(requests.ConnectionError):
            held.result()
    with socket.socket() as sock:  # the listening port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    assert sim.state.base_url.startswith("http://127.0.0.1:")
