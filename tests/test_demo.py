"""The demo tells the truth: the same transcript on every run, every API call listed with -v, plain words."""

from __future__ import annotations

import re

from bot.commands.demo import run_demo


def transcript(cfg, verbose: bool = False) -> list[str]:
    lines: list[str] = []
    assert run_demo(cfg, verbose=verbose, log=lines.append) == 0
    return "\n".join(lines).splitlines()


def test_the_demo_is_the_same_on_every_run(default_config):
    first = transcript(default_config, verbose=True)
    assert transcript(default_config, verbose=True) == first
    assert transcript(default_config, verbose=True) == first


def test_demo_verbose_lists_every_api_call_of_each_step_in_order(default_config):
    lines = transcript(default_config, verbose=True)
    call = re.compile(r"^      (GET|POST|PUT|DELETE) (/api/v4/\S+|/api/graphql) -> \d{3}$")  # graphql: the timeline
    steps = [i for i, line in enumerate(lines) if "incident-bot looks again:" in line]
    assert len(steps) == 12  # with the Support Manager acknowledging the page in PagerDuty
    for i in steps:
        m = re.search(r"(\d+) API calls? \((\d+) writes?\)", lines[i])
        assert m, lines[i]
        listed = []
        for line in lines[i + 1 :]:
            if not call.match(line):
                break
            listed.append(line)
        assert len(listed) == int(m.group(1))
        assert sum(not line.lstrip().startswith("GET") for line in listed) == int(m.group(2))


def test_demo_wording_is_plain(default_config):
    text = "\n".join(transcript(default_config))
    assert "1 change, 4 API calls (1 write)" in text
    assert "(s)" not in text and not re.search(r"\b1 (writes|changes)\b", text)
    assert "3 child issues, all confidential" in text and "True" not in text


def test_after_the_all_clear_no_past_time_is_shown_as_next_due(default_config):
    lines = transcript(default_config)
    start = next(i for i, line in enumerate(lines) if "all clear: comms::all-clear" in line)
    after = [line for line in lines[start:] if "Next due" in line]
    shown = [line for line in after if line.lstrip()[0] in "+|"]  # what the checklist says from then on
    assert shown and all("Next due: none (reminders off: all clear)" in line for line in shown)


def test_the_demo_opens_the_email_child_in_the_teams_project_from_its_template(default_config):
    text = "\n".join(transcript(default_config))
    assert "team project: marketing/programs (comms-email children from its template Email-Request-mpm)" in text
    assert "+ issue marketing/programs#1 'Incident response customer email for security incident " in text
    assert "its description starts with the team's template: '## Email request (Marketing Programs)'" in text
    assert "+ link #1 <-> marketing/programs#1 (relates to)" in text
    assert "+ - [x] marketing/programs#1 **Incident response customer email**" in text


def test_the_demo_shows_the_slack_messages_once_each_and_never_the_title(default_config):
    lines = [line.strip() for line in transcript(default_config) if line.strip().startswith("Slack ")]
    assert "Slack #e-group: :rotating_light: *Broader e-group* engaged on security incident acme/security-incidents#1" \
        in lines
    assert sum(line.startswith("Slack #e-group: :rotating_light:") for line in lines) == 1
    assert any(line.startswith("Slack #security-department (summary edited):") for line in lines)
    assert any(line.startswith("Slack #marketing-programs: :white_check_mark: All clear") for line in lines)
    assert not any("Customer data exposed" in line for line in lines)


def test_the_demo_looks_at_the_incident_after_a_child_closes_only_because_the_childs_own_webhook_names_it(
    default_config,
):
    text = "\n".join(transcript(default_config))
    for child in ("acme/security-incidents#2", "marketing/programs#1"):
        assert f"GitLab sends the Issue Hook for {child} (a webhook on {child.split('#')[0]}); its signed marker " \
               "names acme/security-incidents#1: queued" in text
    assert "not queued" not in text


def test_the_handoff_shows_each_open_childs_names_edited_in_place(default_config):
    lines = transcript(default_config)
    start = next(i for i, line in enumerate(lines) if line.startswith("=== 10:40"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("=== "))
    step = [line.strip() for line in lines[start:end]]
    edited = [line for line in step if line.startswith("~ edited description of issue")]
    assert edited == [
        "~ edited description of issue #2 (changed lines):",
        "~ edited description of issue #3 (changed lines):",
        "~ edited description of issue marketing/programs#1 (changed lines):",
    ]
    assert "+ **DRI:** @secops-oncall (Security Engineer On Call (SEOC))" in step
    assert step.count("+ - Security Engineer On Call (SEOC): @secops-oncall") == 3


def test_the_demo_publishes_the_approved_status_page_draft_and_only_it(default_config):
    lines = [line.strip() for line in transcript(default_config)]
    start = lines.index(next(line for line in lines if line.startswith("The status page:")))
    part = lines[start:]
    assert any("nothing sent to the status page: draft" in line and "is not approved" in line for line in part)
    assert [line for line in part if line.startswith("status.io POST")] == ["status.io POST incident/create -> 200"]
    assert any(line.startswith("status.io now shows 'Security incident update (ref ") for line in part)
    assert "the incident's title never reached status.io" in part
