"""Channels the plan implies are proposed, never opened, until a person adds them with ``@incident-bot add``.

The policy side (``proposed_when``), the command's parsing and judging as tables, then the incident against
the simulated GitLab as each person around it acts: a Developer adds, a Guest is refused, a Maintainer who
removes the label is not overridden, a crash between the label and the reply changes nothing, and the
operator who mistypes the policy is told in one line.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from bot.commands.cli import main
from bot.commands.world import World, world
from bot.config import Config, parse_config
from bot.core import bodies, commands
from bot.core.model import BotState, IncidentRef, Issue, Note
from bot.core.policy import plan
from bot.gitlab.errors import GitLabCallError
from bot.simgitlab import ManualClock, SimulatedGitLab
from tests.conftest import ROOT, T0, look
from tests.rendered import rendered_lines, rendered_text
from tests.test_reconciler import fast_policy

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def incident(*labels: str) -> Issue:
    return Issue(IncidentRef("acme/sec", 1), id=100, labels=frozenset(("security-incident", *labels)))


# ---- the policy: which channels are proposed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "proposed"),
    [
        (("severity::1", "data-breach"), ["comms-email", "comms-faq"]),
        (("severity::2", "data-breach", "comms-email"), ["comms-faq"]),  # selected: no longer proposed
        (("severity::1", "data-breach", "comms-email", "comms-faq"), []),
        (("severity::1",), []),
        (("severity::1", "rce-exploited", "publicly-reported"), []),
        (("severity::3", "data-breach"), []),  # out of the plan's scope: nothing at all
    ],
)
def test_the_bundled_policy_proposes_the_email_and_the_faq_on_a_data_breach(default_config, labels, proposed):
    desired = plan(incident(*labels), BotState(), default_config, NOW)
    assert [p.channel for p in desired.proposals] == proposed
    assert all(p.reason == "data-breach is set" for p in desired.proposals)
    assert not {c.channel for c in desired.children} & set(proposed), "a proposal opens nothing"


def test_a_proposal_names_the_short_name_the_add_command_takes(default_config):
    desired = plan(incident("severity::1", "data-breach"), BotState(), default_config, NOW)
    assert [(p.short, p.title) for p in desired.proposals] == [
        ("email", "Incident response customer email"),
        ("faq", "Customer FAQ"),
    ]


def with_channels(*labels: str) -> Config:
    data = bundled()
    data["channels"] = [dict(data["channels"][0], label=label) for label in labels]
    data["comms_order"] = []
    data.pop("approvals")  # it names the bundled channels
    return parse_config(data, base_dir=ROOT / "config")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("comms-email", "comms-blog"), {"comms-email": "email", "comms-blog": "blog"}),
        (("email", "blog"), {"email": "email", "blog": "blog"}),  # no shared prefix: the label itself
        (("pr-email", "press"), {"pr-email": "pr-email", "press": "press"}),  # "pr" is no prefix up to a "-"
        (("comms-email",), {"comms-email": "comms-email"}),  # one channel: nothing to shorten against
    ],
)
def test_short_names(labels, expected):
    cfg = with_channels(*labels)
    assert {label: commands.short_name(label, cfg) for label in labels} == expected


# ---- the command: parse and judge --------------------------------------------------------------------


def command(text: str, *, allowed: bool = True, author: str = "dev-dora") -> commands.Command:
    note = Note(7, text, author, created_at=NOW, author_id=5)
    cmd = commands.parse(note, "incident-bot")
    assert cmd is not None
    return commands.Command(cmd.note, cmd.name, cmd.args, allowed=allowed)


@pytest.mark.parametrize(
    ("text", "selected", "ok", "added", "says"),
    [
        ("@incident-bot add email", (), True, ("comms-email",), "added 'comms-email' to the incident"),
        ("@incident-bot add comms-email", (), True, ("comms-email",), "added 'comms-email'"),
        ("@incident-bot add ~comms-faq", (), True, ("comms-faq",), "added 'comms-faq'"),
        ("@incident-bot ADD Email FAQ", (), True, ("comms-email", "comms-faq"), "'comms-email', 'comms-faq'"),
        ("@incident-bot add email comms-email", (), True, ("comms-email",), "its issue"),
        ("@incident-bot add email", ("comms-email",), True, (), "'comms-email' is already selected"),
        (
            "@incident-bot add email faq",
            ("comms-email",),
            True,
            ("comms-faq",),
            "added 'comms-faq' to the incident, asked by 'dev-dora'; the checklist lists its issue; "
            "'comms-email' is already selected",
        ),
        ("@incident-bot add emial", (), False, (), "unknown channel 'emial'; nothing added (did you mean email?"),
        ("@incident-bot add email blgo", (), False, (), "unknown channel 'blgo'; nothing added (did you mean blog?"),
        ("@incident-bot add", (), False, (), "usage: add CHANNEL [CHANNEL ...], e.g. add email; channels: email, "),
    ],
)
def test_judging_add(default_config, text, selected, ok, added, says):
    verdict = commands.judge(command(text), default_config, selected=frozenset(selected))
    assert (verdict.ok, verdict.add_channels) == (ok, added)
    assert says in verdict.reply


def test_add_from_someone_without_the_developer_role_is_refused(default_config):
    verdict = commands.judge(command("@incident-bot add email", allowed=False), default_config)
    assert not verdict.ok and verdict.add_channels == () and verdict.reply.startswith("refused")


def test_add_is_a_known_command_and_records_nothing_but_handled(default_config):
    verdict = commands.judge(command("@incident-bot add email"), default_config)
    state = commands.apply(BotState(), [verdict])
    assert state == BotState(handled=7), "the labels are GitLab's; the state only records the command as handled"


# ---- the operator ---------------------------------------------------------------------------------------


def bundled() -> dict:
    return yaml.safe_load((ROOT / "config" / "bot.yaml").read_text())


def check(tmp_path, data: dict, capsys) -> tuple[int, list[str]]:
    path = tmp_path / "bot.yaml"
    data["templates_dir"] = str(ROOT / "issue_templates")
    path.write_text(yaml.safe_dump(data))
    code = main(["check-config", "--config", str(path)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_mistyped_flag_in_proposed_when_is_one_line_with_did_you_mean(tmp_path, capsys):
    data = bundled()
    data["channels"][0]["proposed_when"] = {"any_flags": ["data-breech"]}
    code, lines = check(tmp_path, data, capsys)
    assert code != 0 and len(lines) == 1, lines
    assert lines[0].endswith(
        "channels[comms-email].proposed_when.any_flags[0]: unknown impact flag 'data-breech' "
        "(did you mean 'data-breach'? or declare it in impact_flags)"
    ), lines


def test_a_mistyped_proposed_when_key_is_one_line_with_did_you_mean(tmp_path, capsys):
    data = bundled()
    data["channels"][0]["proposed_whne"] = data["channels"][0].pop("proposed_when")
    code, lines = check(tmp_path, data, capsys)
    assert code != 0 and len(lines) == 1, lines
    assert "channels[comms-email]: unknown key 'proposed_whne' (did you mean 'proposed_when'?)" in lines[0]


# ---- the incident, as the people around it live it ------------------------------------------------------


@pytest.fixture
def w(w: World) -> World:
    w.sim.state.add_user("guest-gus")
    w.sim.state.add_member(w.project, "guest-gus", 10)
    w.sim.state.add_user("maint-mia")
    w.sim.state.add_member(w.project, "maint-mia", 40)
    return w


def checklist(w: World, iid: int) -> str:
    return next(n["body"] for n in w.bot_notes(iid) if "incident-bot:checklist" in n["body"])


def replies(w: World, iid: int) -> list[str]:
    return [n["body"] for n in w.bot_notes(iid) if any(k.startswith("cmd:") for k in bodies.logged_keys(n["body"]))]


def labels(w: World, iid: int) -> list[str]:
    return w.sim.state.get_issue(w.project, iid)["labels"]


def children(w: World, label: str) -> list[dict]:
    return [c for c in w.all_children() if label in c["labels"]]


def external_section(body: str) -> list[str]:
    lines = rendered_text(body)
    start = lines.index("External communications")
    end = lines.index("Status updates")
    return lines[start + 1 : end]


def test_a_data_breach_shows_each_proposal_on_its_own_line_and_opens_nothing(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    assert w.all_children() == []
    shown = external_section(checklist(w, iid))
    assert shown == [
        "Proposed: Incident response customer email (comms-email), because data-breach is set; comment "
        "@incident-bot add email to open its issue (nothing is opened until then)",
        "Proposed: Customer FAQ (comms-faq), because data-breach is set; comment @incident-bot add faq to open "
        "its issue (nothing is opened until then)",
    ]
    items = [line for line in rendered_lines(checklist(w, iid)) if line.text.startswith("Proposed:")]
    assert all(line.block == "li" and not line.text.startswith("[") for line in items), "a plain line, no box"
    assert look(w, clock, iid).actions == [], "a proposal is stable: nothing more to do"


def test_a_developer_adds_a_proposed_channel_and_its_issue_is_opened_in_the_same_look(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot add email", author="sec-oncall")
    w.sim.reset_log()
    look(w, clock, iid)
    assert "comms-email" in labels(w, iid) and "comms-faq" not in labels(w, iid)
    email = children(w, "comms-email")
    assert len(email) == 1 and email[0]["confidential"]
    shown = external_section(checklist(w, iid))
    assert shown[0].startswith(f"[ ] #{email[0]['iid']} Incident response customer email")
    assert shown[1].startswith("Proposed: Customer FAQ (comms-faq)") and len(shown) == 2
    (reply,) = replies(w, iid)
    assert rendered_text(reply) == [
        "@sec-oncall ✓ add email",
        "added comms-email to the incident, asked by sec-oncall; the checklist lists its issue",
    ]
    log = [line for n in w.bot_notes(iid) for line in rendered_text(n["body"])]
    assert any(line.endswith("because sec-oncall added comms-email with the add command") for line in log), log
    # One label write, one child, one link, one checklist edit, the log line and the reply.
    assert w.sim.count("PUT", rf"/issues/{iid}$") == 1
    assert look(w, clock, iid).actions == []


def test_adding_a_channel_already_selected_says_so_and_writes_no_label(w, clock):
    iid = w.incident("severity::1", "data-breach", "comms-email")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot add email", author="sec-oncall")
    w.sim.reset_log()
    look(w, clock, iid)
    (reply,) = replies(w, iid)
    assert rendered_text(reply)[1] == "comms-email is already selected"
    assert w.sim.count("PUT", rf"/issues/{iid}$") == 0 and len(children(w, "comms-email")) == 1


def test_a_guests_add_is_refused_and_nothing_is_opened(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot add email", author="guest-gus")
    look(w, clock, iid)
    assert "comms-email" not in labels(w, iid) and w.all_children() == []
    (reply,) = replies(w, iid)
    assert rendered_text(reply)[0] == "@guest-gus ✗ add email"
    assert rendered_text(reply)[1].startswith("refused: only project members with at least the Developer role")
    assert "Proposed: Incident response customer email" in "\n".join(external_section(checklist(w, iid)))


def test_an_unknown_channel_is_refused_with_did_you_mean_and_adds_nothing(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot add email fqa", author="sec-oncall")
    look(w, clock, iid)
    assert "comms-email" not in labels(w, iid) and w.all_children() == []
    (reply,) = replies(w, iid)
    assert rendered_text(reply)[1].startswith("unknown channel fqa; nothing added (did you mean faq? channels: ")


def test_a_maintainer_who_removes_the_added_label_is_not_overridden(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot add email", author="sec-oncall")
    look(w, clock, iid)
    kept = [label for label in labels(w, iid) if label != "comms-email"]
    w.sim.state.set_labels(w.project, iid, kept, actor="maint-mia")
    for _ in range(2):
        look(w, clock, iid)
    assert "comms-email" not in labels(w, iid), "the add command is not carried out again"
    assert len(children(w, "comms-email")) == 1, "its issue stays; nothing new is opened"
    shown = external_section(checklist(w, iid))
    assert any("channel deselected, issue kept" in line for line in shown)
    assert not any(line.startswith("Proposed: Incident response customer email") for line in shown), (
        "a channel whose issue exists is not proposed again"
    )
    assert len(replies(w, iid)) == 1


def test_add_on_an_incident_the_plan_does_not_cover_adds_nothing_and_says_why(w, clock):
    iid = w.incident("severity::4", "data-breach")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot add email", author="sec-oncall")
    look(w, clock, iid)
    assert "comms-email" not in labels(w, iid) and w.all_children() == []
    (reply,) = replies(w, iid)
    assert rendered_text(reply)[1].startswith("nothing added: the communications plan does not apply to this incident")


# A look that handles ``add email`` writes: the label and the child (one round, either order), the link, the
# checklist (the command handled), then the status log line and the reply (one round, either order).
WRITES = 6


@pytest.mark.parametrize("k", range(1, WRITES + 1))
def test_a_crash_after_each_write_of_an_add_still_gives_one_label_one_issue_and_a_true_answer(default_config, k):
    clock = ManualClock(T0)
    with SimulatedGitLab(now=clock) as sim:
        w = world(sim, default_config)
        iid = w.incident("severity::1", "data-breach")
        look(w, clock, iid)
        sim.state.add_note(w.project, iid, "@incident-bot add email", author="sec-oncall")
        sim.crash_after_writes(k)
        r = w.reconciler(clock=clock, policy=fast_policy(max_attempts=1))
        try:
            with pytest.raises(GitLabCallError):
                r.reconcile(IncidentRef(w.project, iid))
        finally:
            r.close()
        sim.recover()
        look(w, clock, iid)  # a fresh process: new client, new caches, empty database
        assert look(w, clock, iid).actions == [], f"not converged after a crash after write {k}"
        assert labels(w, iid).count("comms-email") == 1
        assert len(children(w, "comms-email")) == 1, f"crash after write {k}"
        answers = replies(w, iid)
        assert len(answers) <= 1, f"crash after write {k}"
        if k <= 3:  # the checklist did not record the command yet: it is answered, and truly
            assert len(answers) == 1, f"crash after write {k}"
        # Never "already selected": the command did add it. (A crash after the checklist recorded the command
        # and before the reply leaves it applied without a reply, as for every command.)
        assert all("added comms-email to the incident" in rendered_text(a)[1] for a in answers), answers


def test_the_help_reply_lists_add_on_its_own_line(w, clock):
    iid = w.incident("severity::1", "data-breach")
    look(w, clock, iid)
    w.sim.state.add_note(w.project, iid, "@incident-bot help", author="sec-oncall")
    look(w, clock, iid)
    (reply,) = replies(w, iid)
    items = [line.text for line in rendered_lines(reply) if line.block == "li"]
    assert any(item.startswith("@incident-bot add email: select a communications channel") for item in items), items


def test_plan_preview_lists_the_proposed_channels_as_not_opened(tmp_path, capsys):
    import json

    payload = json.loads((ROOT / "examples" / "payloads" / "s1-incident.json").read_text())
    keep = [label for label in payload["labels"] if not label["title"].startswith("comms-")]
    payload["labels"] = keep
    payload["object_attributes"]["labels"] = keep
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))
    assert main(["plan", "--config", str(ROOT / "config" / "bot.yaml"), "--payload", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Child issues (0), all confidential:" in out
    assert "Proposed channels (2), opened only once a person adds them:" in out
    assert "  - comms-faq: 'Customer FAQ' because data-breach is set (comment: add faq)" in out
    assert "create confidential child issue" not in out
    assert main(["plan", "--config", str(ROOT / "config" / "bot.yaml"), "--payload", str(path), "--json"]) == 0
    proposed = json.loads(capsys.readouterr().out)["proposed"]
    assert [p["add"] for p in proposed] == ["email", "faq"]
