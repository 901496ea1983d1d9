"""Which request fails, how, and whether GitLab had already committed it."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "429-date", "500", "502", "503", "timeout", "reset")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class FaultRule:
    kind: str
    times: int | None  # None: unlimited
    method: str | None = None
    path_regex: re.Pattern[str] | None = None
    applied: bool | None = None  # None: decided by ``applied_before_fault``

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method != method:
            return False
        return not (self.path_regex and not self.path_regex.search(path))


@dataclass
class Decision:
    kind: str
    applied: bool


@dataclass
class _Random:
    rate: float
    kinds: tuple[str, ...]
    method: str | None = None
    path_regex: re.Pattern[str] | None = None
    rng: random.Random = field(default_factory=random.Random)


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")


class FaultPlan:
    """Scripted faults are consumed first, in the order injected; then random faults apply."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random: _Random | None = None
        self._rng = random.Random(seed)
        self.applied_before_fault = 0.5

    def inject(
        self,
        kind: str,
        times: int | None = 1,
        method: str | None = None,
        path_regex: str | None = None,
        applied: bool | None = None,
    ) -> None:
        _check_kind(kind)
        regex = re.compile(path_regex) if path_regex else None
        with self._lock:
            self._rules.append(FaultRule(kind, times, method.upper() if method else None, regex, applied))

    def random_faults(
        self,
        rate: float = 0.2,
        kinds: Iterable[str] | None = None,
        seed: int | None = None,
        method: str | None = None,
        path_regex: str | None = None,
    ) -> None:
        chosen = tuple(kinds or ("429", "500", "502", "503", "reset"))
        for kind in chosen:
            _check_kind(kind)
        with self._lock:
            if seed is not None:
                self._rng = random.Random(seed)
            if rate <= 0:
                self._random = None
                return
            self._random = _Random(
                rate,
                chosen,
                method.upper() if method else None,
                re.compile(path_regex) if path_regex else None,
                random.Random(self._rng.random()),
            )

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._random = None

    @property
    def pending(self) -> int:
        """Scripted faults not yet consumed (unlimited rules count as one)."""
        with self._lock:
            return sum(1 if r.times is None else r.times for r in self._rules if r.times != 0)

    def decide(self, method: str, path: str) -> Decision | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                    return Decision(rule.kind, self._applied(rule.kind, method, rule.applied))
            self._rules = [r for r in self._rules if r.times != 0]
            rnd = self._random
            if rnd is None:
                return None
            if rnd.method and rnd.method != method:
                return None
            if rnd.path_regex and not rnd.path_regex.search(path):
                return None
            if rnd.rng.random() >= rnd.rate:
                return None
            kind = rnd.rng.choice(rnd.kinds)
            return Decision(kind, self._applied(kind, method, None))

    def _applied(self, kind: str, method: str, forced: bool | None) -> bool:
        """A 429 is refused before any work; other faults may strike after the commit."""
        if kind.startswith("429") or method not in WRITE_METHODS:
            return False
        if forced is not None:
            return forced
        return self._rng.random() < self.applied_before_fault
