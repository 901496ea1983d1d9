"""``SlackChat``: :class:`~bot.chat.ports.ChatPort` over the Slack Web API with the official ``slack_sdk``.

Each call is tried once (``slack_sdk``'s own retry handlers are off): the caller's durable queue retries,
and must know at once that Slack is unavailable. Every failure becomes a :class:`ChatError` whose reason is
one line naming the target and what to do; the token never appears in it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.chat.ports import ChatAuthError, ChatError, ChatRefused, ChatUnavailable

DEFAULT_BASE_URL = "https://slack.com/api/"
EVENT_TYPE = "incident_bot"
"""The metadata ``event_type`` of every message the bot posts; its payload carries the message key."""
HISTORY_PAGES = 5
HISTORY_PAGE_SIZE = 200
LIST_PAGES = 50

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
            error: ChatError = ChatUnavailable(f"Slack rate-limited {method} for {target}: {wait}", after)
        elif status >= 500 or code in _UNAVAILABLE:
            error = ChatUnavailable(f"Slack answered {method} for {target} with {code or f'HTTP {status}'}: "
                                    "retry later", _retry_after(response))
        elif code in AUTH_ERRORS:
            scope = f" (needs {data.get('needed')})" if code == "missing_scope" and data.get("needed") else ""
            error = ChatAuthError(f"Slack refused the bot token ({code}{scope}) on {method}: check SLACK_BOT_TOKEN "
                                  "and the app's scopes")
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

    def __init__(self, token: str, base_url: str | None = None, *, timeout: float = 10) -> None:
        url = base_url or DEFAULT_BASE_URL
        if not url.endswith("/"):
            url += "/"
        self._token = token
        # urllib takes fractional seconds; slack_sdk only annotates its timeout as int.
        self.client = WebClient(token=token, base_url=url, timeout=cast(int, timeout), retry_handlers=[])
        self._lock = threading.Lock()
        self._list_lock = threading.Lock()  # one conversations.list walk at a time, however many threads ask
        self._names: dict[str, str] | None = None
        self._resolved: dict[str, str] = {}
        self._emails: dict[str, str] = {}

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
        data = self._call("auth.test", "the workspace", self.client.auth_test).data
        assert isinstance(data, dict)
        return AuthInfo(str(data.get("user", "")), str(data.get("user_id", "")), str(data.get("team", "")),
                        str(data.get("team_id", "")), str(data.get("url", "")))

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

    def channel_names(self) -> dict[str, str]:
        """Names (without ``#``) of the workspace's unarchived channels the token can see, with their ids."""
        with self._list_lock:
            with self._lock:
                if self._names is not None:
                    return self._names
            names: dict[str, str] = {}
            for page in self._pages("conversations.list", "channel list", self.client.conversations_list,
                                    LIST_PAGES, types="public_channel,private_channel", exclude_archived=True,
                                    limit=1000):
                for channel in page.get("channels") or []:
                    names[str(channel.get("name", ""))] = str(channel["id"])
            with self._lock:
                self._names = names
            return names

    def _channel_by_name(self, target: str) -> str:
        name = target[1:].lower()
        channel = self.channel_names().get(name)
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

    def posted_keys(self, channel: str) -> dict[str, str]:
        keys: dict[str, str] = {}
        for page in self._pages("conversations.history", channel, self.client.conversations_history, HISTORY_PAGES,
                                channel=channel, include_all_metadata=True, limit=HISTORY_PAGE_SIZE):
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") != EVENT_TYPE:
                    continue
                key = (metadata.get("event_payload") or {}).get("key")
                if isinstance(key, str) and key not in keys:  # newest first: the latest copy wins
                    keys[key] = str(message.get("ts", ""))
        return keys

    def post(self, channel: str, text: str, key: str) -> str:
        data = self._call("chat.postMessage", channel, self.client.chat_postMessage, channel=channel, text=text,
                          metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
                          unfurl_links=False, unfurl_media=False, parse="none", link_names=False).data
        assert isinstance(data, dict)
        return str(data.get("ts", ""))

    def update(self, channel: str, ts: str, text: str) -> None:
        self._call("chat.update", channel, self.client.chat_update, channel=channel, ts=ts, text=text,
                   parse="none", link_names=False)

    def is_member(self, channel: str) -> bool:
        """Whether the bot is in the conversation (``conversations.info``); direct messages count as in."""
        data = self._call("conversations.info", channel, self.client.conversations_info, channel=channel).data
        assert isinstance(data, dict)
        info = data.get("channel") or {}
        return bool(info.get("is_im") or info.get("is_mpim") or info.get("is_member"))
