"""PagerDuty events over incidents' lifetimes: PagerDuty's own client against the simulated PagerDuty (loopback)
with 20 % of answers 429 or 500, driven as the durable job loop will (record the intent, send, retry with
back-off until 202, record the answer).

    .venv/bin/python bench/bench_pagerduty.py

Scenario: 20 critical incidents, each with a customer-facing channel and every fifth also with the
distribution list channel; each incident's webhook delivered 3 times; one ``page support-manager`` by hand on
a low-severity incident; then all clear everywhere; then every incident delivered again. Prints the events the
plan wanted (the lower bound: one trigger and one resolve per page), the HTTP requests made (one per send, the
client's own retries off), the faults met, alerts opened per target against the pages wanted, alerts still
open after all clear (must be 0), the requests of the no-op pass after all clear (must be 0), and the median
and worst time of one send over loopback.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import yaml

from bot.integrations.pagerduty.adapter import PagerDutySender, Sent
from bot.integrations.pagerduty.config import EXAMPLE_POLICY, parse_paging
from bot.integrations.pagerduty.plan import Facts, PageRequest, Recorded, pending, plan_pages
from bot.simpagerduty import SimulatedPagerDuty

TARGETS = parse_paging(yaml.safe_load(EXAMPLE_POLICY)["integrations"]["pagerduty"]).targets
KEYS = {"support-manager": "s" * 32, "marketing-ops": "m" * 32}
INSTANCE = "https://gitlab.example.com"


def incident(iid: int, **changes: object) -> Facts:
    channels = {"comms-email"} | ({"comms-distribution-list"} if iid % 5 == 0 else set())
    facts = Facts(INSTANCE, 7, "group/project", iid, "critical", frozenset(channels), True,
                  f"{INSTANCE}/group/project/-/issues/{iid}", title=f"secret title {iid}")
    return replace(facts, **changes)  # type: ignore[arg-type]


def main() -> None:
    with SimulatedPagerDuty() as sim:
        sim.random_faults(0.2, seed=20)
        pd = PagerDutySender(KEYS, base_url=sim.url)
        recorded: dict[str, Recorded] = {}
        wanted: set[tuple[str, str]] = set()
        durations: list[float] = []

        def deliver(facts: Facts) -> None:
            for page in pending(plan_pages(TARGETS, facts, recorded), recorded):
                wanted.add((page.key, page.action))
                if page.action == "trigger":
                    recorded.setdefault(page.key, "trying")
                while True:
                    start = time.perf_counter()
                    outcome = pd.send(page)
                    durations.append(time.perf_counter() - start)
                    if isinstance(outcome, Sent):
                        recorded[page.key] = "triggered" if page.action == "trigger" else "resolved"
                        break

        incidents = [incident(iid) for iid in range(1, 21)]
        manual = incident(100, severity="low", channels=frozenset(), requests=(
            PageRequest("support-manager", "customers are calling", 5001, "maintainer", datetime.now(UTC)),))
        for _ in range(3):
            for facts in [*incidents, manual]:
                deliver(facts)
        opened = Counter(next(t for t, k in KEYS.items() if k == a.routing_key) for a in sim.state.alerts)
        pages = Counter(key.split("/")[2] for key, action in wanted if action == "trigger")
        for facts in [*incidents, manual]:
            deliver(replace(facts, state="all-clear"))
        still_open = len(sim.open_alerts())
        before = sim.count()
        for facts in [*incidents, manual]:
            deliver(replace(facts, state="all-clear"))
            deliver(facts)  # reopened and still critical: pages no one
        noop = sim.count() - before
        statuses = Counter(r.status for r in sim.received)
    print(f"events wanted (lower bound): {len(wanted)} ({sum(1 for _, a in wanted if a == 'trigger')} triggers, "
          f"{sum(1 for _, a in wanted if a == 'resolve')} resolves)")
    print(f"HTTP requests: {sum(statuses.values())} = {statuses[202]} accepted + {statuses[429]} x 429 + "
          f"{statuses[500]} x 500 (one request per send)")
    for target in KEYS:
        print(f"alerts opened for {target}: {opened[target]} (pages wanted: {pages[target]})")
    print(f"alerts open after all clear: {still_open}")
    print(f"requests of the passes after all clear: {noop}")
    print(f"one send over loopback: median {statistics.median(durations) * 1000:.1f} ms, "
          f"worst {max(durations) * 1000:.1f} ms ({len(durations)} sends)")


if __name__ == "__main__":
    main()
