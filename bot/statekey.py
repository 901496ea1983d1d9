"""The key that signs the bot's state in GitLab (``bot.core.state``), from the environment.

``INCIDENT_BOT_STATE_KEY`` (or ``INCIDENT_BOT_STATE_KEY_FILE``): a secret of at least 16 characters,
the same for every replica and worker. ``INCIDENT_BOT_STATE_KEY_PREVIOUS`` (or ``..._PREVIOUS_FILE``):
the key before a rotation; what it signed is still believed and re-signed with the new key at the
next write.

Without a dedicated key the key is derived from ``GITLAB_TOKEN`` (HMAC-SHA256 with a label of its
own, so the token itself is never used as a key). Whoever holds the token can write as the bot anyway,
so this is no weaker, but rotating the token would make every recorded hand-off and snooze
unverifiable: a one-line warning says so. A key derived from the current token is always believed as
a previous key, so setting a dedicated key later loses nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from bot.errors import UserError
from bot.markers import StateKey
from bot.redact import register_secret

log = logging.getLogger(__name__)

ENV = "INCIDENT_BOT_STATE_KEY"
ENV_PREVIOUS = "INCIDENT_BOT_STATE_KEY_PREVIOUS"
_LABEL = b"incident-bot state key v1"


def derived_key(secret: str) -> bytes:
    """A key for signing state, derived from another secret with a label of its own."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def _read(environ: Mapping[str, str], name: str) -> str | None:
    """``NAME`` or the contents of the file ``NAME_FILE`` (surrounding whitespace stripped), or None."""
    value = environ.get(name, "")
    path = environ.get(f"{name}_FILE", "")
    if value and path:
        raise UserError(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{name}_FILE={path}: cannot read it ({exc.__class__.__name__})") from None
    value = value.strip()
    if not value:
        return None
    register_secret(value)  # read from a file, it is not in the environment that redaction scans
    if len(value) < 16:
        raise UserError(f"{name} is too short: use at least 16 random characters (e.g. `openssl rand -hex 32`)")
    return value


def state_key_from_env(environ: Mapping[str, str] | None = None) -> StateKey:
    env = os.environ if environ is None else environ
    current, previous = _read(env, ENV), _read(env, ENV_PREVIOUS)
    token = env.get("GITLAB_TOKEN", "").strip()
    olds = [k for k in (previous.encode() if previous else None, derived_key(token) if token else None) if k]
    if current:
        return StateKey(current.encode(), tuple(olds))
    if not token:
        raise UserError(f"{ENV} is not set (nor GITLAB_TOKEN to derive a key from): the bot cannot sign its state")
    log.warning(
        "%s is not set: the bot's state in GitLab is signed with a key derived from GITLAB_TOKEN; "
        "set a dedicated key, or rotating the token will make recorded hand-offs and snoozes unverifiable",
        ENV,
    )
    return StateKey(derived_key(token), tuple(k for k in olds if k != derived_key(token)))
