"""Simulated status page providers over real HTTP on loopback, for tests and the demo.

* :class:`SimulatedStatusIo`: status.io API v2 (incident create/update/resolve/list, component list), its errors
  inside an HTTP 200 (``status.error: "yes"``);
* :class:`SimulatedStatuspage`: Atlassian Statuspage API v1 (incidents with metadata, components), one request
  a second per key (420 or 429 with ``Retry-After`` beyond).

Both record every request (:class:`Request`, body included, key left out) and can lose the answer to a request
whose effect was applied (:meth:`~bot.simstatus.server.Simulator.lose_answers`), to test finding an incident again.
"""

from bot.simstatus.atlassian import SimulatedStatuspage
from bot.simstatus.server import Request, Simulator
from bot.simstatus.statusio import SimulatedStatusIo

__all__ = ["Request", "SimulatedStatusIo", "SimulatedStatuspage", "Simulator"]
