"""One log format for the bot's own lines and gunicorn's: text for people, or JSON lines for log pipelines.

``text``: ``2026-11-30 09:00:00 +0000 [1234] [INFO] bot.worker: job 3 (acme/security-incidents#12): ...``
``json``: one object per line with ``time``, ``level``, ``logger``, ``message``, and ``incident``, ``job``,
``event``, ``changes`` (what a reconcile did, one line each) when the record carries
them (``log.info(..., extra={"incident": ..., "job": ...})``).

The redacting filter (``bot.redact``) runs before these formatters, so what they print is already clean.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from bot.redact import redact

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
EXTRAS = ("incident", "job", "event", "changes")

_chosen = "text"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in EXTRAS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value if isinstance(value, int | float | bool | list) else str(value)
        if record.exc_info:  # the redacting filter folds exceptions into the message; this is a fallback
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def formatter(kind: str | None = None) -> logging.Formatter:
    kind = kind or _chosen
    if kind == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, DATE_FORMAT)


def choose(kind: str) -> None:
    """The process's format, also used by gunicorn's logger (same process, and inherited by its forks)."""
    global _chosen
    if kind not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {kind!r}")
    _chosen = kind


def chosen() -> str:
    return _chosen


def apply(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        handler.setFormatter(formatter())


def capture_stray_output() -> None:
    """Lines that bypass logging go through it, so that with ``json`` every line on stderr is an object.

    - ``warnings``: through the ``py.warnings`` logger (``logging.captureWarnings``);
    - "Exception ignored in ..." (``sys.unraisablehook``, e.g. a finaliser failing at interpreter exit): one
      line in the chosen format, written straight to fd 2 (logging's locks may be gone at that point). The
      one known artefact of a gevent receiver's exit, logging's weak-reference clean-up running while the
      hub's greenlets are finalised, is dropped: nothing of the bot's is lost there.
    """
    logging.captureWarnings(True)
    sys.unraisablehook = _unraisable


def _unraisable(unraisable: Any) -> None:
    exc = unraisable.exc_value
    where = getattr(unraisable.object, "__qualname__", None) or repr(unraisable.object)
    if isinstance(exc, RuntimeError) and "greenlet is being finalized" in str(exc) and "HandlerRef" in where:
        return
    # Written straight to fd 2: the logging handlers' redacting filter is not on this path.
    message = redact(f"exception ignored in {where}: {exc!r}")
    if _chosen == "json":
        detail = redact("".join(traceback.format_exception(unraisable.exc_type, exc, unraisable.exc_traceback)))
        line = json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "warning",
                "logger": "python",
                "message": message,
                "exception": detail,
            },
            ensure_ascii=False,
        )
    else:
        line = f"{datetime.now(UTC).strftime(DATE_FORMAT)} [{os.getpid()}] [WARNING] python: {message}"
    with contextlib.suppress(OSError):
        os.write(2, (line + "\n").encode("utf-8", "replace"))
