"""``SlackChat``: :class:`~bot.integrations.slack.ports.ChatPort` over the Slack Web API with ``slack_sdk``.

Each call is tried once (``slack_sdk``'s own retry handlers are off): the caller's durable queue retries,
and must know at once that Slack is unavailable. Every failure becomes a :class:`ChatError` whose reason is
one line naming the target and what to do; the token never appears in it.

Slack's documented limits, as the calls respect them:

* ``conversations.list``: ``limit`` "must be an integer under 1000" (its method page), so 999 a page.
* ``conversations.history``: one page at a time (the caller stops at the page holding the key it looks for,
  and never reads back past ``oldest``). Since the rate limit change for non-Marketplace apps (Slack's
  changelog, 2025-05-29, "Rate limit changes for non-Marketplace apps"), a commercially distributed app
  outside the Marketplace gets 1 call a minute and at most 15 messages a page; an app a workspace builds for
  itself keeps Tier 3. The page size asked for is a maximum: Slack answers with fewer.
* ``chat.postMessage``: Slack truncates text past 40,000 characters, and answers ``msg_too_long`` for a text
  it will not take: that is :class:`ChatTooLong`, the message's fault, never the target's refusal.

Nothing here logs a message body or a history page: ``slack_sdk`` logs each request and answer in full at
debug level, so it gets a logger of its own that stays at warnings, whatever ``--log-level`` says.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.integrations.slack.ports import (
    ChatAuthError,
    ChatError,
    ChatRefused,
    ChatTooLong,
    ChatUnavailable,
    HistoryPage,
)

DEFAULT_BASE_URL = "https://slack.com/api/"
EVENT_TYPE = "incident_bot"
"""The metadata ``event_type`` of every message the bot posts; its payload carries the message key."""
HISTORY_PAGE_SIZE = 200
"""Asked for per ``conversations.history`` page; a distributed non-Marketplace app gets at most 15."""
LIST_PAGE_SIZE = 999
"""``conversations.list``'s ``limit`` "must be an integer under 1000"."""
LIST_PAGES = 50
RELIST_AFTER = 30.0
"""Seconds before a channel name not found in the cached list makes the list be read again."""

_sdk_log = logging.getLogger("bot.chat.slack_sdk")
_sdk_log.setLevel(logging.WARNING)  # slack_sdk logs request bodies and answers (history pages) at debug

AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                         "missing_scope", "no_permission", "not_allowed_token_type"})
_REFUSALS = {
    "channel_not_found": "channel {target} not found: check the channel name or id in the config",
    "not_in_channel": "the bot is not a member of {target}: invite it with /invite @<bot name> in that channel",
    "is_archived": "{target} is archived: unarchive it or pick another channel in the config",
    "users_not_found": "no Slack user for {target}: check the user id or email in the config",
    "user_not_found": "no Slack user for {target}: check the user id or email in the config",
    "cannot_dm_bot": "{target} is a bot, which cannot get direct messages: pick a person in the config",
    "user_disabled": "{target} is deactivated in Slack: pick another person in the config",
    "restricted_action": "Slack's workspace settings stop the bot posting in {target}: ask a Slack admin",
    "message_not_found": "message in {target} not found (deleted?): it will be posted again",
    "cant_update_message": "the bot cannot edit that message in {target}: it will be posted again",
    "msg_too_long": "message for {target} is too long for Slack",
    "invalid_metadata_format": "Slack rejected the message metadata for {target}",
}
_INVITED = ("already_in_channel", "cant_invite_self")
"""conversations.invite errors that leave the person in the channel: nothing to do."""
_UNAVAILABLE = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                          "request_timeout", "team_added_to_org"})
_CODE = re.compile(r"[a-z0-9_.]{1,60}")


@dataclass(frozen=True)
class AuthInfo:
    """Who the token is: from ``auth.test``."""

    user: str
    user_id: str
    team: str
    team_id: str
    url: str
    bot_id: str = ""
    scopes: frozenset[str] | None = None
    """The token's scopes (Slack's ``X-OAuth-Scopes`` answer header), None when Slack did not say."""


def _retry_after(response: SlackResponse | None) -> float | None:
    if response is None:
        return None
    headers = response.headers or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return None
    return None


