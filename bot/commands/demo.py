"""``incident-bot demo``: an example incident's lifecycle against the built-in simulated GitLab.

People act on the incident (through the simulator's seeding API, as they would in GitLab's UI); after
each step the bot looks at the incident again, exactly as it does on a webhook, and the transcript
shows what appeared in GitLab.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.commands.world import World, world
from bot.config import Config
from bot.core import bodies
from bot.core.model import IncidentRef
from bot.core.outbound import Engaged, OutboundFacts
from bot.integrations import registry
from bot.integrations.base import DemoSide
from bot.integrations.slack.job import SLACK, SlackPlanner, SlackWorker
from bot.integrations.slack.plan import is_channel_key
from bot.integrations.slack.ports import ChatPort
from bot.reconciler import ReconcileReport
from bot.simgitlab import ManualClock, SimulatedGitLab
from bot.simslack import SimulatedSlack
from bot.store.base import OutboxItem, WorkerStore
from bot.store.sqlite import SQLiteStore
from bot.text.markers import strip_markers

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")

STATUS_UPDATE = """**Status update**

**1. Current risk**
High: customer export data of 40 projects was readable by other tenants.

**2. Users impacted (some, many, all?)**
Some: 40 projects on the hosted service.

**3. Timeline of events**
- 08:40 report received
- 09:05 export endpoint disabled

**4. Mitigation steps taken**
Endpoint disabled; access logs preserved.

**5. Current status of the incident**
Contained; investigating which exports were read.

**6. Next steps**
Notify impacted customers; publish the blog post.
"""


def readable(body: str) -> str:
    """A comment as a person reads it in GitLab: no hidden markers, no escaping backslashes."""
    return _ESCAPE.sub(r"\1", strip_markers(body)).strip()


# The team's own issue template in its project, as Marketing Programs might keep it (the plan engages them
# "by creating an issue using the Email-Request-mpm template").
TEAM_PROJECT = "marketing/programs"
TEAM_TEMPLATE = "Email-Request-mpm"
TEAM_TEMPLATE_TEXT = """## Email request (Marketing Programs)

Fill in every field; we schedule the send once the draft is approved.

- [ ] Audience / list
- [ ] Sender and reply-to
- [ ] Draft approved
- [ ] Send date and time
"""


def demo_config(cfg: Config) -> Config:
    """``cfg`` with the customer email's child opened in Marketing Programs' project from its own template,
    unless the policy already says where (the bundled policy leaves it commented out)."""
    channels = [
        c.model_copy(update={"project": TEAM_PROJECT, "gitlab_template": TEAM_TEMPLATE})
        if c.label == "comms-email" and c.project is None and c.gitlab_template is None
        else c
        for c in cfg.channels
    ]
    update: dict[str, Any] = {"channels": channels}
    if cfg.chat is not None:  # the incident response channel named, and the SIMOC reached by DM for reminders
        update["chat"] = cfg.chat.model_copy(update={
            "incident_channel": cfg.chat.incident_channel or "#inc-{iid}",
            "people": {
                "sec-incident-manager": "email:sec-incident-manager@example.com",
                "sec-director": "email:sec-director@example.com",
                **cfg.chat.people,
            },
        })
    return cfg.model_copy(update=update)


@contextmanager
def _simulated_slack(cfg: Config, clock: ManualClock) -> Iterator[tuple[ChatPort, SimulatedSlack]]:
    """A simulated Slack workspace holding the policy's channels (the bot invited) and the people it
    messages directly, and the real Slack client (``slack_sdk``) talking to it."""
    from bot.integrations.slack.slackapi import SlackChat

    assert cfg.chat is not None
    with SimulatedSlack(clock=lambda: clock().timestamp(), rate_limit=False) as slack:
        targets = [*cfg.chat.targets()]
        if cfg.chat.incident_channel:
            targets.append(cfg.chat.incident_channel.format(iid=1))
        for target in dict.fromkeys(targets):
            if target.startswith("#"):
                slack.state.add_channel(target[1:])
            elif target.startswith("email:"):
                email = target.removeprefix("email:")
                slack.state.add_user(email.partition("@")[0], email)
        yield SlackChat(slack.token, slack.url), slack


def seed_team_projects(w: World) -> list[str]:
    """The team projects the policy names, with the bot user a Reporter and each named template."""
    made: list[str] = []
    for channel in w.cfg.channels:
        if channel.project and channel.project.lower() not in {m.lower() for m in made}:
            w.team_project(channel.project)
            made.append(channel.project)
        if channel.project and channel.gitlab_template:
            w.sim.state.add_issue_template(channel.project, channel.gitlab_template, TEAM_TEMPLATE_TEXT)
    return made


@dataclass
class Snapshot:
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: set[tuple[str, str]] = field(default_factory=set)
    notes: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)  # id -> issue, author, body, thread


def take(w: World, projects: tuple[str, ...] = ()) -> Snapshot:
    """The incident's project and the team projects, issues named ``#1`` there and ``group/project#1`` here."""
    snap = Snapshot()
    for project in (w.project, *projects):

        def ref(issue: dict[str, Any]) -> str:
            return str(issue["references"]["full" if issue["project_id"] != w.project_id else "short"])

        for issue in w.sim.state.issues(project):
            iid = issue["iid"]
            snap.issues[ref(issue)] = issue
            for link in w.sim.state.links(project, iid):
                snap.links.add(tuple(sorted((ref(issue), ref(link)))))  # type: ignore[arg-type]
            for discussion in w.sim.state.discussions(project, iid):
                notes = [n for n in discussion["notes"] if not n["system"]]
                for i, note in enumerate(notes):
                    thread = "" if i == 0 else _thread_name(notes[0], w.cfg.bot.username)
                    snap.notes[note["id"]] = (ref(issue), note["author"]["username"], note["body"], thread)
    return snap


