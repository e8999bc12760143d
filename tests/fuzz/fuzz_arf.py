"""Fuzz target: abuse reports (ARF, X-ARF) are read into evidence or a stated problem.

``parse_report`` never raises: whatever the email package cannot read becomes an
"unreadable" problem.  That catch-all must not hide Seawall's own bugs, so an "unreadable"
whose exception was raised in Seawall's code (rather than inside the email package) is
re-raised here as a crash.  Evidence, when there is some, names a parseable address.
"""

from __future__ import annotations

import ipaddress
import math
import traceback

from seawall.config import Config, IspSettings, ZombiesSettings
from seawall.zombies.evidence import Scope
from seawall.zombies.model import KINDS
from seawall.zombies.reports_in import _parse, parse_report

CONFIG = Config(
    isp=IspSettings(networks=("10.0.0.0/8",), dynamic=("10.1.0.0/16",), relays=("10.0.0.25",)),
    zombies=ZombiesSettings(exempt=("10.200.0.0/24",)),
)
SCOPE = Scope(CONFIG)
WEIGHTS = {kind: CONFIG.zombies.weight(kind) for kind in KINDS}
NOW = 1_800_000_000.0


def check(data: bytes) -> None:
    parsed = parse_report(data, SCOPE, WEIGHTS, now=NOW)
    if parsed.problem.startswith("unreadable"):
        try:
            _parse(data, SCOPE, WEIGHTS, NOW)
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            if frames and "/seawall/" in frames[-1].filename:
                raise
    evidence = parsed.evidence
    if evidence is not None:
        ipaddress.ip_address(evidence.ip)
        assert math.isfinite(evidence.at)
        assert evidence.source in ("arf", "xarf")
