"""One log format for the bot's own lines and gunicorn's: text for people, or JSON lines for log pipelines.

``text``: ``2026-11-30 09:00:00 +0000 [1234] [INFO] bot.worker: job 3 (acme/security-incidents#12): ...``
``json``: one object per line with ``time``, ``level``, ``logger``, ``message``, and ``incident``, ``job``,
``event``, ``changes`` (what a reconcile did, one line each) when the record carries
them (``log.info(..., extra={"incident": ..., "job": ...})``).

The redacting filter (``bot.redact``) runs before these formatters, so what they print is already clean.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

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
