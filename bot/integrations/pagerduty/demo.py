"""The demo's paging: the real PagerDuty client over HTTP to the simulated PagerDuty, the real ``pagerduty``
job handler and ``POST /pagerduty`` route, on the demo's clock. One page and one acknowledgement are shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.core.outbound import OutboundFacts
from bot.integrations.pagerduty.config import Target
from bot.integrations.pagerduty.facts import NAME, split
from bot.integrations.pagerduty.webhook import SIGNATURE_HEADER, WEBHOOK_ID_HEADER, sign

SECRET = "demo-webhook-secret-0123456789"
KEYS = {"support-manager": "d" * 28 + "0001", "marketing-ops": "d" * 28 + "0002"}


class DemoPaging:
    """What the worker and the receiver do with PagerDuty, one step at a time (a ``DemoSide``)."""

    intro = "PagerDuty: a simulated PagerDuty on 127.0.0.1, its routing keys set (lines 'PagerDuty ...')"

    def __init__(self, cfg: Config, gitlab_url: str, store: Any, clock: Callable[[], datetime], *,
                 build: Callable[..., tuple[Any, Any]], targets: Sequence[Target]) -> None:
        """``build``: the integration's own (what the worker calls); ``targets``: the policy's."""
        from flask import Flask

        from bot.integrations.pagerduty import receiver
        from bot.integrations.pagerduty.job import PagingPlanner, PagingSender
        from bot.settings import Settings
        from bot.simpagerduty import SimulatedPagerDuty

        self.store, self.clock, self.acknowledged = store, clock, False
        self.pd = SimulatedPagerDuty(clock=lambda: clock().timestamp()).start()
        env = {t.routing_key_env: KEYS.get(t.id, "d" * 32) for t in targets}
        settings = Settings(gitlab_url=gitlab_url, pagerduty_events_url=self.pd.url,
                            pagerduty_webhook_secret=SECRET, variables=env)
        planner, sender = build(settings, cfg, store, clock=clock, worker_id="demo:pagerduty")
        self.planner = planner if isinstance(planner, PagingPlanner) else None
        self.sender = sender if isinstance(sender, PagingSender) else None
        self.app = Flask("demo-receiver")  # the receiver's route, on the demo's clock
        self.app.add_url_rule("/pagerduty", view_func=receiver.view(settings, cfg, store, clock=clock),
                              methods=["POST"])

    def close(self) -> None:
        self.pd.stop()

    def facts(self, key: str) -> OutboundFacts:
        return self.planner.facts(self.store, key) if self.planner is not None else OutboundFacts()

    def step(self, key: str, desired: Any, observed: Any) -> list[str]:
        """Offer the reconciled incident's pages, run the ``pagerduty`` jobs; a line per event sent."""
        if self.planner is None or self.sender is None:
            return []
        before = {i.key for i in self.store.items(NAME, key) if i.state == "sent"}
        if not self.planner.offer(self.store, key, desired, observed, self.clock()):
            return []
        requests = len(self.pd.received)
        while self.sender.run_once() is not None:
            pass
        names = self.planner.names
        out = []
        for item in self.store.items(NAME, key):
            if item.state != "sent" or item.key in before:
                continue
            suffix = split(item.key)[1]
            what = "resolved the page of" if suffix else "paged"
            out.append(f"PagerDuty: {what} {names.get(item.target, item.target)}")
        n = len(self.pd.received) - requests
        return [f"PagerDuty: {n} Events API request{'s' if n != 1 else ''}", *out] if out else []

    def moment(self) -> tuple[str, str, str, Callable[[], Any]] | None:
        """Once a page is open: the Support Manager on call acknowledges it five minutes later."""
        if self.acknowledged or not self.pd.open_alerts():
            return None
        self.acknowledged = True
        at = (self.clock() + timedelta(minutes=5)).strftime("%H:%M")
        return (at, "the Support Manager on call", "acknowledges the page in PagerDuty (its webhook reaches "
                "POST /pagerduty)", lambda: self.acknowledge("Sam Support"))

    def acknowledge(self, by: str) -> int:
        """``by`` acknowledges the first open alert in PagerDuty; its V3 webhook goes to ``POST /pagerduty``."""
        alert = self.pd.open_alerts()[0]
        self.pd.state.act(alert.dedup_key, "acknowledged", by)
        body = self.pd.webhook_body("incident.acknowledged", alert, by)
        headers = {SIGNATURE_HEADER: sign(body, SECRET), WEBHOOK_ID_HEADER: "demo-1",
                   "Content-Type": "application/json"}
        return int(self.app.test_client().post("/pagerduty", data=body, headers=headers).status_code)


@contextmanager
def demo_paging(cfg: Config, gitlab_url: str, store: Any, clock: Callable[[], datetime], *,
                build: Callable[..., tuple[Any, Any]], targets: Sequence[Target]) -> Iterator[DemoPaging | None]:
    """The demo's paging side, or None when the demo's policy has no paging target."""
    if not targets:
        yield None
        return
    paging = DemoPaging(cfg, gitlab_url, store, clock, build=build, targets=targets)
    try:
        yield paging
    finally:
        paging.close()
