"""The key that signs the bot's state in GitLab (``bot.core.state``), from the settings.

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
from collections.abc import Mapping

from bot.errors import UserError
from bot.text.markers import StateKey

log = logging.getLogger(__name__)

ENV = "INCIDENT_BOT_STATE_KEY"
ENV_PREVIOUS = "INCIDENT_BOT_STATE_KEY_PREVIOUS"
_LABEL = b"incident-bot state key v1"


def derived_key(secret: str) -> bytes:
    """A key for signing state, derived from another secret with a label of its own."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def build_state_key(current: str | None, previous: str | None, token: str | None) -> StateKey:
    """The key from ``INCIDENT_BOT_STATE_KEY`` (and ``..._PREVIOUS``), else derived from ``GITLAB_TOKEN``."""
    token = (token or "").strip()
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


def state_key_from_env(environ: Mapping[str, str] | None = None) -> StateKey:
    """The state key the settings in ``environ`` (default: the process's environment) name."""
    from bot.settings import Settings

    settings = Settings.from_env(environ)
    return build_state_key(settings.state_key, settings.state_key_previous, settings.gitlab_token)
