"""An in-memory Slack for tests: conversations with the bot's messages, keyed as Slack metadata keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.integrations.slack.ports import ChatRefused, ChatUnavailable, HistoryPage


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    key: str
    edits: int = 0


@dataclass
class FakeChat:
    """``down``: every call raises ChatUnavailable; ``refuse``: targets Slack does not know."""

    down: bool = False
    refuse: set[str] = field(default_factory=set)
    messages: list[Posted] = field(default_factory=list)
    calls: int = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ChatUnavailable("Slack answered 503", retry_after=30)

    def resolve(self, target: str) -> str:
        self._call()
        if target in self.refuse:
            raise ChatRefused(f"channel_not_found: {target}")
        return "C-" + target.lstrip("#") if target.startswith("#") else "D-" + target

    def history(self, channel: str, *, oldest: float | None = None, cursor: str = "") -> HistoryPage:
        self._call()
        return HistoryPage({m.key: m.ts for m in reversed(self.messages) if m.channel == channel})

    def post(self, channel: str, text: str, key: str) -> str:
        self._call()
        ts = f"{len(self.messages) + 1}.000"
        self.messages.append(Posted(channel, ts, text, key))
        return ts

    def update(self, channel: str, ts: str, text: str) -> None:
        self._call()
        for m in self.messages:
            if m.channel == channel and m.ts == ts:
                m.text, m.edits = text, m.edits + 1

    def to(self, channel: str) -> list[Posted]:
        return [m for m in self.messages if m.channel == channel]
