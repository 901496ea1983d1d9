"""The bot's records in its comments (the keys of its status log, reminders, replies, final comms and comments on
children), signed so that only what the bot wrote is believed. Pure.

Each comment the bot posts carries one ``log`` marker: the keys of what it records (``reminder:…`` for a
reminder window, ``cmd:<note>`` for an answered command, ``child:<label>:<iid>`` for a child it opened, …) and,
in the status log's thread, ``thread``. The bot posts a thing only while its key is not recorded, so a key is
a promise that it was done. Maintainers, Owners and administrators can edit any comment (``admin_note``), so
the marker is signed like the state (``StateKey``, bound to the incident): a marker that does not verify is
not believed, and its comment is reported once in the status log.

An earlier version of the bot wrote these markers unsigned. Until an incident's signed state says its
records are signed (``BotState.signed_log``), unsigned markers in the bot's comments are believed as that
version believed them; the first reconcile after an upgrade re-signs every key only they hold in one status
log comment (``CARRIED``), then records in the signed state that from now on only signed markers count. An
unsigned key that the re-signed ones do not hold is then an edit: not believed, reported once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.model import Issue, LogEntry, Note
from bot.core.state import TRUSTED, scope_of
from bot.text.markers import MAX_MARKER_CHARS, Marker, StateKey, Trust, marker_spans, signed_marker, verify

LOG = "log"
THREAD = "thread"  # the marker field that says a comment belongs to the status log's thread
CARRIED = "carried"  # the marker field of keys re-signed from an earlier version's unsigned markers
RESIGNED = "records-signed"  # the status log key of the comment that re-signed them

_CHUNK = MAX_MARKER_CHARS - 400  # room for the kind, the other fields and the signature


def log_marker(key: StateKey, incident: Issue, keys: Iterable[str], **extra: Any) -> str:
    """The signed ``log`` marker recording ``keys`` for ``incident``."""
    return signed_marker(LOG, key, scope_of(incident), keys=list(keys), **extra)


def carried_markers(key: StateKey, incident: Issue, keys: Iterable[str]) -> str:
    """Signed ``log`` markers (``carried``) holding ``keys``, as many as their length needs, space-separated."""
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for k in sorted(keys):
        cost = len(k) * 6 + 3  # every character may be written as \\uXXXX
        if chunk and size + cost > _CHUNK:
            out.append(log_marker(key, incident, chunk, **{CARRIED: True}))
            chunk, size = [], 0
        chunk.append(k)
        size += cost
    if chunk:
        out.append(log_marker(key, incident, chunk, **{CARRIED: True}))
    return " ".join(out)


def _keys(found: Marker) -> frozenset[str]:
    raw = found.fields.get("keys")
    return frozenset(k for k in raw if isinstance(k, str)) if isinstance(raw, list) else frozenset()


@dataclass(frozen=True)
class NoteRecords:
    """What one of the bot's comments records, by how far it can be believed."""

    note: Note
    signed: frozenset[str] = frozenset()
    unsigned: frozenset[str] = frozenset()
    carried: frozenset[str] = frozenset()
    thread_signed: bool = False
    thread_unsigned: bool = False
    forged: tuple[Marker, ...] = ()  # signed, but not by this bot for this incident: edited or copied
    unsigned_markers: tuple[Marker, ...] = ()


def read_note(note: Note, key: StateKey, incident: Issue) -> NoteRecords:
    scope = scope_of(incident)
    signed: set[str] = set()
    unsigned: set[str] = set()
    carried: set[str] = set()
    thread_signed = thread_unsigned = False
    forged: list[Marker] = []
    plain: list[Marker] = []
    for _, _, found in marker_spans(note.body):
        if found.kind != LOG:
            continue
        trust = verify(found, key, scope)
        keys = _keys(found)
        if trust in TRUSTED:
            signed |= keys
            carried |= keys if found.fields.get(CARRIED) is True else set()
            thread_signed = thread_signed or found.fields.get(THREAD) is True
        elif trust == Trust.UNSIGNED:
            unsigned |= keys
            thread_unsigned = thread_unsigned or found.fields.get(THREAD) is True
            plain.append(found)
        else:
            forged.append(found)
    return NoteRecords(
        note, frozenset(signed), frozenset(unsigned), frozenset(carried), thread_signed, thread_unsigned,
        tuple(forged), tuple(plain),
    )


