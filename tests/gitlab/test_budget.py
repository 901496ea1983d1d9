"""GitLab's limits on new notes and issues: writes paced to them, a bare 429 waited out without spending an
attempt, and the budget shared by every store (replica) on one database.

GitLab's side is gitlabhq ``lib/gitlab/application_rate_limiter.rb`` (fixed windows of one minute aligned to Unix
time, refused when the count is above the threshold) and ``lib/api/helpers/rate_limiter.rb`` (the bare 429 body);
see ``bot/simgitlab/ratelimits.py`` and ``tests/simgitlab/test_simgitlab_ratelimits.py``. Time is fake: the
policy's and the budgets' clocks and sleeps are one FakeTime, and ``time.sleep`` fails the test.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gitlab
import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from responses.registries import OrderedRegistry

from bot.gitlab.budget import Budgets, BudgetWait, LimitSpec, LocalLedger
from bot.gitlab.callpolicy import CallPolicy
from bot.gitlab.connect import make_gitlab
from bot.gitlab.errors import GitLabCallError
from bot.simgitlab.ratelimits import THROTTLED_MESSAGE
from bot.store import JobState, SQLiteStore
from bot.worker import Outcome, Worker
from tests import store_inspect as peek
from tests.gitlab.faketime import FakeTime, no_real_sleep  # noqa: F401  (fixture)
from tests.hypothesis_profiles import examples

URL = "https://gitlab.test"
NOTES = f"{URL}/api/v4/projects/42/issues/7/notes"
WALL0 = 1_899_999_970.0  # 10 s into a Unix minute
THROTTLED = {"message": {"error": THROTTLED_MESSAGE}}
NOTE = {"id": 1, "body": "hi", "author": {"username": "incident-bot"}}


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime(WALL0)


@pytest.fixture
def seq() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mock:
        yield mock


def policy(ft: FakeTime, notes: int = 60, *, max_wait_s: float = 65.0, **kw: Any) -> CallPolicy:
    budgets = Budgets({"notes": notes, "issues": 200}, max_wait_s=max_wait_s, wallclock=ft.clock, sleep=ft.sleep)
    kw.setdefault("rate_per_minute", 10**9)
    kw.setdefault("burst", 1000)  # the general limit plays no part here
    return CallPolicy(clock=ft.clock, sleep=ft.sleep, wallclock=ft.clock, rng=random.Random(7), budgets=budgets, **kw)


def post_note(gl: gitlab.Gitlab, p: CallPolicy) -> Any:
    create = gl.projects.get(42, lazy=True).issues.get(7, lazy=True).notes.create
    return p.call(lambda: create({"body": "hi"}), step="post a comment", write="create", limit="notes")


def per_minute(times: list[float]) -> Counter[int]:
    """How GitLab counts: per Unix minute (``Time.now.to_i.divmod(interval)``)."""
    return Counter(int(t) // 60 for t in times)


# --------------------------------------------------------------------------- pacing


@settings(max_examples=examples(60), deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=300),
    gaps=st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=400),
)
def test_paced_grants_never_exceed_the_limit_in_any_minute(limit: int, gaps: list[float]) -> None:
    """Whatever the pattern of demand, no 60 s interval (so none of GitLab's windows) holds more than limit - 1."""
    spec, ledger = LimitSpec(limit), LocalLedger()
    now, granted = WALL0, []
    for gap in gaps:
        now += gap
        wait = ledger.budget_take("notes", now, spec.cap, spec.interval_s, float("inf"))
        granted.append(now + wait)
    granted.sort()
    busiest = max(sum(1 for t in granted[i:] if t < start + 60) for i, start in enumerate(granted))
    assert busiest <= max(1, limit - 1)
    assert max(per_minute(granted).values()) <= limit


def test_a_burst_of_notes_goes_at_once_and_the_rest_when_the_minute_allows(
    ft: FakeTime, seq: responses.RequestsMock
) -> None:
    for _ in range(20):
        seq.post(NOTES, status=201, json=NOTE)
    p = policy(ft, notes=10)
    sent = []
    for _ in range(20):
        post_note(make_gitlab(URL, "tok"), p)
        sent.append(ft.now)
    assert sent[:9] == pytest.approx([WALL0] * 9, abs=1e-3)  # one under GitLab's 10, for clock jitter
    assert sent[9:18] == pytest.approx([WALL0 + 60] * 9, abs=1e-3)
    assert sent[18:] == pytest.approx([WALL0 + 120] * 2, abs=1e-3)
    assert max(per_minute(sent).values()) <= 9
    assert p.stats.snapshot().throttled_s == pytest.approx(120, abs=1e-3)


def test_reads_and_updates_are_not_paced(ft: FakeTime, seq: responses.RequestsMock) -> None:
    p = policy(ft, notes=1)
    seq.post(NOTES, status=201, json=NOTE)
    post_note(make_gitlab(URL, "tok"), p)
    for _ in range(5):
        assert p.call(lambda: "read", step="read the incident") == "read"
    assert ft.sleeps == []


def test_a_limit_of_zero_is_no_budget(ft: FakeTime, seq: responses.RequestsMock) -> None:
    for _ in range(20):
        seq.post(NOTES, status=201, json=NOTE)
    p = policy(ft, notes=0)
    for _ in range(20):
        post_note(make_gitlab(URL, "tok"), p)
    assert ft.sleeps == []


# --------------------------------------------------------------------------- GitLab's bare 429


def test_a_bare_429_waits_for_gitlabs_next_minute_and_spends_no_attempt(
    ft: FakeTime, seq: responses.RequestsMock
) -> None:
    seq.post(NOTES, status=429, json=THROTTLED)  # no Retry-After, no RateLimit-*: as GitLab sends it
    seq.post(NOTES, status=201, json=NOTE)
    p = policy(ft, max_attempts=1)  # no retry left for anything else
    note = post_note(make_gitlab(URL, "tok"), p)
    assert note.id == 1
    assert ft.sleeps == [pytest.approx(51.0)]  # 10 s into the minute: to its end, plus a second of margin
    assert len(seq.calls) == 2
    assert p.stats.snapshot().failures == 0


def test_before_the_old_policy_spent_its_attempts_inside_the_refused_minute(
    ft: FakeTime, seq: responses.RequestsMock
) -> None:
    """What this replaces: without a budget a bare 429 is retried three times within seconds, then fails."""
    for _ in range(4):
        seq.post(NOTES, status=429, json=THROTTLED)
    old = CallPolicy(
        clock=ft.clock, sleep=ft.sleep, wallclock=ft.clock, rng=random.Random(7), rate_per_minute=10**9, burst=100
    )
    with pytest.raises(GitLabCallError) as err:
        post_note(make_gitlab(URL, "tok"), old)
    assert err.value.status == 429 and len(seq.calls) == 4
    assert ft.now - WALL0 < 4.0 and int(ft.now) // 60 == int(WALL0) // 60


def test_after_a_429_other_threads_hold_back_too(ft: FakeTime, seq: responses.RequestsMock) -> None:
    seq.post(NOTES, status=429, json=THROTTLED)
    seq.post(NOTES, status=201, json=NOTE)
    p = policy(ft)
    post_note(make_gitlab(URL, "tok"), p)
    refused_at = WALL0
    assert p.budgets is not None
    wait = p.budgets.ledger.budget_take("notes", refused_at, 59, 60.0, float("inf"))
    assert refused_at + wait >= (int(refused_at) // 60 + 1) * 60  # nobody's slot is left in the refused minute


def test_a_429_that_keeps_coming_defers_the_call(ft: FakeTime, seq: responses.RequestsMock) -> None:
    """Somebody else spends the same user's budget: after three refused minutes the call gives way."""
    for _ in range(3):
        seq.post(NOTES, status=429, json=THROTTLED)
    p = policy(ft)
    with pytest.raises(BudgetWait) as err:
        post_note(make_gitlab(URL, "tok"), p)
    assert err.value.transient and err.value.retry_after is not None and 0 < err.value.retry_after <= 61
    assert len(seq.calls) == 3 and len(ft.sleeps) == 2
    assert "api.notes_per_minute" in str(err.value)


def test_a_429_with_retry_after_is_the_general_limit_and_is_not_a_budget_matter(
    ft: FakeTime, seq: responses.RequestsMock
) -> None:
    seq.post(NOTES, status=429, headers={"Retry-After": "2"}, json={"message": "429 Too Many Requests"})
    seq.post(NOTES, status=201, json=NOTE)
    p = policy(ft)
    post_note(make_gitlab(URL, "tok"), p)
    assert ft.sleeps == [2.0]


def test_a_wait_beyond_limit_wait_s_is_not_slept(ft: FakeTime, seq: responses.RequestsMock) -> None:
    for _ in range(3):
        seq.post(NOTES, status=201, json=NOTE)
    p = policy(ft, notes=2, max_wait_s=10.0)  # one at once, then one a minute
    post_note(make_gitlab(URL, "tok"), p)
    with pytest.raises(BudgetWait) as err:
        post_note(make_gitlab(URL, "tok"), p)
    assert err.value.retry_after == pytest.approx(60.0)
    assert ft.sleeps == [] and len(seq.calls) == 1, "nothing sent, nothing reserved"


# --------------------------------------------------------------------------- the worker


class _Waits:
    """A reconciler whose first reconcile meets a spent budget."""

    def __init__(self) -> None:
        self.calls = 0

    def reconcile(self, ref: Any, **_kw: Any) -> Any:
        self.calls += 1
        raise BudgetWait("post a comment", str(ref), "GitLab's limit on new notes is spent", 42.0)


def test_the_worker_puts_a_job_back_until_the_budget_allows_without_failing_it(tmp_path: Path) -> None:
    now = [datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)]
    store = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal")
    try:
        store.record_delivery("d1", "7#1", "Issue Hook", now[0], b"{}")
        worker = Worker(store, _Waits(), worker_id="w:1", clock=lambda: now[0], settle=timedelta(0))  # type: ignore[arg-type]
        result = worker.run_once()
        assert result is not None and result.outcome is Outcome.DEFERRED
        job = peek.get_job(store, result.job_id)
        assert job.state is JobState.PENDING and job.attempts == 0 and job.last_error is None
        assert job.not_before == now[0] + timedelta(seconds=42)
        assert worker.run_once() is None, "not before GitLab's limit allows"
        now[0] += timedelta(seconds=42)
        assert worker.run_once() is not None
    finally:
        store.close()


# --------------------------------------------------------------------------- one budget for all replicas


def _replicas_stay_within(stores: list[Any], limit: int, minutes: int = 5) -> list[float]:
    """Three replicas with demand far above the limit, in fake time: each takes the next slot from its own
    store, one after the other; the grants all replicas got together."""
    spec = LimitSpec(limit)
    ready = [WALL0 + i * 0.1 for i in range(len(stores))]
    granted: list[float] = []
    while min(ready) < WALL0 + minutes * 60:
        i = ready.index(min(ready))
        wait = stores[i].budget_take("notes", ready[i], spec.cap, spec.interval_s, float("inf"))
        granted.append(ready[i] + wait)
        ready[i] += wait + 0.05  # the call takes 50 ms, then the replica wants the next slot
    return granted


def test_sqlite_stores_on_one_file_share_the_budget(tmp_path: Path) -> None:
    stores = [SQLiteStore(tmp_path / "bot.sqlite3", durability="normal") for _ in range(3)]
    try:
        granted = _replicas_stay_within(stores, limit=10)
    finally:
        for s in stores:
            s.close()
    assert max(per_minute(granted).values()) <= 10
    assert len(granted) >= 5 * 9 - 1  # and the budget is used, not starved


def test_postgres_replicas_draw_from_one_budget(postgres_database: Any) -> None:
    from bot.store.postgres import PostgresStore

    url = postgres_database.new_url()
    stores = [PostgresStore(url, durability="normal") for _ in range(3)]
    try:
        granted = _replicas_stay_within(stores, limit=10)
        assert max(per_minute(granted).values()) <= 10
        assert len(granted) >= 5 * 9 - 1

        # At the same instant, from three stores and three threads each: every slot is handed out once.
        spec = LimitSpec(60)
        waits: list[float] = []
        lock = threading.Lock()

        def take(store: PostgresStore) -> None:
            for _ in range(10):
                got = store.budget_take("issues:acme/security", WALL0, spec.cap, spec.interval_s, 1e9)
                with lock:
                    waits.append(got)

        threads = [threading.Thread(target=take, args=(s,)) for s in stores for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(waits) == [0.0] * 59 + [60.0] * 31  # 59 now, the rest a minute later: none twice

        # A refusal seen by one replica holds the others back until GitLab's next minute.
        stores[0].budget_block("notes:other", WALL0 + 50)
        assert stores[2].budget_take("notes:other", WALL0, 59, 60.0, 1e9) == pytest.approx(50.0)
        # A slot further than max_wait is told, not taken.
        assert stores[1].budget_take("notes:far", WALL0, 1, 100.0, 5.0) == 0.0
        assert stores[1].budget_take("notes:far", WALL0, 1, 100.0, 5.0) == pytest.approx(100.0)
        assert stores[2].budget_take("notes:far", WALL0, 1, 100.0, 5.0) == pytest.approx(100.0)
        assert stores[2].budget_take("notes:far", WALL0 + 100, 1, 100.0, 5.0) == 0.0
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- the operator's settings


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("notes_per_minute", -1, "api.notes_per_minute: input should be greater than or equal to 0"),
        ("issues_per_minute", "lots", "api.issues_per_minute"),
        ("limit_wait_s", 0, "api.limit_wait_s: input should be greater than 0"),
    ],
)
def test_a_mistyped_limit_is_told_in_one_line_naming_it(tmp_path: Path, key: str, value: Any, said: str) -> None:
    import yaml

    from bot.config import ConfigError, load_config

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "config" / "bot.yaml").read_text())
    data["api"][key] = value
    data["templates_dir"] = str(root / "issue_templates")
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert said in str(err.value) and "\n" not in str(err.value).strip()


def test_the_bundled_policy_paces_to_gitlab_com() -> None:
    from bot.config import load_config
    from bot.wiring import call_policy

    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "bot.yaml")
    budgets = call_policy(cfg.api).budgets
    assert budgets is not None
    assert {name: spec.per_minute for name, spec in budgets.specs.items()} == {"notes": 60, "issues": 200}
    assert budgets.max_wait_s == 65
