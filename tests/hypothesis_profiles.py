"""Hypothesis profiles: ``HYPOTHESIS_PROFILE=fast`` for a quick local run; without it, Hypothesis's own choice
(its ``ci`` profile when ``CI`` is set, as ``.ci/run`` does, else ``default``), which is what CI runs.

Property tests that ask for many examples write ``max_examples=examples(300)``: the number they ask for, cut
to the fast profile's when that profile is loaded (a test's own ``max_examples`` otherwise wins over any
profile).
"""

from __future__ import annotations

import os

from hypothesis import settings

FAST = "fast"
ENV = "HYPOTHESIS_PROFILE"

settings.register_profile(FAST, max_examples=10, stateful_step_count=10)


def load_from_environment() -> str:
    """Load the profile ``HYPOTHESIS_PROFILE`` names, if any; the profile in force. A name Hypothesis does not
    know is a one-line error naming the variable and the profiles there are."""
    name = os.environ.get(ENV, "").strip()
    if name:
        try:
            settings.load_profile(name)
        except Exception:  # hypothesis.errors.InvalidArgument: the profile is not registered
            raise ValueError(f"{ENV}={name}: no such Hypothesis profile; use {FAST}, default or ci") from None
    return settings.get_current_profile_name()


def examples(wanted: int, *, at_least: int = 0) -> int:
    """``wanted``, or fewer under the fast profile: its ``max_examples``, or ``at_least`` for a test whose
    checks need that many examples to see each kind of outcome."""
    if settings.get_current_profile_name() == FAST:
        return min(wanted, max(settings.get_profile(FAST).max_examples, at_least))
    return wanted
