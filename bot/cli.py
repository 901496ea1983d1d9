"""``incident-bot`` command line. Every user error ends in one clear line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import __version__
from bot.config import Config, ConfigError, load_config
from bot.errors import UserError
from bot.gitlab.errors import GitLabConfigError
from bot.redact import redact
from bot.settings import Settings, SettingsError, register_secrets
from bot.wiring import renderer_for

if TYPE_CHECKING:
    from bot.reconciler import Reconciler

__all__ = ["build_parser", "main", "renderer_for"]


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config or Settings.from_env().config)


def cmd_check_config(args: argparse.Namespace) -> int:
    from bot.checks import check_templates

    cfg = _load(args)
    problems = check_templates(cfg, renderer_for(cfg))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    print(
        f"{cfg.source}: OK ({len(cfg.roles)} roles, {len(cfg.teams)} teams, {len(cfg.engagements)} engagements, "
        f"{len(cfg.channels)} channels, templates in {cfg.template_dir})"
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from bot import planview

    cfg = _load(args)
    now = datetime.now(UTC)
    if args.payload:
        report = planview.plan_from_payload(Path(args.payload), cfg, renderer_for(cfg), now, event=args.event)
    elif args.incident:
        from bot import wiring

        def make() -> Reconciler:
            return wiring.reconciler(Settings.from_env(need=("gitlab",)), cfg, clock=lambda: now)

        report = planview.plan_live(args.incident, make)
    else:
        raise UserError("plan needs --payload FILE or GROUP/PROJECT#IID")
    if args.json:
        print(json.dumps(report.as_json(), indent=2, default=str))
    else:
        print(report.as_text(verbose=args.verbose))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from bot import wiring
    from bot.core.model import IncidentRef
    from bot.gitlab.errors import GitLabCallError
    from bot.gitlab.remit import OutsideRemit

    cfg = _load(args)
    try:
        ref = IncidentRef.parse(args.incident)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    reconciler = wiring.reconciler(Settings.from_env(need=("gitlab",)), cfg)
    try:
        report = reconciler.reconcile(ref)
    except OutsideRemit as exc:
        print(f"{ref}: outside the bot's remit: {exc.reason}; nothing written")
        return 0
    except GitLabCallError as exc:
        raise UserError(str(exc)) from None
    finally:
        reconciler.close()
    if not report.actions:
        print(f"{ref}: already converged, nothing to do ({report.seconds:.2f}s)")
    for action in report.actions:
        print(f"{ref}: {action.describe()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(_load(args), verbose=args.verbose)


def cmd_init(args: argparse.Namespace) -> int:
    from bot import wiring
    from bot.gitlab.projectsetup import ProjectSetup
    from bot.initproject import run_init, webhook_lines

    cfg = _load(args)
    project = args.project.strip().strip("/")
    if "/" not in project and not project.isdigit():
        raise UserError(f"init needs GROUP/PROJECT (the project's full path), got {args.project!r}")
    settings = Settings.from_env(need=("gitlab",))
    gl = ProjectSetup(wiring.client(settings, cfg))
    run_init(gl, cfg, project, apply=args.apply, gitlab_url=settings.gitlab_url or "")
    for line in webhook_lines(args.url, secret_is_set=bool(settings.webhook_secret)):
        print(line)
    calls, writes = gl.calls()
    print(f"{calls} API calls ({writes} writes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incident-bot",
        description="Makes GitLab follow the security incident communications plan.",
    )
    parser.add_argument("--version", action="version", version=f"incident-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", help="policy file (default: INCIDENT_BOT_CONFIG, else config/bot.yaml)")
        p.set_defaults(func=func)
        return p

    add("check-config", cmd_check_config, "validate the config and its templates; one line per problem")

    p = add("plan", cmd_plan, "dry run: what the bot would create, assign and post; changes nothing")
    p.add_argument("incident", nargs="?", help="GROUP/PROJECT#IID to plan against a live GitLab")
    p.add_argument("--payload", help="a webhook payload (JSON file) to plan offline, without GitLab")
    p.add_argument("--event", help="the X-Gitlab-Event header of the payload (default: from its shape)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="print the full text of every body")

    p = add("reconcile", cmd_reconcile, "converge one incident in GitLab now")
    p.add_argument("incident", help="GROUP/PROJECT#IID")

    p = add(
        "init",
        cmd_init,
        "set up a project: create the labels the policy uses, check the bot's access, print the webhook settings",
    )
    p.add_argument("project", help="GROUP/PROJECT that will hold the incidents")
    p.add_argument("--apply", action="store_true", help="create the missing labels (default: a dry run)")
    p.add_argument("--dry-run", dest="apply", action="store_false", help="only show what --apply would do")
    p.add_argument("--url", help="the bot's public webhook URL, to print in the settings (e.g. https://bot.example.com)")
    p.epilog = "environment: GITLAB_URL, GITLAB_TOKEN (required); GITLAB_WEBHOOK_SECRET (only whether it is set)"

    p = add("demo", cmd_demo, "the lifecycle of an example incident against a built-in simulated GitLab")
    p.add_argument("--verbose", "-v", action="store_true", help="also print every API call")

    from bot.service_cli import register_service_commands

    register_service_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    register_secrets()
    try:
        return int(args.func(args))
    except SettingsError as exc:
        for p in exc.problems:
            print(f"incident-bot: {redact(p)}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (UserError, GitLabConfigError) as exc:
        print(f"incident-bot: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
