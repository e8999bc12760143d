"""``seawall simulate``: a seeded, reproducible botnet spam run against our own ISP.

>>> from seawall.sim import SimSettings, simulate
>>> kinds = {m.truth.kind for m in simulate(SimSettings(hours=0.1, peak_per_hour=2000))}
>>> sorted(kinds)
['ham', 'newsletter', 'spam', 'worm']
"""

from __future__ import annotations

from seawall.sim.campaign import Campaign
from seawall.sim.model import SimMessage, SimSettings, Truth
from seawall.sim.radius import write_radius_detail
from seawall.sim.traffic import Plan, plan_traffic, simulate
from seawall.sim.world import Account, Bot, Host, Session, World, build_world

__all__ = [
    "Account",
    "Bot",
    "Campaign",
    "Host",
    "Plan",
    "Session",
    "SimMessage",
    "SimSettings",
    "Truth",
    "World",
    "build_world",
    "plan_traffic",
    "simulate",
    "write_radius_detail",
]
