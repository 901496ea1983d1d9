"""Reading the policy file and validating it into a ``Config``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot import paths
from bot.config.approvalchecks import approval_problems
from bot.config.checks import _clock_calendars, semantic_problems
from bot.config.policy import Config
from bot.config.problems import ConfigError, Problem, _pydantic_problems


def parse_config(data: Any, *, source: str = "<memory>", base_dir: str | Path = ".") -> Config:
    """Validate a config mapping; raise ``ConfigError`` with every problem found."""
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, "", "expected a mapping at the top level")])
    try:
        cfg = Config.model_validate({**data, "source": source, "base_dir": str(base_dir)})
    except ValidationError as err:
        raise ConfigError(_pydantic_problems(source, err, data)) from None
    calendars, problems = _clock_calendars(cfg, Path(base_dir))
    problems = semantic_problems(cfg) + approval_problems(cfg) + problems
    if problems:
        raise ConfigError(problems)
    return cfg.model_copy(update={"calendars": calendars}) if calendars else cfg


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a YAML config file (default: ``config/bot.yaml`` or the bundled policy)."""
    file = Path(path) if path else paths.default_config_path()
    source = str(path) if path else str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(source, "", "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(source, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([Problem(source, where, f"invalid YAML: {what}")]) from None
    return parse_config(data, source=source, base_dir=file.parent)
