"""The one action a status page publish needs, decided from facts alone (pure).

:func:`plan_publish` takes the incident, the approved draft (its digest and text), whether the incident is at
``comms::all-clear``, and what the outbox recorded for this incident (the provider's incident id and the last
digest posted), and answers one :class:`Action`: ``create``, ``update``, ``resolve`` or ``nothing`` (with why).

Names the bot finds again. The provider incident's name is neutral, never the GitLab title: the policy's stem
(``Security incident update``) and an opaque reference, ``(ref 5d41402abc4b)``, that is an HMAC of the
instance, project and iid under the bot's secret, so that an outsider reading the status page cannot tell
which project had the incident, and the bot can find its own incident again after a lost answer or an empty
database. The same reference is Statuspage's metadata key (:data:`METADATA_NAMESPACE`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

METADATA_NAMESPACE = "incident_bot"
"""Statuspage metadata: "Top level values must be objects", so the key lives at ``{"incident_bot": {"key": ref}}``."""
REF_HEX = 12

Kind = Literal["create", "update", "resolve", "nothing"]


@dataclass(frozen=True)
class Draft:
    """The approved draft: its digest (8 hex characters) and its text, exactly as approved."""

    digest: str
    text: str


@dataclass(frozen=True)
class Recorded:
    """What the outbox holds for this incident's status page entry (all None for an empty database)."""

    remote_id: str | None = None
    """The provider's incident id, once a create was answered."""
    last_digest: str | None = None
    """The digest of the last text the provider acknowledged."""
    resolved: bool = False
    """A resolve was acknowledged."""


@dataclass(frozen=True)
class Action:
    kind: Kind
    reason: str
    """Why, in words (for ``nothing``: what a reply can tell the CMOC)."""
    item_key: str
    """The outbox item: one per incident, digest and kind, so a retry is the same row and a new digest a new one."""
    incident_key: str
    """The opaque reference of this incident (``5d41402abc4b``): the name's suffix and Statuspage's metadata key."""
    name: str
    """The exact provider incident name the bot creates and finds again."""
    remote_id: str | None
    """The provider incident to update or resolve; None: find it again by name/metadata first."""
    digest: str
    text: str

    @property
    def metadata(self) -> dict[str, dict[str, str]]:
        """Statuspage's ``metadata``: only the opaque key."""
        return {METADATA_NAMESPACE: {"key": self.incident_key}}


def incident_key(secret: str | bytes, instance: str, project: str | int, iid: int) -> str:
    """The opaque reference of one GitLab incident: HMAC-SHA256 of ``instance|project|iid`` under ``secret``,
    12 hex characters. Stable across restarts and replicas that share the secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the status page reference needs a secret (the bot's state key)")
    message = f"{instance.rstrip('/').lower()}|{project}|{iid}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:REF_HEX]


def incident_name(stem: str, key: str) -> str:
    """The provider incident's exact name: ``"<stem> (ref <key>)"``."""
    return f"{stem} (ref {key})"


def plan_publish(*, key: str, stem: str, draft: Draft, all_clear: bool, recorded: Recorded) -> Action:
    """The one action that makes the status page show ``draft`` (resolved when ``all_clear``).

    * nothing recorded: ``create`` (the adapter looks for the name first, so a lost answer is not created twice);
    * already resolved: ``nothing``;
    * all-clear: ``resolve`` with this text (also when the digest was posted as an update before);
    * a digest already posted: ``nothing``; a new digest: ``update``.
    """
    name = incident_name(stem, key)

    def action(kind: Kind, reason: str) -> Action:
        item = f"{key}:{kind}:{draft.digest}" if kind != "nothing" else ""
        return Action(kind, reason, item, key, name, recorded.remote_id, draft.digest, draft.text)

    if recorded.resolved:
        return action("nothing", "the status page incident is already resolved")
    if all_clear:
        return action("resolve", f"all-clear: resolve the status page incident with draft {draft.digest}")
    if recorded.remote_id is None and recorded.last_digest is None:
        return action("create", f"first publish: create the status page incident with draft {draft.digest}")
    if draft.digest == recorded.last_digest:
        return action("nothing", f"draft {draft.digest} is already on the status page")
    return action("update", f"post draft {draft.digest} to the status page incident")


def publish_refusals(*, labels: Iterable[str], impact_label: str, current_digest: str | None,
                     requested_digest: str | None, approved: bool, findings: Iterable[str]) -> list[str]:
    """Why ``publish status-page [DIGEST]`` must send nothing, in words; empty: it may go out.

    ``current_digest`` is the draft as the bot reads it now (None: no draft); ``requested_digest`` the one the
    command named (None: the current one); ``approved``: the current digest is approved; ``findings``: from
    :func:`bot.integrations.statuspage.safety.check_draft`.
    """
    if current_digest is None:
        return ["the status page child has no `## Draft` section to publish"]
    reasons: list[str] = []
    if requested_digest is not None and requested_digest.lower() != current_digest:
        reasons.append(f"draft {_digest(requested_digest)} is not the current draft (current: {current_digest})")
    elif not approved:
        reasons.append(f"draft {current_digest} is not approved")
    if impact_label not in set(labels):
        reasons.append(f"the incident does not carry ~{impact_label} (only live site incidents go to the status "
                       "page)")
    reasons.extend(f"the draft holds {finding}" for finding in findings)
    return reasons


def _digest(text: str) -> str:
    """A digest as the command gave it, cut to what a digest may hold (it is quoted back in a note)."""
    return "".join(c for c in text.lower() if c in "0123456789abcdef")[:8] or "(none)"
