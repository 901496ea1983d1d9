"""Log lines: `--log-format json` gives one object per line for pipelines; text lines of the bot and of
gunicorn look the same; the redacting filter stays on every handler."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from gunicorn.config import Config as GunicornConfig

from bot import logformat
from bot.redact import RedactingFilter
from bot.web.server import RedactingLogger
from tests.conftest import ROOT


def _sweep(sim, w, tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "INCIDENT_BOT_"))}
    env = clean | {
        "GITLAB_URL": sim.url,
        "GITLAB_TOKEN": sim.token,
        "INCIDENT_BOT_STATE_KEY": "k" * 32,
        "INCIDENT_BOT_DB": str(tmp_path / "bot.sqlite3"),
        "INCIDENT_BOT_SCOPE": w.project,
        "INCIDENT_BOT_CONFIG": str(ROOT / "config" / "bot.yaml"),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "sweep", "--log-level", "info", *extra],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sweep_logs_json_lines_naming_the_incident_and_job(sim, w, tmp_path):
    iid = w.incident("severity::1", "comms-email")
    result = _sweep(sim, w, tmp_path, "--log-format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    (done,) = [r for r in records if "reconciled" in r["message"]]
    assert done["incident"] == f"{w.project}#{iid}" and isinstance(done["job"], int) and done["level"] == "info"
    # What the job did, as the status log says it: one line per entry, plain text (no Markdown escapes).
    engaged, director, opened, *writes = done["changes"]
    # Every write is there: the checklist posted, the child opened and linked, the SEOC assigned.
    assert writes[0] == "posted the engagement checklist"
    assert any(w.startswith("create confidential child issue") for w in writes)
    assert any(w.startswith("link child #2") for w in writes)
    assert any(w.startswith("assign the incident to @sec-oncall") for w in writes)
    assert engaged.startswith("engaged the communications plan because severity is critical (label severity::1)")
    assert director.startswith("engage Sr. Director of Security: DRI @sec-incident-manager, every 1h")
    assert opened == "opened #2 Incident response customer email for @mpm-oncall because comms-email is set"
    said = "; ".join(done["changes"])
    assert done["message"].startswith(f"job {done['job']} ({w.project}#{iid}): {said} (reconciled in ")
    assert sim.token not in result.stderr


def test_sweep_text_lines_keep_the_readable_format(sim, w, tmp_path):
    w.incident("severity::1")
    result = _sweep(sim, w, tmp_path)
    lines = [line for line in result.stderr.splitlines() if "reconciled" in line]
    assert len(lines) == 1
    assert "[INFO] bot.worker: job 1 (acme/security-incidents#1): engaged the communications plan because" in lines[0]


def test_gunicorn_lines_look_like_the_bots_and_are_redacted(monkeypatch):
    monkeypatch.setattr(logformat, "_chosen", "text")
    glog = RedactingLogger(GunicornConfig())
    handler = glog.error_log.handlers[-1]  # gunicorn's own stderr handler
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Listening at: %s", ("x",), None)
    bot_line = logformat.formatter("text").format(
        logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Listening at: %s", ("x",), None)
    )
    assert handler.formatter is not None and handler.formatter.format(record) == bot_line
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in glog.error_log.handlers)


@pytest.mark.parametrize("kind", ["text", "json"])
def test_gunicorn_follows_the_chosen_format(monkeypatch, kind):
    monkeypatch.setattr(logformat, "_chosen", kind)
    glog = RedactingLogger(GunicornConfig())
    handler = glog.error_log.handlers[-1]
    line = handler.format(logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting", (), None))
    if kind == "json":
        assert json.loads(line)["message"] == "Booting"
    else:
        assert line.endswith("[INFO] gunicorn.error: Booting")


def test_an_exception_python_could_not_raise_is_one_json_line(monkeypatch, capfd):
    """``sys.unraisablehook`` output ("Exception ignored in ...") bypasses logging; under json it is an object."""
    monkeypatch.setattr(logformat, "_chosen", "json")

    def finaliser() -> None: ...

    try:
        raise ValueError("boom")
    except ValueError as exc:
        unraisable = type(
            "U",
            (),
            {
                "exc_type": ValueError,
                "exc_value": exc,
                "exc_traceback": exc.__traceback__,
                "object": finaliser,
                "err_msg": None,
            },
        )()
    logformat._unraisable(unraisable)
    (line,) = capfd.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "warning" and "finaliser" in record["message"] and "boom" in record["message"]


def test_an_exception_python_could_not_raise_has_its_secrets_redacted(monkeypatch, capfd):
    """That line bypasses the logging handlers' redacting filter, so it redacts by itself."""
    from bot.redact import register_secret

    register_secret("glpat-unraisable-secret-1234")
    for kind in ("json", "text"):
        monkeypatch.setattr(logformat, "_chosen", kind)
        try:
            raise RuntimeError("token glpat-unraisable-secret-1234 refused")
        except RuntimeError as exc:
            unraisable = type(
                "U",
                (),
                {
                    "exc_type": RuntimeError,
                    "exc_value": exc,
                    "exc_traceback": exc.__traceback__,
                    "object": len,
                    "err_msg": None,
                },
            )()
        logformat._unraisable(unraisable)
        err = capfd.readouterr().err
        assert "refused" in err and "glpat-unraisable-secret-1234" not in err, err
