"""What one incident's status page costs: requests per publish, and the seconds Statuspage's pace adds.

    .venv/bin/python bench/bench_status_page.py [--updates 5]

Each provider's adapter against its simulator on loopback: create, ``--updates`` updates, a duplicate
delivery of the last one, a resolve; then a second incident whose create answer is lost, and its retry. Prints the HTTP
requests each step took and, for Statuspage, the seconds waited to keep to one request a second per key (on
a fake clock: nothing sleeps), and the wall time of the whole run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.integrations.statuspage.atlassian import Pacer, Statuspage
from bot.integrations.statuspage.config import StatusIoSettings, StatuspageSettings, parse_policy
from bot.integrations.statuspage.plan import Draft, Recorded, incident_key, plan_publish
from bot.integrations.statuspage.result import Result, Sent
from bot.integrations.statuspage.statusio import StatusIo
from bot.simstatus import SimulatedStatusIo, SimulatedStatuspage

KEY = incident_key("bench-secret", "https://gitlab.example.com", "sec/incidents", 1)
KEY2 = incident_key("bench-secret", "https://gitlab.example.com", "sec/incidents", 2)


class Clock:
    def __init__(self) -> None:
        self.now, self.waited = 1_800_000_000.0, 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.waited += seconds


def run(adapter: StatusIo | Statuspage, updates: int, lose: object) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    recorded = Recorded()

    def publish(step: str, digest: str, all_clear: bool = False, resumed: bool = False, key: str = KEY) -> Result:
        nonlocal recorded
        action = plan_publish(key=key, stem="Security incident update", draft=Draft(digest, f"Text {digest}."),
                              all_clear=all_clear, recorded=recorded)
        result = adapter.publish(action, resumed=resumed) if action.kind != "nothing" else Sent("-", calls=0)
        rows.append((f"{step} ({action.kind})", result.calls))
        if isinstance(result, Sent) and action.kind != "nothing":
            recorded = Recorded(result.remote_id, digest, resolved=all_clear)
        return result

    publish("create", "d0000000")
    for n in range(1, updates + 1):
        publish(f"update {n}", f"d{n:07d}")
    publish("duplicate delivery", f"d{updates:07d}")
    publish("resolve", "dffffff0", all_clear=True)
    recorded = Recorded()
    lose("create")  # type: ignore[operator]
    publish("2nd incident: create, answer lost", "e0000000", key=KEY2)
    publish("2nd incident: retry", "e0000000", resumed=True, key=KEY2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    components = {"c1": ["k1"]}
    with SimulatedStatusIo(components=components) as sim:
        policy = parse_policy({"provider": "statusio", "components": ["c1"], "containers": ["k1"]})
        assert policy is not None
        adapter = StatusIo(StatusIoSettings(sim.url, sim.api_id, sim.api_key, sim.statuspage_id), policy)
        rows = run(adapter, args.updates, sim.lose_answers)
        print(f"status.io: {len(sim.requests)} requests, {len(sim.incidents)} incidents, "
              f"{sum(len(i['messages']) for i in sim.incidents.values())} messages")
        for step, calls in rows:
            print(f"  {step:45s} {calls} requests")
    clock = Clock()
    with SimulatedStatuspage(components=["c1"], clock=clock) as sp:
        policy = parse_policy({"provider": "statuspage", "components": ["c1"]})
        assert policy is not None
        adapter2 = Statuspage(StatuspageSettings(sp.url, sp.api_key, sp.page_id), policy,
                              pacer=Pacer(sp.api_key, clock=clock, sleep=clock.sleep))
        rows = run(adapter2, args.updates, sp.lose_answers)
        limited = sum(1 for r in sp.requests if r.status in (420, 429))
        print(f"Statuspage: {len(sp.requests)} requests, {len(sp.incidents)} incidents, "
              f"{sum(len(i['incident_updates']) for i in sp.incidents.values())} updates, {limited} rate limited, "
              f"{clock.waited:.0f} s paced")
        for step, calls in rows:
            print(f"  {step:45s} {calls} requests")
    print(f"wall time {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
