"""The bundled policy's comments point at files that exist in the repository and quote rows of the plan."""

from __future__ import annotations

import re

from tests.conftest import ROOT

POLICY = ROOT / "config" / "bot.yaml"
PLAN = ROOT / "docs" / "security-incident-communications-plan.md"
_PATH = re.compile(r"(?<![\w@])((?:[\w.-]+/)*[\w.-]+\.(?:md|j2|yaml|yml|py|json|conf|toml))\b")


def _comments() -> list[str]:
    out = []
    for line in POLICY.read_text().splitlines():
        code, hash_, comment = line.partition("#")
        if hash_ and code.count('"') % 2 == 0 and code.count("'") % 2 == 0:
            out.append(comment)
    return out


def test_every_file_the_policy_comments_name_exists():
    named = {m.group(1) for comment in _comments() for m in _PATH.finditer(comment)}
    assert named, "the policy's comments name the plan they encode"
    missing = [p for p in sorted(named) if not (ROOT / p).exists() and not (ROOT / "issue_templates" / p).exists()]
    assert missing == []


def test_every_plan_row_quoted_by_the_policy_is_in_the_plan():
    plan = " ".join(PLAN.read_text().replace("’", "'").replace("‘", "'").split())
    quoted = [q for c in _comments() if c.strip().startswith("plan:") for q in re.findall(r"\"([^\"]+)\"", c)]
    assert quoted
    for q in quoted:
        words = " ".join(q.replace("’", "'").split())
        parts = [p.strip() for p in words.split("...") if p.strip()]
        assert all(p in plan for p in parts), q


def test_every_comms_order_rule_quotes_the_plan():
    import yaml

    plan = " ".join(PLAN.read_text().replace("’", "'").replace("‘", "'").split())
    rules = yaml.safe_load(POLICY.read_text())["comms_order"]
    assert rules
    for rule in rules:
        words = " ".join(rule["plan"].split())
        parts = [p.strip() for p in words.split("...") if p.strip()]
        assert all(p in plan for p in parts), rule["id"]
