"""Outbound integrations: each one a folder with a pure plan, an adapter, its settings and its policy section."""
