"""The simulated workspace: channels, users, messages, and the Web API methods over them (no HTTP here)."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BOT_USER = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T00000001"
MAX_TEXT = 40_000
"""chat.postMessage (its method page, "Truncating content"): Slack truncates past 40,000 characters and
lists ``msg_too_long`` ("Message text is too long"); the simulator answers that error past the limit."""
CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
"""conversations.create (its method page, "Naming"): "Channel names may only contain lowercase letters, numbers,
hyphens, and underscores, and must be 80 characters or less"."""
CHANNEL_NAME_MAX = 80
INVITE_MAX = 1000
"""conversations.invite: "A comma separated list of user IDs. Up to 1000 users may be listed"."""
ALL_SCOPES = frozenset({"chat:write", "channels:read", "groups:read", "im:write", "users:read", "users:read.email",
                        "channels:history", "groups:history", "im:history", "groups:write", "channels:manage"})
"""The scopes the simulated token has when a test does not set ``SlackState.scopes``."""
LIST_LIMIT_MAX = 999
"""conversations.list's ``limit``: "Must be an integer under 1000" (its method page); more is ``invalid_limit``."""
HISTORY_LIMIT_MAX = 999
"""conversations.history's ``limit``: "Maximum of 999" (its method page); fewer come back than asked."""
DISTRIBUTED_HISTORY_LIMIT = 15
"""Slack changelog 2025-05-29, "Rate limit changes for non-Marketplace apps": for a commercially distributed
app outside the Marketplace "the maximum and default for the limit parameter has been reduced to 15"."""