def _thread_name(root: dict[str, Any], bot: str) -> str:
    author = root["author"]["username"]
    if author == bot and bodies.is_log_thread_note(root["body"]):
        return "the status log thread"
    return f"@{author}'s thread"


def changes(before: Snapshot, after: Snapshot, bot: str) -> list[str]:
    out = []
    for iid, issue in after.issues.items():  # iid: "#1", or "group/project#1" in a team's project
        old = before.issues.get(iid)
        who = ", ".join("@" + a["username"] for a in issue["assignees"]) or "nobody"
        if old is None:
            flag = "confidential" if issue["confidential"] else "PUBLIC"
            out.append(
                f"+ issue {iid} {issue['title']!r} ({flag}, assigned to {who}, labels: {', '.join(issue['labels'])})"
            )
            if "/" in iid.partition("#")[0]:  # in a team's project: show that it starts with the team's template
                first = next((line for line in issue["description"].splitlines() if line.strip()), "")
                out.append(f"    its description starts with the team's template: {first!r}")
            continue
        if old["assignees"] != issue["assignees"]:
            out.append(f"~ issue {iid} assigned to {who}")
        added = sorted(set(issue["labels"]) - set(old["labels"]))
        removed = sorted(set(old["labels"]) - set(issue["labels"]))
        if added or removed:
            out.append(f"~ issue {iid} labels " + " ".join([*("+" + a for a in added), *("-" + r for r in removed)]))
        if old["state"] != issue["state"]:
            out.append(f"~ issue {iid} {issue['state']}")
        if old["description"] != issue["description"]:
            out.append(f"~ edited description of issue {iid} (changed lines):")
            out.extend(_changed_lines(old["description"], issue["description"]))
    for a, b in sorted(after.links - before.links):
        out.append(f"+ link {a} <-> {b} (relates to)")
    for note_id, (iid, author, body, thread) in after.notes.items():
        old_note = before.notes.get(note_id)
        if author != bot or (old_note and old_note[2] == body):
            continue
        if old_note is None:
            where = f"reply by @{author} in {thread}" if thread else f"comment by @{author}"
            out.append(f"+ {where} on {iid}:")
            out.extend("    | " + line for line in readable(body).splitlines())
            continue
        out.append(f"~ edited comment by @{author} on {iid} (changed lines):")
        out.extend(_changed_lines(old_note[2], body))
    return out


