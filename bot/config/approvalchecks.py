"""What the policy's ``approvals:`` section names that the rest of the policy does not have."""

from __future__ import annotations

from bot.config.fields import ROLE_IDS
from bot.config.policy import Config
from bot.config.problems import Problem


def approval_problems(cfg: Config) -> list[Problem]:
    """What in ``approvals:`` names something the policy does not have: one line per problem, naming the key."""
    a, src = cfg.approvals, cfg.source
    out: list[Problem] = []
    channels = {c.label for c in cfg.channels}
    for gid, chain in a.groups.items():
        if not chain:
            out.append(Problem(src, f"approvals.groups.{gid}", "a chain needs at least one person"))
        for n, member in enumerate(chain):
            kind, _, name = member.partition(":")
            if kind == "role" and name not in ROLE_IDS:
                out.append(Problem(src, f"approvals.groups.{gid}[{n}]",
                                   f"unknown role {name!r} (expected one of: {', '.join(ROLE_IDS)})"))
            if kind == "team" and name not in cfg.teams:
                out.append(Problem(src, f"approvals.groups.{gid}[{n}]", f"unknown team {name!r}"))
    for label, row in a.matrix.items():
        if label not in channels:
            out.append(Problem(src, f"approvals.matrix.{label}",
                               f"unknown channel {label!r} (channels: {', '.join(sorted(channels))})"))
        for gid in row:
            if gid not in a.groups:
                out.append(Problem(src, f"approvals.matrix.{label}.{gid}", f"unknown group {gid!r} (approvals.groups)"))
        if row and not any(part == "approver" for part in row.values()):
            out.append(Problem(src, f"approvals.matrix.{label}", "names no approver group"))
    if a.quorum is not None:
        for n, gid in enumerate(a.quorum.of):
            if gid not in a.groups:
                out.append(Problem(src, f"approvals.quorum.of[{n}]", f"unknown group {gid!r} (approvals.groups)"))
        if a.quorum.at_least > len(a.quorum.of):
            out.append(Problem(src, "approvals.quorum.at_least",
                               f"{a.quorum.at_least} is more than the {len(a.quorum.of)} groups it counts"))
    for label in a.customer_email:
        if label not in channels:
            out.append(Problem(src, "approvals.customer_email", f"unknown channel {label!r}"))
    if a.ready_label in channels or a.ready_label == cfg.labels.trigger:
        out.append(Problem(src, "approvals.ready_label", f"{a.ready_label!r} is already used by the policy"))
    return out
