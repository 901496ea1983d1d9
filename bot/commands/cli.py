"""``incident-bot`` command line. Every user error ends in one clear line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import __version__
from bot.config import Config, ConfigError, load_config
from bot.errors import UserError
from bot.gitlab.errors import GitLabAuthError, GitLabCallError, GitLabConfigError
from bot.gitlab.remit import OutsideRemit
from bot.redact import redact
from bot.settings import Settings, SettingsError, environment, help_epilog, register_secrets
from bot.wiring import renderer_for

if TYPE_CHECKING:
    from bot.reconciler import Reconciler
    from bot.store.base import OutboxItem

__all__ = ["build_parser", "main", "renderer_for"]


def _load(args: argparse.Namespace) -> Config:
    from bot import wiring

    return wiring.checked(load_config(getattr(args, "config", None) or Settings.from_env().config))


def remit_hint(exc: OutsideRemit) -> str:
    """What to do when the bot may not act in a project the user named."""
    if exc.kind in ("not_in_scope", "no_scope"):
        return "check the path, or add the project or its group to INCIDENT_BOT_SCOPE or the policy's scope:"
    if exc.kind == "team_project":
        return "a team project (a channel's project:) receives children and never holds incidents"
    if exc.kind == "bot_child":
        return "name the incident the child belongs to"
    return "check the project path, and that the bot user is a member of the project (Reporter or higher)"


def _gitlab_url() -> str:
    try:
        return redact(Settings.from_env().gitlab_url or "not set")
    except SettingsError:
        return "not set"


def gitlab_error_line(exc: GitLabCallError) -> str:
    """One line for a failed GitLab call: what failed, and what the user can do about it."""
    what = f"{exc.incident}: {exc.step} failed" if exc.incident else f"{exc.step} failed"
    if isinstance(exc, GitLabAuthError) or exc.status == 401:
        return f"{what}: GitLab rejected the token (401); check GITLAB_TOKEN (a token of the bot user, api scope)"
    if exc.status is None:
        return (
            f"{what}: cannot reach GitLab ({exc.message}); check GITLAB_URL "
            f"({_gitlab_url()}) and that GitLab is up"
        )
    if exc.status == 404:
        path = "the project path and issue number" if "#" in exc.incident else "the project path"
        return f"{what}: 404 not found; check {path}, and that the bot user is a member of the project"
    if exc.status == 403:
        return f"{what}: 403 forbidden; give the bot user Reporter access (Developer to create labels) to the project"
    if exc.transient:
        return f"{what}: {exc.status} {exc.message}; GitLab is failing for now, try again later"
    return f"{what}: {exc.status} {exc.message}"


def cmd_check_config(args: argparse.Namespace) -> int:
    from bot.commands.checks import check_templates

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
    if not _integration_summaries(cfg):
        return 1
    if getattr(args, "live", False):
        return _check_live(cfg, args.project)
    if getattr(args, "project", None):
        raise UserError("--project is used with --live")
    return 0


def _integration_summaries(cfg: Config) -> bool:
    """Each integration's targets as the policy and the environment set them (``paging target support-manager
    (...): off (PAGERDUTY_ROUTING_KEY_SUPPORT_MANAGER is not set)``); False after a setting of the wrong shape."""
    from bot.integrations import registry

    ok = True
    for integration in registry.INTEGRATIONS:
        if integration.summary is None:
            continue
        try:
            for line in integration.summary(cfg, environment()):
                print(line)
        except ValueError as exc:
            print(f"{integration.label}: {exc}", file=sys.stderr)
            ok = False
    return ok


def _check_live(cfg: Config, incident_project: str | None) -> int:
    """``check-config --live``: one line per channel with a team project or template, then each enabled outbound
    integration's checks (Slack: with ``SLACK_BOT_TOKEN`` and a ``chat:`` section, the token and each target);
    exit 2 on a problem."""
    from bot import wiring
    from bot.commands.checks import live_checks, timeline_checks
    from bot.commands.people import people_checks

    env = Settings.from_env(need=("gitlab",))
    client = wiring.client(env, cfg)
    checks: list[tuple[bool, str]] = [(c.ok, c.line) for c in live_checks(cfg, client, incident_project)]
    if not checks:
        print("no channel names a team project or template: nothing to check in GitLab")
    checks += [(c.ok, c.line) for c in people_checks(cfg, client, [incident_project] if incident_project else [])]
    checks += [(c.ok, c.line) for c in timeline_checks(cfg, client, incident_project)]
    from bot.integrations import registry

    for integration in registry.INTEGRATIONS:
        if integration.enabled(cfg, env) and integration.live_checks is not None:
            checks += [(c.ok, c.text) for c in integration.live_checks(cfg, env)]
        elif integration.not_checked is not None and (why := integration.not_checked(cfg)):
            print(why)
    for ok, line in checks:
        print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if all(ok for ok, _ in checks) else 2


def cmd_plan(args: argparse.Namespace) -> int:
    from bot.commands import planview

    cfg = _load(args)
    now = datetime.now(UTC)
    if args.payload:
        report = planview.plan_from_payload(Path(args.payload), cfg, renderer_for(cfg), now, event=args.event)
    elif args.incident:
        from bot import wiring

        settings = functools.cache(lambda: Settings.from_env(need=("gitlab",)))

        def make() -> Reconciler:
            env = Settings.from_env(need=("gitlab",))
            return wiring.reconciler(env, wiring.incident_scope(env, cfg, required=False), clock=lambda: now)

        def outbox(incident_key: str) -> list[OutboxItem] | None:  # which Slack messages were sent
            return planview.read_outbox(settings().db, settings().db_durability)(incident_key)

        try:
            report = planview.plan_live(args.incident, make, outside_is_error=True, outbox=outbox)
        except OutsideRemit as exc:
            raise UserError(f"{args.incident}: outside the bot's remit: {exc.reason}; {remit_hint(exc)}") from None
    else:
        raise UserError("plan needs --payload FILE or GROUP/PROJECT#IID")
    if args.json:
        print(json.dumps(report.as_json(), indent=2, default=str))
    else:
        print(report.as_text(verbose=args.verbose, raw=args.raw))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bot import wiring
    from bot.commands import reportview

    cfg = _load(args)
    now = datetime.now(UTC)

    def make() -> Reconciler:
        env = Settings.from_env(need=("gitlab",))
        return wiring.reconciler(env, wiring.incident_scope(env, cfg, required=False), clock=lambda: now)

    try:
        result = reportview.report_live(args.incident, make)
    except OutsideRemit as exc:
        raise UserError(f"{args.incident}: outside the bot's remit: {exc.reason}; {remit_hint(exc)}") from None
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(reportview.as_text(result))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from bot import wiring
    from bot.core.model import IncidentRef

    try:
        ref = IncidentRef.parse(args.incident)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    env = Settings.from_env(need=("gitlab",))
    cfg, loaded = wiring.load_policy(env, getattr(args, "config", None))
    cfg = wiring.incident_scope(env, cfg)
    print(f"{ref}: {loaded}")
    reconciler = wiring.reconciler(env, cfg)
    try:
        report = reconciler.reconcile(ref)
    except OutsideRemit as exc:
        raise UserError(f"{ref}: outside the bot's remit: {exc.reason}; nothing written; {remit_hint(exc)}") from None
    finally:
        reconciler.close()
    if not report.actions:
        print(f"{ref}: already converged, nothing to do ({report.seconds:.2f}s)")
    for action in report.actions:
        print(f"{ref}: {action.describe()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.commands.demo import run_demo

    return run_demo(_load(args), verbose=args.verbose)


def cmd_init(args: argparse.Namespace) -> int:
    from bot import wiring
    from bot.commands.initproject import run_init, scope_lines, team_webhook_lines, webhook_lines
    from bot.gitlab.projectsetup import ProjectSetup

    cfg = _load(args)
    project = args.project.strip().strip("/")
    if "/" not in project and not project.isdigit():
        raise UserError(f"init needs GROUP/PROJECT (the project's full path), got {args.project!r}")
    settings = Settings.from_env(need=("gitlab",))
    gl = ProjectSetup(wiring.client(settings, cfg))
    run_init(gl, cfg, project, apply=args.apply, gitlab_url=settings.gitlab_url or "")
    for line in scope_lines(wiring.incident_scope(settings, cfg, required=False), project):
        print(line)
    for line in webhook_lines(args.url, secret_is_set=bool(settings.webhook_secret)):
        print(line)
    for line in team_webhook_lines(cfg, args.url):
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
    config_help = "policy file (default: INCIDENT_BOT_CONFIG, else config/bot.yaml)"
    parser.add_argument("--config", help=config_help)
    # The same option after the subcommand: SUPPRESS keeps an absent one from resetting the value given before.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=help_epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = add("check-config", cmd_check_config, "validate the config and its templates; one line per problem")
    p.add_argument(
        "--live",
        action="store_true",
        help="also read GitLab (GITLAB_URL, GITLAB_TOKEN; writes nothing): does each channel's team project and "
        "template exist, and may the bot create confidential issues and links there; with SLACK_BOT_TOKEN "
        "(SLACK_API_URL) also Slack (posts nothing): is the token valid, and may the bot post to each chat: target",
    )
    p.add_argument("--project", help="with --live: the GROUP/PROJECT incidents are opened in (the links' other end)")

    p = add("plan", cmd_plan, "dry run: what the bot would create, assign and post; changes nothing")
    p.add_argument("incident", nargs="?", help="GROUP/PROJECT#IID to plan against a live GitLab")
    p.add_argument("--payload", help="a webhook payload (JSON file) to plan offline, without GitLab")
    p.add_argument("--event", help="the X-Gitlab-Event header of the payload (default: from its shape)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="print every body as a person reads it in GitLab")
    p.add_argument("--raw", action="store_true", help="print every body as the exact Markdown the bot writes")

    p = add("report", cmd_report, "the communications review of one incident (reads GitLab, writes nothing)")
    p.add_argument("incident", help="GROUP/PROJECT#IID")
    p.add_argument("--json", action="store_true", help="machine-readable output (schema: docs/review.md)")

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

    p = add("demo", cmd_demo, "the lifecycle of an example incident against a built-in simulated GitLab")
    p.add_argument("--verbose", "-v", action="store_true", help="also print every API call")

    from bot.commands.service import register_service_commands

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
    except GitLabCallError as exc:
        print(f"incident-bot: {redact(gitlab_error_line(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        return 130


def _stdout_closed() -> int:
    """The reader of our output went away (``incident-bot demo | head``): stop quietly, like other tools do.

    Later writes, and the interpreter's flush at exit, go to /dev/null instead of raising again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
    return 141  # 128 + SIGPIPE, as a shell reports a writer stopped by a closed pipe