def _changed_lines(old: str, new: str) -> list[str]:
    old_lines, new_lines = readable(old).splitlines(), readable(new).splitlines()
    return [
        f"    {line[0]} {line[1:]}"
        for line in difflib.unified_diff(old_lines, new_lines, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


class InlineExecutor(Executor):
    """Runs each task at once in the caller's thread: the demo's GitLab calls happen in one fixed order,
    so its transcript (issue numbers, texts, ``-v``'s list of calls) is the same on every run."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def slack_readable(text: str) -> str:
    """A Slack message's first line as a person sees it: links as their labels, entities decoded."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"<[^|>]*\|([^>]*)>", r"\1", line)
    return line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\u200d", "")


def count(n: int, noun: str) -> str:
    """``1 change``, ``4 API calls``: plain English for the transcript."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass
class Demo:
    w: World
    clock: ManualClock
    incident: int = 0
    log: Callable[[str], None] = print
    verbose: bool = False
    teams: tuple[str, ...] = ()  # team projects children may be opened in
    chat: ChatPort | None = None  # the Slack Web API client (slack_sdk) talking to the simulated Slack, with Slack on
    slack_sim: SimulatedSlack | None = None
    outbox: WorkerStore | None = None  # the store the Slack side keeps its outbox in (a scratch SQLite file)
    sides: list[DemoSide] = field(default_factory=list)  # the other integrations' parts, against their simulators

    @property
    def engaged(self) -> dict[str, Engaged]:
        """The engagements the bot carried out in Slack, read from the outbox (as the worker passes them)."""
        if self.outbox is None:
            return {}
        return dict(self._planner().facts(self.outbox, self.key).engaged)

    @property
    def key(self) -> str:
        return f"{self.w.project_id}#{self.incident}"

    def _planner(self) -> SlackPlanner:
        from bot.wiring import slack_renderer

        return SlackPlanner(self.w.cfg, slack_renderer(self.w.cfg))

    def look(self) -> ReconcileReport:
        """One reconcile, one GitLab call at a time in a fixed order, with what the Slack side has sent (as the
        worker passes it from the store)."""
        reconciler = self.w.reconciler(clock=self.clock, concurrency=1)
        reconciler.pool.shutdown()
        reconciler.pool = InlineExecutor()
        try:
            outbound = OutboundFacts(engaged=dict(self.engaged))
            for side in self.sides:
                outbound = outbound.merged(side.facts(self.key))
            return reconciler.reconcile(IncidentRef(self.w.project, self.incident), outbound=outbound)
        finally:
            reconciler.close()

    def report(self, title: str, act: Callable[[], ReconcileReport]) -> ReconcileReport:
        before = take(self.w, self.teams)
        self.w.sim.reset_log()
        report = act()
        after = take(self.w, self.teams)
        calls = len(self.w.sim.requests)
        writes = len(self.w.sim.writes())
        self.log(
            f"    {title}: {count(len(report.actions), 'change')}, "
            f"{count(calls, 'API call')} ({count(writes, 'write')})"
        )
        if self.verbose:
            for req in self.w.sim.requests:
                self.log(f"      {req.method} {req.path} -> {req.status}")
        lines = changes(before, after, self.w.cfg.bot.username)
        for line in lines or ["(nothing to change)"]:
            # Links into the simulated GitLab are shown from its root: its port differs on every run.
            self.log("  " + line.replace(self.w.sim.url + "/", "/"))
        return report

    def step(
        self, at: str, who: str, what: str, act: Callable[[], Any], *, child: tuple[int, int] | None = None
    ) -> None:
        """One person's action, then the bot looks at the incident again. ``child`` (project id, iid): the action
        was on that child, and only the child's own Issue Hook tells the bot; the incident is looked at again
        only when the receiver's routing finds it from the child's signed marker (as ``serve`` does)."""
        hours, minutes = (int(x) for x in at.split(":"))
        self.clock.set(START.replace(hour=hours, minute=minutes))
        self.log(f"\n=== {at}  {who}: {what}")
        act()
        if child is not None and not self.child_hook(who, *child):
            return
        report = self.report("incident-bot looks again", self.look)
        engaged = len(self.engaged)
        for line in self.slack_lines(report):
            self.log("  " + line)
        if len(self.engaged) > engaged:  # the Slack worker queues the incident's GitLab job: the checklist says so
            self.report("incident-bot looks again (its Slack engagements went out)", self.look)
        for side in self.sides:
            sent = side.step(self.key, report.desired, report.observed)
            for line in sent:
                self.log("  " + line)
            if sent:  # its job handler queues the incident's GitLab job: the checklist shows what went out
                self.report("incident-bot looks again (what it sent went out)", self.look)
        for side in self.sides:
            moment = side.moment()
            if moment is not None:
                self.step(*moment)

    def child_hook(self, who: str, project: int, iid: int) -> bool:
        """Route GitLab's Issue Hook for the child as the receiver does; True when it queues this incident."""
        from bot.core.children import ChildOf, child_event
        from bot.core.events import parse_event
        from bot.core.scope import team_projects
        from bot.simgitlab.hooks import issue_hook
        from bot.statekey import derived_key
        from bot.text.markers import StateKey

        payload = issue_hook(self.w.sim.state, project, iid, "close", user=who.lstrip("@"))
        path = payload["project"]["path_with_namespace"]
        key = StateKey(derived_key(self.w.sim.token))  # the receiver's, as the worker's (World.reconciler)
        found = child_event(parse_event("Issue Hook", payload), self.w.cfg, key, team_projects(self.w.cfg))
        if isinstance(found, ChildOf) and found.ref.key == f"{self.w.project_id}#{self.incident}":
            self.log(f"    GitLab sends the Issue Hook for {path}#{iid} (a webhook on {path}); its signed marker "
                     f"names {found.shown}: queued")
            return True
        self.log(f"    GitLab sends the Issue Hook for {path}#{iid}; not queued: {getattr(found, 'reason', found)}")
        return False

    def slack_lines(self, report: ReconcileReport) -> list[str]:
        """What this step sends to the simulated Slack over HTTP, as the worker does: the plan's messages
        offered to the outbox, then the Slack worker's handler until no Slack job is ready. Each message goes
        once, a summary is edited in place when its text changes."""
        if self.w.cfg.chat is None or self.chat is None or self.slack_sim is None or self.outbox is None:
            return []
        store, chat = self.outbox, self.chat
        before = {i.key: i for i in store.items(SLACK, self.key)}
        if not self._planner().offer(store, self.key, report.desired, report.observed, self.clock()):
            return []
        self.slack_sim.reset_calls()
        sender = SlackWorker(store, lambda: chat, worker_id="demo:slack", clock=self.clock)
        while sender.run_once() is not None:
            pass
        calls = len(self.slack_sim.calls)
        after = store.items(SLACK, self.key)
        sent = [i for i in after if i.state == "sent" and _newly_sent(before.get(i.key), i)]
        out = [f"Slack: {count(len(sent), 'message')}, {count(calls, 'Slack API call')}"]
        if self.verbose:
            out += [f"  Slack {c.method} {c.channel or ''} -> {c.status}".rstrip() for c in self.slack_sim.calls]
        for item in sent:
            if is_channel_key(item.key):
                out.append(f"Slack created the incident channel {item.target}")
                continue
            earlier = before.get(item.key)
            edited = " (summary edited)" if earlier is not None and earlier.sent else ""
            out.append(f"Slack {item.target}{edited}: {slack_readable(item.text)}")
        out += [f"Slack refused {i.target}: {i.reason}" for i in after
                if i.state == "refused" and (i.key not in before or before[i.key].state != "refused")]
        return out

    def labels(self, *add: str, remove: tuple[str, ...] = ()) -> Callable[[], Any]:
        def act() -> None:
            current = self.w.sim.state.get_issue(self.w.project, self.incident)["labels"]
            wanted = [label for label in current if label not in remove] + [a for a in add if a not in current]
            self.w.sim.state.set_labels(self.w.project, self.incident, wanted, actor="sec-oncall")

        return act


def _newly_sent(before: OutboxItem | None, after: OutboxItem) -> bool:
    """Whether this step sent the item, or edited it in place (a summary)."""
    return before is None or before.state != "sent" or before.sent_text != after.sent_text


def run_demo(
    cfg: Config,
    *,
    verbose: bool = False,
    log: Callable[[str], None] = print,
    at_end: Callable[[Demo], None] | None = None,
) -> int:
    """The demo's story; ``at_end`` is called with the demo's world before the simulated GitLab stops."""
    clock = ManualClock(START)
    cfg = demo_config(cfg)
    with SimulatedGitLab(now=clock) as sim, ExitStack() as stack:
        w = world(sim, cfg)
        teams = tuple(seed_team_projects(w))
        demo = Demo(w, clock, log=log, verbose=verbose, teams=teams)
        log("incident-bot demo: a simulated GitLab on 127.0.0.1, project " + w.project)
        for channel in cfg.channels:
            if channel.project:
                source = f"its template {channel.gitlab_template}" if channel.gitlab_template else "bundled templates"
                log(f"team project: {channel.project} ({channel.label} children from {source})")
        log(f"people: {', '.join(sorted(u for u in (sim.state.user(n)['username'] for n in _people(cfg))))}")
        if cfg.chat is not None:
            demo.chat, demo.slack_sim = stack.enter_context(_simulated_slack(cfg, clock))
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="incident-bot-demo-")))
            demo.outbox = stack.enter_context(SQLiteStore(scratch / "outbox.sqlite3", durability="normal"))
            log("Slack: a simulated Slack on 127.0.0.1, as with SLACK_BOT_TOKEN set (lines 'Slack ...')")
        for integration in registry.INTEGRATIONS:
            if integration.demo is None:
                continue
            if demo.outbox is None:
                scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="incident-bot-demo-")))
                demo.outbox = stack.enter_context(SQLiteStore(scratch / "outbox.sqlite3", durability="normal"))
            side = stack.enter_context(integration.demo(cfg, sim.url, demo.outbox, clock))
            if side is not None:
                demo.sides.append(side)
                log(side.intro)

        def declare() -> None:
            demo.incident = w.incident(
                "severity::1",
                "data-breach",
                title="Customer data exposed through export API",
                description="Export endpoint returned other tenants' data.\n/close\n@all please look",
            )

        demo.step("09:00", "@sam-reporter", "declares incident #1 (severity::1, data-breach)", declare)
        scoped = demo.labels("comms::scoped", "publicly-reported", "comms-blog", remove=("comms::investigating",))

        def scope_and_channels() -> None:
            scoped()
            sim.state.add_note(w.project, demo.incident, "@incident-bot add email faq", author="sec-oncall")

        demo.step(
            "09:20",
            "@sec-oncall",
            "scope and impact known: comms::scoped, publicly-reported, channel blog; takes the proposed email and FAQ "
            "with `@incident-bot add email faq`",
            scope_and_channels,
        )
        demo.step("10:01", "the periodic sweep", "an hour has passed without a status update", lambda: None)
        demo.step(
            "10:05",
            "@sec-incident-manager",
            "posts a six-point status update",
            lambda: sim.state.add_note(w.project, demo.incident, STATUS_UPDATE, author="sec-incident-manager"),
        )
        demo.step(
            "10:40",
            "@sec-oncall",
            "hands the SEOC role over at the end of the shift",
            lambda: sim.state.add_note(
                w.project, demo.incident, "@incident-bot handoff seoc @secops-oncall", author="sec-oncall"
            ),
        )
        email = next(c for c in w.all_children() if "comms-email" in c["labels"])
        email_ref = email["references"]["full" if email["project_id"] != w.project_id else "short"]
        blog = next(c["iid"] for c in w.children() if "comms-blog" in c["labels"])
        demo.step(
            "11:00",
            "@sec-oncall",
            f"publishes the blog post and closes #{blog} before the customer email ({email_ref}) went out",
            lambda: sim.state.close_issue(w.project, blog, actor="sec-oncall"),
            child=(w.project_id, blog),
        )
        demo.step(
            "11:30",
            "@mpm-oncall",
            f"sends the customer email and closes {email_ref}",
            lambda: sim.state.close_issue(email["project_id"], email["iid"], actor="mpm-oncall"),
            child=(email["project_id"], email["iid"]),
        )
        demo.step(
            "12:00",
            "@sec-oncall",
            "all clear: comms::all-clear",
            demo.labels("comms::all-clear", remove=("comms::scoped",)),
        )
        demo.step("13:30", "the periodic sweep", "no reminders after the all clear", lambda: None)
        demo.step(
            "14:00",
            "@secops-oncall",
            "closes the incident while the FAQ issue is still open",
            lambda: sim.state.close_issue(w.project, demo.incident, actor="secops-oncall"),
        )
        demo.step("14:01", "GitLab", "delivers the same webhook again", lambda: None)
        if at_end is not None:
            at_end(demo)
        hazards = sim.hazards_except(allowed_mentions=_people(cfg))
        log("\nSafety: " + ("no quick action or unexpected mention reached GitLab" if not hazards else f"{hazards}"))
        children = w.all_children()
        public = [c for c in children if not c["confidential"]]
        log(
            f"{count(len(children), 'child issue')}, "
            + ("all confidential" if not public else f"{len(public)} of them PUBLIC: " + ", ".join(
                f"#{c['iid']}" for c in public))
        )
    from bot.commands.demo_statuspage import status_page_story

    shown = status_page_story(cfg, log, readable)
    return 0 if not hazards and shown else 1


def _people(cfg: Config) -> set[str]:
    from bot.commands.world import configured_users

    return configured_users(cfg)


def at(hours: int, minutes: int = 0) -> datetime:
    return START + timedelta(hours=hours, minutes=minutes)