def read(notes: Sequence[Note], key: StateKey, incident: Issue) -> list[NoteRecords]:
    """The records in each of the bot's comments (the caller passes only comments the bot wrote)."""
    return [read_note(n, key, incident) for n in notes]


def any_keys(records: Sequence[NoteRecords]) -> frozenset[str]:
    """Every key, signed or not: what an earlier version believed (used only where nothing signed is left)."""
    out: set[str] = set()
    for r in records:
        out |= r.signed | r.unsigned
    return frozenset(out)


@dataclass(frozen=True)
class Belief:
    """The keys to believe, the comments of the status log's thread, what to re-sign and what to report."""

    logged: frozenset[str]
    thread_notes: tuple[Note, ...]
    to_resign: frozenset[str] = frozenset()
    reports: tuple[LogEntry, ...] = field(default=())
    # Each believed key's first record: the oldest of the bot's comments holding it (its time and link).
    first_at: Mapping[str, Note] = field(default_factory=dict)


def _fingerprint(note: Note, markers: Sequence[Marker]) -> str:
    text = repr((note.id, sorted(repr(sorted(m.fields.items())) for m in markers)))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def believe(records: Sequence[NoteRecords], *, legacy: bool) -> Belief:
    """What to believe. ``legacy``: the incident's records are not signed yet (an earlier version's): unsigned
    markers count too, and the keys only they hold are to be re-signed. Otherwise only signed markers count,
    and an unsigned key the re-signed ones do not hold is an edit, like a marker whose signature fails."""
    signed: set[str] = set()
    carried: set[str] = set()
    for r in records:
        signed |= r.signed
        carried |= r.carried
    logged = set(signed)
    thread: list[Note] = []
    resign: set[str] = set()
    reports: list[LogEntry] = []
    for r in sorted(records, key=lambda r: r.note.id):
        if r.thread_signed or (legacy and r.thread_unsigned):
            thread.append(r.note)
        if legacy:
            logged |= r.unsigned
            resign |= r.unsigned - signed
            suspect = list(r.forged)
        else:
            suspect = [*r.forged, *(m for m in r.unsigned_markers if _keys(m) - carried)]
        if suspect:
            reports.append(
                LogEntry(
                    f"records:{_fingerprint(r.note, suspect)}",
                    f"the hidden record of the bot's comment {r.note.id} was changed by someone other than the "
                    "bot, so it is not believed: whatever only that record claims was done (a reminder, a reply, "
                    "a log line) is done again if it is still due. GitLab does not tell the bot who edited a "
                    "comment; only Maintainers, Owners and administrators can edit the bot's comments",
                )
            )
    first_at: dict[str, Note] = {}
    for r in sorted(records, key=lambda r: r.note.id):
        if r.note.created_at is not None:
            # A re-signed (carried) key was recorded earlier than the comment that re-signed it: no time.
            for k in ((r.signed - r.carried) | (r.unsigned if legacy else frozenset())) & logged:
                first_at.setdefault(k, r.note)
    return Belief(frozenset(logged), tuple(thread), frozenset(resign), tuple(reports), first_at)


def keys_in(body: str, key: StateKey, incident: Issue, *, legacy: bool) -> frozenset[str]:
    """The keys one of the bot's comments records, as ``believe`` would count them."""
    r = read_note(Note(0, body, ""), key, incident)
    return r.signed | r.unsigned if legacy else r.signed
