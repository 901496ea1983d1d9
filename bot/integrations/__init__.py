"""Outbound integrations: one folder each (a pure plan, an adapter, its settings and config section)."""
