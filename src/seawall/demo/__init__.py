"""``seawall demo``: the main job on embedded defaults (``make demo``).

live.py     the default: ``seawall serve`` learning the shared corpus, a seeded botnet wave
            replayed through it (SMTP into a private Postfix, or HTTP), the dashboard's
            address and a generated login, until Ctrl-C or ``--seconds``
postfix.py  the private Postfix of the live demo
offline.py  ``--offline``: learn half of a public corpus, scan the other half, explain a
            few verdicts
"""

from __future__ import annotations

from seawall.demo.live import DemoOptions, run_live_demo
from seawall.demo.offline import at_the_actions, run_offline_demo

__all__ = ["DemoOptions", "at_the_actions", "run_live_demo", "run_offline_demo"]
