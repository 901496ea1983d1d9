"""Keep credentials out of everything the bot prints: one place for logs, errors, HTTP answers and stderr.

Two layers. :func:`redact` rewrites what looks like a credential in any text: the password of a URL
(``scheme://user:password@host``), ``password=...`` in a libpq connection string or URL query, and
every secret value the process was configured with (:func:`register_secret`, :func:`secrets_from_env`).
:class:`RedactingFilter` applies it to every log record, so a stray line (a driver's exception, a
third-party library) cannot leak what the code around it did not think of.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping

MASK = "***"

SECRET_ENV = re.compile(
    r"(GITLAB|INCIDENT_BOT|SLACK|PAGERDUTY|STATUSIO|STATUSPAGE)_\w*(TOKEN|SECRET|KEY|PASSWORD)(_PREVIOUS)?"
    r"|PAGERDUTY_ROUTING_KEY_\w+"
)
"""Environment variables whose whole value is a secret (``GITLAB_TOKEN``, ``GITLAB_WEBHOOK_SECRET``,
``PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER``, ``STATUSIO_API_KEY``, ...)."""
URL_ENV = ("INCIDENT_BOT_DB", "GITLAB_URL")
"""Environment variables holding a URL that may carry a password."""

# scheme://user:password@host -> scheme://user:***@host (the password may hold anything but '@' and '/').
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@/\s]*)(?=@)")
# password=... in a query string or a libpq key/value string (quoted or not).
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s&;]+)", re.IGNORECASE)
_MIN_SECRET = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value (and its trimmed form) wherever it appears from now on."""
    if not value:
        return
    with _lock:
        for candidate in (value, value.strip()):
            if len(candidate) >= _MIN_SECRET:
                _secrets.add(candidate)


def url_password(url: str) -> str | None:
    """The password inside a URL or libpq string, if it has one."""
    match = _URL_PASSWORD.search(url) or _KV_PASSWORD.search(url)
    return match.group("pw").strip("'") if match else None


def secrets_from_env(environ: Mapping[str, str]) -> None:
    """Register the secrets in ``environ`` (see :func:`bot.settings.register_secrets`): tokens, and the
    database URL's password."""
    for name, value in environ.items():
        if SECRET_ENV.fullmatch(name):
            register_secret(value)
    for name in URL_ENV:
        register_secret(url_password(environ.get(name, "")))


def redact(text: str) -> str:
    """``text`` with every URL password, ``password=`` value and registered secret replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Redacts each record's final message (arguments and exception text included) before any handler
    formats it; add it to handlers, so records of every logger that reach them pass through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned += "\n" + redact(text)
            record.exc_info = None
        if record.exc_text:
            cleaned += "\n" + redact(record.exc_text)
            record.exc_text = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.msg, record.args = cleaned, None
        return True


def install(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add the filter to these handlers (default: the root logger's), once each."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
