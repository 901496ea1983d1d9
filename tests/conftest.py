from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
SHARED_PAYLOADS = ROOT.parent / "shared" / "gitlab-payloads"
EXAMPLES = ROOT / "examples" / "payloads"


@pytest.fixture(scope="session")
def default_config() -> Config:
    return load_config(ROOT / "config" / "bot.yaml")