class SlackFailure(Exception):
    """A Web API answer ``{"ok": false, "error": code}``."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class Channel:
    id: str
    name: str
    private: bool = False
    member: bool = True
    """Whether the bot is in it."""
    archived: bool = False
    im_user: str | None = None
    """For a direct message conversation: the other person."""
    creator: str = "U00000000"
    """Who created it (the conversation object's ``creator``): the bot's user for a channel it created."""
    members: set[str] = field(default_factory=set)
    """The people in it besides the bot (``member`` says whether the bot is)."""

    def info(self) -> dict[str, Any]:
        if self.im_user is not None:
            return {"id": self.id, "is_im": True, "user": self.im_user, "is_member": True}
        return {"id": self.id, "name": self.name, "is_channel": not self.private, "is_group": self.private,
                "is_private": self.private, "is_archived": self.archived, "is_member": self.member,
                "creator": self.creator}


@dataclass
class User:
    id: str
    name: str
    email: str | None = None
    bot: bool = False


@dataclass
class Message:
    ts: str
    user: str
    text: str
    metadata: dict[str, Any] | None = None
    edited: int = 0
    bot_id: str | None = None
    """Set for a message another app's bot posted (the bot's own carry ``BOT_ID``)."""

    def as_json(self, with_metadata: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts}
        if self.user == BOT_USER:
            out["bot_id"] = BOT_ID
        elif self.bot_id:
            out["bot_id"] = self.bot_id
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        if with_metadata and self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _page(items: list[Any], args: dict[str, Any], default: int, maximum: int,
          strict: bool = False) -> tuple[list[Any], str]:
    """One page of ``items`` from the ``cursor``/``limit`` arguments, and the next cursor ("" at the end).
    ``strict``: a ``limit`` above ``maximum`` is ``invalid_limit`` (else fewer items come back)."""
    try:
        asked = int(args.get("limit") or default)
    except ValueError:
        raise SlackFailure("invalid_limit") from None
    if strict and asked > maximum:
        raise SlackFailure("invalid_limit")
    limit = min(max(asked, 1), maximum)
    cursor = str(args.get("cursor") or "")
    if cursor and not cursor.startswith("next:"):
        raise SlackFailure("invalid_cursor")
    start = int(cursor[5:]) if cursor else 0
    end = start + limit
    return items[start:end], (f"next:{end}" if end < len(items) else "")


@dataclass
class SlackState:
    """Everything the simulated workspace knows. ``now`` gives the seconds used in message ``ts``."""

    now: Callable[[], float]
    channels: dict[str, Channel] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)
    """Per conversation id, oldest first."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    history_limit: int = HISTORY_LIMIT_MAX
    """The most messages a ``conversations.history`` page holds (15 for a distributed non-Marketplace app)."""
    scopes: set[str] | None = None
    """The bot token's scopes where a method checks them (channel creation and invites); None: all granted."""
    _seq: int = 0

    def __post_init__(self) -> None:
        self.users.setdefault(BOT_USER, User(BOT_USER, "incident-bot", bot=True))

    # ----------------------------------------------------------- set up

    def add_channel(self, name: str, *, member: bool = True, private: bool = False, archived: bool = False,
                    id: str | None = None) -> Channel:
        with self.lock:
            cid = id or f"{'G' if private else 'C'}{len(self.channels) + 1:08d}"
            channel = Channel(cid, name.lstrip("#"), private=private, member=member, archived=archived)
            self.channels[cid] = channel
            self.messages.setdefault(cid, [])
            return channel

    def add_user(self, name: str, email: str | None = None, *, bot: bool = False, id: str | None = None) -> User:
        with self.lock:
            uid = id or f"U{len(self.users) + 1:08d}"
            user = User(uid, name, email, bot)
            self.users[uid] = user
            return user

    def say(self, channel: str, text: str, user: str = "U00000000", metadata: dict[str, Any] | None = None,
            bot_id: str | None = None) -> str:
        """A message from someone else (or the bot, with ``user=BOT_USER``; another app's bot with ``bot_id``)
        in ``channel``; its ts."""
        with self.lock:
            return self._append(channel, Message(self._ts(), user, text, metadata, bot_id=bot_id))

    def texts(self, channel: str) -> list[str]:
        """The conversation's message texts, oldest first."""
        with self.lock:
            return [m.text for m in self.messages.get(channel, [])]

    def bot_messages(self, channel: str | None = None) -> list[Message]:
        with self.lock:
            chans = [channel] if channel else list(self.messages)
            return [m for c in chans for m in self.messages.get(c, []) if m.user == BOT_USER]

    def keys(self, channel: str | None = None) -> list[str]:
        """Metadata keys of every bot message (duplicates kept: a key twice means a message posted twice)."""
        return [str((m.metadata or {}).get("event_payload", {}).get("key"))
                for m in self.bot_messages(channel) if m.metadata]

    def dm_channel(self, user: str) -> str:
        return f"D{user[1:]}"

    # ---------------------------------------------------------- helpers

    def _ts(self) -> str:
        self._seq += 1
        return f"{int(self.now()):d}.{self._seq:06d}"

    def _append(self, channel: str, message: Message) -> str:
        self.messages.setdefault(channel, []).append(message)
        return message.ts

    def _channel(self, cid: str) -> Channel:
        channel = self.channels.get(str(cid))
        if channel is None or (channel.private and not channel.member):
            raise SlackFailure("channel_not_found")
        return channel

    # ------------------------------------------------------------ methods

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run one Web API method; its answer without ``ok`` (a :class:`SlackFailure` for an error)."""
        handler = METHODS.get(method)
        if handler is None:
            raise SlackFailure("unknown_method")
        with self.lock:
            return handler(self, args)

    def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://sim.slack.test/", "team": "Simulated", "user": "incident-bot", "team_id": TEAM_ID,
                "user_id": BOT_USER, "bot_id": BOT_ID}

    def conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(str(args.get("types") or "public_channel").split(","))
        chans = [c for c in self.channels.values() if c.im_user is None
                 and (("private_channel" in types and c.private and c.member) or
                      ("public_channel" in types and not c.private))
                 and not (c.archived and _flag(args.get("exclude_archived")))]
        page, cursor = _page(chans, args, 100, LIST_LIMIT_MAX, strict=True)
        return {"channels": [c.info() for c in page], "response_metadata": {"next_cursor": cursor}}

    def conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(args.get("channel", "")).info()}

    def conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise SlackFailure("not_enough_users" if not users else "too_many_users")
        user = self.users.get(users[0])
        if user is None:
            raise SlackFailure("user_not_found")
        if user.bot:
            raise SlackFailure("cannot_dm_bot")
        cid = self.dm_channel(user.id)
        if cid not in self.channels:
            self.channels[cid] = Channel(cid, "", private=True, member=True, im_user=user.id)
            self.messages.setdefault(cid, [])
        return {"channel": {"id": cid}}

    def conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel", ""))
        if not channel.member and channel.im_user is None:
            raise SlackFailure("not_in_channel")
        newest_first = list(reversed(self.messages.get(channel.id, [])))
        # "oldest: Only messages after this Unix timestamp will be included in results" (inclusive only
        # with ``inclusive``), as conversations.history's method page says.
        if args.get("oldest"):
            try:
                oldest = float(args["oldest"])
            except ValueError:
                raise SlackFailure("invalid_ts_oldest") from None
            inclusive = _flag(args.get("inclusive"))
            newest_first = [m for m in newest_first if float(m.ts) > oldest or (inclusive and float(m.ts) == oldest)]
        page, cursor = _page(newest_first, args, min(100, self.history_limit), self.history_limit)
        meta = _flag(args.get("include_all_metadata"))
        return {"messages": [m.as_json(meta) for m in page], "has_more": bool(cursor),
                "response_metadata": {"next_cursor": cursor}}

    def _postable(self, cid: str) -> Channel:
        channel = self._channel(cid)
        if channel.archived:
            raise SlackFailure("is_archived")
        if not channel.member:
            raise SlackFailure("not_in_channel")
        return channel

    def chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(args.get("channel", ""))
        text = args.get("text")
        if not text:
            raise SlackFailure("no_text")
        if len(str(text)) > MAX_TEXT:
            raise SlackFailure("msg_too_long")
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                raise SlackFailure("invalid_metadata_format") from None
        if metadata is not None and not (isinstance(metadata, dict) and metadata.get("event_type")):
            raise SlackFailure("invalid_metadata_format")
        message = Message(self._ts(), BOT_USER, str(text), metadata)
        self._append(channel.id, message)
        return {"channel": channel.id, "ts": message.ts, "message": message.as_json(True)}

    def chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(args.get("channel", ""))
        ts = str(args.get("ts") or "")
        message = next((m for m in self.messages.get(channel.id, []) if m.ts == ts), None)
        if message is None:
            raise SlackFailure("message_not_found")
        if message.user != BOT_USER:
            raise SlackFailure("cant_update_message")
        if not args.get("text"):
            raise SlackFailure("no_text")
        message.text = str(args["text"])
        message.edited += 1
        return {"channel": channel.id, "ts": ts, "text": message.text}

    def _scope(self, private: bool) -> None:
        """conversations.create and conversations.invite need ``groups:write`` for a private channel and
        ``channels:manage`` for a public one (their method pages, "Scopes"); without it Slack answers
        ``missing_scope`` with the scope ``needed`` and those ``provided``."""
        needed = "groups:write" if private else "channels:manage"
        if self.scopes is not None and needed not in self.scopes:
            raise SlackFailure("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))

    def conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        """conversations.create: ``name_taken`` when any channel has the name (archived, or private without
        the bot, too: "A channel cannot be created with the given name"), the naming rules' errors."""
        name = str(args.get("name") or "")
        private = _flag(args.get("is_private"))
        self._scope(private)
        if not name:
            raise SlackFailure("invalid_name_required")
        if len(name) > CHANNEL_NAME_MAX:
            raise SlackFailure("invalid_name_maxlength")
        if not CHANNEL_NAME.fullmatch(name):
            raise SlackFailure("invalid_name_specials")
        if any(c.name == name and c.im_user is None for c in self.channels.values()):
            raise SlackFailure("name_taken")
        channel = self.add_channel(name, private=private)
        channel.creator = BOT_USER
        return {"channel": channel.info()}

    def conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        """conversations.invite: the bot must be in the channel; each user must exist, not be the bot
        (``cant_invite_self``) nor in it already (``already_in_channel``). Without ``force`` one failing user
        fails the call and nobody is invited; with it the others are, and the failures come back in
        ``errors``."""
        channel = self._channel(args.get("channel", ""))
        self._scope(channel.private)
        if channel.archived:
            raise SlackFailure("is_archived")
        if not channel.member:
            raise SlackFailure("not_in_channel")
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise SlackFailure("no_user")
        if len(users) > INVITE_MAX:
            raise SlackFailure("too_many_users")
        errors = []
        for user in users:
            if user == BOT_USER:
                errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
            elif user not in self.users:
                errors.append({"user": user, "ok": False, "error": "user_not_found"})
            elif user in channel.members:
                errors.append({"user": user, "ok": False, "error": "already_in_channel"})
        if errors and not _flag(args.get("force")):
            raise SlackFailure(str(errors[0]["error"]), errors=errors)
        failed = {e["user"] for e in errors}
        channel.members.update(u for u in users if u not in failed)
        return {"channel": channel.info(), **({"errors": errors} if errors else {})}

    def users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        user = next((u for u in self.users.values() if u.email and u.email.lower() == email), None)
        if user is None:
            raise SlackFailure("users_not_found")
        return {"user": {"id": user.id, "name": user.name, "is_bot": user.bot, "profile": {"email": user.email}}}


METHODS: dict[str, Callable[[SlackState, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackState.auth_test,
    "conversations.list": SlackState.conversations_list,
    "conversations.info": SlackState.conversations_info,
    "conversations.open": SlackState.conversations_open,
    "conversations.create": SlackState.conversations_create,
    "conversations.invite": SlackState.conversations_invite,
    "conversations.history": SlackState.conversations_history,
    "chat.postMessage": SlackState.chat_post_message,
    "chat.update": SlackState.chat_update,
    "users.lookupByEmail": SlackState.users_lookup_by_email,
}
