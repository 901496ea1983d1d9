"""The plain-text reading of the bot's Markdown now lives in ``bot.text.plain``; this name stays for imports."""

from bot.text.plain import as_read

__all__ = ["as_read"]
