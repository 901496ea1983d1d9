"""Outbound integrations: each one a folder (``bot/integrations/<name>/``) that plugs into the bot's outbound seam."""