def chat_error(err: Exception, target: str, method: str, token: str = "") -> ChatError:
    """The :class:`ChatError` for a failed call to ``method`` about ``target`` (one line, no token)."""
    if isinstance(err, SlackApiError):
        response = err.response
        status = getattr(response, "status_code", 0) or 0
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        code = str(data.get("error") or "")
        if not _CODE.fullmatch(code):  # e.g. an HTML error page: never copied into the reason
            code = ""
        if status == 429 or code in ("ratelimited", "rate_limited"):
            after = _retry_after(response)
            wait = f"retry after {after:g} s" if after is not None else "retry later"
            error: ChatError = ChatUnavailable(f"Slack rate-limited {method} for {target}: {wait}", after,
                                               rate_limited=True)
        elif status >= 500 or code in _UNAVAILABLE:
            error = ChatUnavailable(f"Slack answered {method} for {target} with {code or f'HTTP {status}'}: "
                                    "retry later", _retry_after(response))
        elif code in AUTH_ERRORS:
            scope = f" (needs {data.get('needed')})" if code == "missing_scope" and data.get("needed") else ""
            error = ChatAuthError(f"Slack refused the bot token ({code}{scope}) on {method}: check SLACK_BOT_TOKEN "
                                  "and the app's scopes")
        elif code == "msg_too_long":
            error = ChatTooLong(f"{_REFUSALS[code].format(target=target)} ({code})")
        elif code in _REFUSALS:
            error = ChatRefused(f"{_REFUSALS[code].format(target=target)} ({code})")
        else:
            error = ChatRefused(f"Slack refused {method} for {target}: {code or f'HTTP {status}'}")
    elif isinstance(err, TimeoutError):
        error = ChatUnavailable(f"Slack did not answer {method} for {target} in time: retry later")
    else:
        kind = type(err).__name__
        error = ChatUnavailable(f"Slack unreachable on {method} for {target} ({kind}): retry later")
    if token and token in error.reason:
        error.reason = error.reason.replace(token, "<token>")
        error.args = (error.reason,)
    return error


