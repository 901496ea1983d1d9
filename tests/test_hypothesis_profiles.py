"""The fast Hypothesis profile for local runs cuts the number of examples; CI's profile keeps every one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.hypothesis_profiles import FAST, examples

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def profile() -> Iterator[None]:
    before = settings.get_current_profile_name()
    yield
    settings.load_profile(before)


def test_the_fast_profile_cuts_what_a_test_asks_for_and_ci_keeps_it(profile: None) -> None:
    settings.load_profile(FAST)
    assert examples(1500) == 10 and examples(5) == 5 and settings().max_examples == 10
    assert examples(1500, at_least=100) == 100 and examples(50, at_least=100) == 50
    settings.load_profile("ci")
    assert examples(1500) == 1500 and settings().derandomize


def test_a_mistyped_profile_is_one_line_naming_the_variable() -> None:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "fsat"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", "--collect-only",
         "tests/test_durations.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode != 0
    assert "HYPOTHESIS_PROFILE=fsat: no such Hypothesis profile; use fast, default or ci" in run.stderr + run.stdout
