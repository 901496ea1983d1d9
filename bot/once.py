"""Say something once per key: a bounded, thread-safe record of what was already said.

For log lines that would otherwise repeat with every delivery an outsider can cause (an ignored
project's incidents): the first is a warning, the rest only count in the metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

MAX_KEYS = 10_000


class Once:
    """``first(key)`` is true the first time ``key`` is seen (again after ``max_keys`` others: bounded)."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._seen: set[Hashable] = set()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
            self._seen.add(key)
            return True