class SlackChat:
    """The bot's Slack: resolves targets (cached, thread-safe), reads its own keyed messages, posts, edits."""

    def __init__(self, token: str, base_url: str | None = None, *, timeout: float = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        url = base_url or DEFAULT_BASE_URL
        if not url.endswith("/"):
            url += "/"
        self._token = token
        # urllib takes fractional seconds; slack_sdk only annotates its timeout as int.
        self.client = WebClient(token=token, base_url=url, timeout=cast(int, timeout), retry_handlers=[],
                                logger=_sdk_log)
        self._clock = clock
        self._lock = threading.Lock()
        self._list_lock = threading.Lock()  # one conversations.list walk at a time, however many threads ask
        self._names: dict[str, str] | None = None
        self._listed_at = 0.0
        self._resolved: dict[str, str] = {}
        self._emails: dict[str, str] = {}
        self._me: AuthInfo | None = None

    def __repr__(self) -> str:
        return f"SlackChat(base_url={self.client.base_url!r})"

    # ------------------------------------------------------------------ calls

    def _call(self, method: str, target: str, fn: Callable[..., SlackResponse], **kwargs: Any) -> SlackResponse:
        try:
            response = fn(**kwargs)
            response.validate()
            return response
        except (SlackClientError, OSError, ValueError) as err:
            raise chat_error(err, target, method, self._token) from None

    def auth_test(self) -> AuthInfo:
        """Who the token belongs to (``auth.test``): for live checks."""
        response = self._call("auth.test", "the workspace", self.client.auth_test)
        data = response.data
        assert isinstance(data, dict)
        return AuthInfo(str(data.get("user", "")), str(data.get("user_id", "")), str(data.get("team", "")),
                        str(data.get("team_id", "")), str(data.get("url", "")), str(data.get("bot_id") or ""),
                        _scopes(response))

    def me(self) -> AuthInfo:
        """Who the bot is (``auth.test``, once per process): its messages are the only ones it believes."""
        with self._lock:
            if self._me is not None:
                return self._me
        who = self.auth_test()
        if not who.user_id and not who.bot_id:
            raise ChatUnavailable("Slack's auth.test named no bot user: retry later")
        with self._lock:
            self._me = who
        return who

    def _pages(self, method: str, target: str, fn: Callable[..., SlackResponse], max_pages: int,
               **kwargs: Any) -> Iterator[dict[str, Any]]:
        cursor = ""
        for _ in range(max_pages):
            data = self._call(method, target, fn, **kwargs, **({"cursor": cursor} if cursor else {})).data
            assert isinstance(data, dict)
            yield data
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    # ---------------------------------------------------------------- resolve

    def resolve(self, target: str) -> str:
        target = target.strip()
        with self._lock:
            if target in self._resolved:
                return self._resolved[target]
        if target.startswith("#"):
            channel = self._channel_by_name(target)
        elif target[:1] in ("C", "G", "D") and target[1:].isalnum():
            return target
        elif target[:1] in ("U", "W") and target[1:].isalnum():
            channel = self._open_dm(target, target)
        elif target.startswith("email:"):
            channel = self._open_dm(self._user_by_email(target), target)
        else:
            raise ChatRefused(f"{target!r} is not a Slack target: use #channel, a channel id, a user id (U…) "
                              "or email:address in the config")
        with self._lock:
            self._resolved[target] = channel
        return channel

    def channel_names(self, *, fresh: bool = False) -> dict[str, str]:
        """Names (without ``#``) of the workspace's unarchived channels the token can see, with their ids:
        read once, and again when ``fresh`` and the list is older than :data:`RELIST_AFTER` seconds."""
        with self._list_lock:
            with self._lock:
                stale = fresh and self._clock() - self._listed_at >= RELIST_AFTER
                if self._names is not None and not stale:
                    return self._names
            names: dict[str, str] = {}
            for page in self._pages("conversations.list", "channel list", self.client.conversations_list,
                                    LIST_PAGES, types="public_channel,private_channel", exclude_archived=True,
                                    limit=LIST_PAGE_SIZE):
                for channel in page.get("channels") or []:
                    names[str(channel.get("name", ""))] = str(channel["id"])
            with self._lock:
                self._names, self._listed_at = names, self._clock()
            return names

    def _channel_by_name(self, target: str) -> str:
        name = target[1:].lower()
        channel = self.channel_names().get(name)
        if channel is None:  # created since the list was read? Look again (at most every RELIST_AFTER s)
            channel = self.channel_names(fresh=True).get(name)
        if channel is None:
            raise ChatRefused(f"channel {target} not found (or archived, or private without the bot): check the "
                              "channel name in the config, or /invite the bot to the private channel")
        return channel

    def _user_by_email(self, target: str) -> str:
        email = target.removeprefix("email:").strip()
        with self._lock:
            if email in self._emails:
                return self._emails[email]
        data = self._call("users.lookupByEmail", target, self.client.users_lookupByEmail, email=email).data
        assert isinstance(data, dict)
        user = str((data.get("user") or {}).get("id", ""))
        with self._lock:
            self._emails[email] = user
        return user

    def _open_dm(self, user: str, target: str) -> str:
        data = self._call("conversations.open", target, self.client.conversations_open, users=user).data
        assert isinstance(data, dict)
        return str((data.get("channel") or {}).get("id", ""))

    # ---------------------------------------------------------- read & write

    def history(self, channel: str, *, oldest: float | None = None, cursor: str = "") -> HistoryPage:
        """One page of the conversation's history back to ``oldest``: the keys of the bot's own messages.

        A key counts only in a message the bot posted (its user id or bot id from ``auth.test``): anyone
        can put the bot's metadata on a message of their own. A history read the app may not make here
        (``missing_scope``: e.g. no ``groups:history`` for a private channel) refuses this target only."""
        me = self.me()
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": HISTORY_PAGE_SIZE}
        if oldest is not None:
            args["oldest"] = f"{max(oldest, 0.0):.6f}"
        if cursor:
            args["cursor"] = cursor
        try:
            data = self._call("conversations.history", channel, self.client.conversations_history, **args).data
        except ChatAuthError as err:
            if "missing_scope" not in err.reason:
                raise
            raise ChatRefused(f"the bot may not read the history of {channel} (missing_scope): add the app's "
                              "channels:history, groups:history and im:history scopes") from None
        assert isinstance(data, dict)
        keys: dict[str, str] = {}
        for message in data.get("messages") or []:
            if not _by(message, me):
                continue
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") != EVENT_TYPE:
                continue
            key = (metadata.get("event_payload") or {}).get("key")
            if isinstance(key, str) and key not in keys:  # newest first: the latest copy wins
                keys[key] = str(message.get("ts", ""))
        more = bool(data.get("has_more", True))
        next_cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "") if more else ""
        return HistoryPage(keys, next_cursor)

    def post(self, channel: str, text: str, key: str) -> str:
        try:
            data = self._call("chat.postMessage", channel, self.client.chat_postMessage, channel=channel,
                              text=text, metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
                              unfurl_links=False, unfurl_media=False, parse="none", link_names=False).data
        except ChatRefused as err:
            if "channel_not_found" in err.reason or "is_archived" in err.reason:
                self._forget(channel)  # a name now meaning another channel is looked up again next time
            raise
        assert isinstance(data, dict)
        return str(data.get("ts", ""))

    def _forget(self, channel: str) -> None:
        with self._lock:
            for target in [t for t, c in self._resolved.items() if c == channel and t.startswith("#")]:
                del self._resolved[target]
            if self._names is not None:
                self._names = {n: c for n, c in self._names.items() if c != channel}

    def update(self, channel: str, ts: str, text: str) -> None:
        self._call("chat.update", channel, self.client.chat_update, channel=channel, ts=ts, text=text,
                   parse="none", link_names=False)

    # ------------------------------------------------------- incident channel

    def create_channel(self, name: str, *, private: bool) -> str:
        """``conversations.create`` (``is_private``); on ``name_taken`` (an answer lost after Slack created it,
        or someone else's channel) the channel of that name is adopted only if the bot created it (its
        ``creator`` is the bot's user from ``auth.test``)."""
        bare = name.removeprefix("#")
        try:
            data = self._call("conversations.create", name, self.client.conversations_create, name=bare,
                              is_private=private).data
            assert isinstance(data, dict)
            channel = str((data.get("channel") or {}).get("id", ""))
        except ChatAuthError as err:
            if "missing_scope" not in err.reason:
                raise
            scope = "groups:write" if private else "channels:manage"
            raise ChatRefused(f"the bot may not create {'private' if private else 'public'} channels "
                              f"(missing_scope): add the Slack app's {scope} scope and reinstall it, or set "
                              "chat.create_incident_channel: false") from None
        except ChatRefused as err:
            if "name_taken" not in err.reason:
                raise
            channel = self._adopt(name)
        with self._lock:
            self._resolved[name] = channel
            if self._names is not None:
                self._names[bare] = channel
        return channel

    def _adopt(self, name: str) -> str:
        channel = self.channel_names(fresh=True).get(name.removeprefix("#"))
        if channel is None:
            raise ChatRefused(f"channel {name} exists and the bot is not in it: rename it, or name the incident's "
                              "channel with the channel command and invite the bot there")
        data = self._call("conversations.info", name, self.client.conversations_info, channel=channel).data
        assert isinstance(data, dict)
        creator = str((data.get("channel") or {}).get("creator") or "")
        if not creator or creator != self.me().user_id:
            raise ChatRefused(f"channel {name} already exists and the bot did not create it: name it with the "
                              "channel command to use it, or rename it")
        return channel

    def invite(self, channel: str, people: list[str]) -> list[str]:
        """``conversations.invite`` once for everyone (``force``: the valid ones are invited whatever the
        others' errors); ``already_in_channel`` and ``cant_invite_self`` count as done."""
        me = self.me().user_id
        failed: list[str] = []
        users: list[str] = []
        for target in people:
            try:
                user = self._user_by_email(target) if target.startswith("email:") else target
            except ChatRefused as err:
                failed.append(err.reason)
                continue
            if user and user != me and user not in users:
                users.append(user)
        if not users:
            return failed
        try:
            data = self._call("conversations.invite", channel, self.client.conversations_invite, channel=channel,
                              users=",".join(users), force=True).data
        except ChatAuthError as err:
            if "missing_scope" not in err.reason:
                raise
            raise ChatRefused(f"the bot may not invite people to {channel} (missing_scope): add the Slack app's "
                              "groups:write scope (channels:manage for a public channel) and reinstall it") from None
        except ChatRefused as err:
            if not any(code in err.reason for code in _INVITED):
                raise
            return failed
        assert isinstance(data, dict)
        for error in data.get("errors") or []:
            code = str(error.get("error") or "")
            if code not in _INVITED:
                failed.append(f"Slack could not invite {error.get('user')} to {channel}: {code}")
        return failed

    def is_member(self, channel: str) -> bool:
        """Whether the bot is in the conversation (``conversations.info``); direct messages count as in."""
        data = self._call("conversations.info", channel, self.client.conversations_info, channel=channel).data
        assert isinstance(data, dict)
        info = data.get("channel") or {}
        return bool(info.get("is_im") or info.get("is_mpim") or info.get("is_member"))


def _scopes(response: SlackResponse) -> frozenset[str] | None:
    for name, value in (response.headers or {}).items():
        if name.lower() == "x-oauth-scopes":
            raw = value[0] if isinstance(value, list) else value
            return frozenset(s.strip() for s in str(raw).split(",") if s.strip())
    return None


def _by(message: dict[str, Any], me: AuthInfo) -> bool:
    """Whether the bot itself posted ``message`` (its bot user, or its bot id)."""
    user, bot = message.get("user"), message.get("bot_id")
    return bool((me.user_id and user == me.user_id) or (me.bot_id and bot == me.bot_id))
