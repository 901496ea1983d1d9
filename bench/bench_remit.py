"""The remit check's cost: API calls of one no-op reconcile in a warm process (membership answered from the
cache) and in a fresh one, with the incident scope naming the project or its group.

    .venv/bin/python bench/bench_remit.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from collections import Counter

from bot.commands.world import world
from bot.config import load_config
from bot.core.model import IncidentRef
from bot.gitlab.remit import Remit
from bot.simgitlab import SimulatedGitLab

S1 = ("severity::1", "data-breach", "comms-email")
for scope in (["acme/security-incidents"], ["acme"]):
    cfg = load_config().model_copy(update={"scope": scope})
    with SimulatedGitLab() as sim:
        w = world(sim, cfg)
        w.remit = Remit.for_config(cfg)
        iid = w.incident(*S1)
        r = w.reconciler()
        r.reconcile(IncidentRef(str(w.project_id), iid))
        r.close()
        for label, remit in (("warm process", w.remit), ("fresh process", Remit.for_config(cfg))):
            sim.reset_log()
            r = w.reconciler(remit=remit)
            r.reconcile(IncidentRef(str(w.project_id), iid))
            r.close()
            routes = Counter(f"{q.method} {q.route}" for q in sim.requests)
            print(f"scope={scope} {label}: no-op reconcile = {len(sim.requests)} calls: {dict(routes)}")
