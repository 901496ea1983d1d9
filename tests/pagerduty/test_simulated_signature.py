"""The simulated PagerDuty signs its V3 webhooks by PagerDuty's rule, not by the bot's code.

PagerDuty developer docs, Webhooks, "Verifying Signatures" (PagerDuty/developer-docs
docs/webhooks/04-Signatures.md): ``X-PagerDuty-Signature`` holds ``v1=`` and the hex HMAC-SHA256 of the raw
body keyed with the subscription's secret, one entry per secret, comma separated, while a secret is rotated.
"""

from __future__ import annotations

import json
from typing import Any

from bot.simhttp import Loopback, LoopbackHandler, LoopbackServer
from bot.simpagerduty.server import SimulatedPagerDuty, signature

# RFC 4231, test case 2: HMAC-SHA256 with key "Jefe" over "what do ya want for nothing?".
RFC4231_CASE_2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_the_signature_is_v1_and_the_hex_hmac_sha256_of_the_raw_body() -> None:
    assert signature(b"what do ya want for nothing?", "Jefe") == "v1=" + RFC4231_CASE_2


class _Receiver(Loopback):
    """A webhook endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[dict[str, str], bytes]] = []


class _Keep(LoopbackHandler):
    server: LoopbackServer[_Receiver]

    def do_POST(self) -> None:
        self.server.sim.got.append(({k.lower(): v for k, v in self.headers.items()}, self.read_body()))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


_Receiver.handler = _Keep


def test_an_acknowledgement_is_signed_once_per_secret_over_the_body_as_sent() -> None:
    receiver = _Receiver()
    with receiver, SimulatedPagerDuty(webhook_url=receiver.url, webhook_secrets=["current", "previous"]) as pd:
        event: dict[str, Any] = {"routing_key": "R" * 32, "event_action": "trigger", "dedup_key": "k1",
                                 "payload": {"summary": "s", "source": "bot", "severity": "critical"}}
        assert pd.handle("/v2/enqueue", json.dumps(event).encode())[0] == 202
        assert pd.acknowledge("k1", "Ada") == 204
    [(headers, body)] = receiver.got
    assert json.loads(body)["event"]["event_type"] == "incident.acknowledged"
    assert headers["x-pagerduty-signature"] == f"{signature(body, 'current')},{signature(body, 'previous')}"
    assert signature(body, "current") != signature(body, "previous")
