"""A failure that cannot pass with time is dead at once, with its reason; logs and the dead letters name
incidents by project path, while the job key stays the numeric project id."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from bot.commands.cli import main
from bot.store import JobState, SQLiteStore
from bot.worker import Outcome, Worker
from tests import store_inspect as peek


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal")
    yield s
    s.close()


def _payload(path: str, iid: int) -> bytes:
    return json.dumps({"object_kind": "issue", "project": {"path_with_namespace": path}, "object_attributes": {
        "iid": iid}}).encode()


def test_a_missing_incident_is_dead_at_once_with_the_reason_and_named_by_path(w, store, clock, caplog):
    key = f"{w.project_id}#999"
    store.record_delivery("d1", key, "Issue Hook", clock(), _payload(w.project, 999))
    worker = Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, settle=timedelta(0))
    with caplog.at_level(logging.INFO, logger="bot.worker"):
        result = worker.run_once()
    assert result is not None and result.outcome is Outcome.PERMANENT
    job = peek.get_job(store, result.job_id)
    assert job.state is JobState.DEAD and job.attempts == 1 and job.incident_key == key
    assert (job.last_error or "").startswith(f"{w.project}#999: read the incident failed: 404")
    assert "dead at once" in (job.last_error or "")
    assert f"({w.project}#999)" in caplog.text and key not in caplog.text
    clock.advance(hours=1)
    assert worker.run_once() is None, "not retried"


def test_dead_letters_list_names_the_incident_by_path(w, store, clock, tmp_path, monkeypatch, capsys):
    key = f"{w.project_id}#999"
    store.record_delivery("d1", key, "Issue Hook", clock(), _payload(w.project, 999))
    Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, settle=timedelta(0)).run_once()
    monkeypatch.setenv("INCIDENT_BOT_DB", str(tmp_path / "bot.sqlite3"))
    assert main(["dead-letters", "list"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.split("\t")[1] == f"{w.project}#999"


def test_a_job_the_sweep_queued_is_named_by_the_path_the_bot_last_saw(w, store, clock, caplog):
    iid = w.incident("severity::3")
    worker = Worker(store, w.reconciler(clock=clock), worker_id="w:1", clock=clock, settle=timedelta(0))
    store.enqueue(f"{w.project_id}#{iid}", clock(), "sweep")
    with caplog.at_level(logging.INFO, logger="bot.worker"):
        worker.run_once()
        store.enqueue(f"{w.project_id}#{iid}", clock(), "sweep")
        worker.run_once()
    assert f"job 2 ({w.project}#{iid}): no change (reconciled in " in caplog.text


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "bot.sqlite3", durability="normal")
    else:
        from bot.store import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres_database").new_url())
    yield s
    s.close()


def test_both_stores_find_the_newest_delivery_of_a_job(any_store, clock):
    first = any_store.record_delivery("d1", "42#1", "Issue Hook", clock(), _payload("acme/old-name", 1))
    any_store.record_delivery("d2", "42#1", "Note Hook", clock(), _payload("acme/new-name", 1))
    assert first.job_id is not None
    newest = any_store.latest_delivery(first.job_id)
    assert newest is not None and newest.delivery_id == "d2"
    assert any_store.latest_delivery(first.job_id + 100) is None
