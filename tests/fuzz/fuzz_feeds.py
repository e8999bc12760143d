"""Fuzz target: Shadowserver-layout CSV feeds are read into rows, never an exception.

``read_feed`` turns a bad row into a problem with its line number and goes on; the first
byte picks the feed kind, the rest is the file (decoded as ``seawall feeds import`` does).
"""

from __future__ import annotations

import ipaddress
import math

from tests.fuzz.fuzz_arf import SCOPE, WEIGHTS

from seawall.zombies.feeds import read_feed
from seawall.zombies.model import Kind

KINDS: tuple[Kind, ...] = ("drone", "sinkhole", "spam_source")


def check(data: bytes) -> None:
    if not data:
        return
    kind = KINDS[data[0] % len(KINDS)]
    text = data[1:].decode("utf-8", "replace").lstrip("\ufeff")  # as the importer reads it
    for row in read_feed(text, kind, SCOPE, WEIGHTS, where="feed.csv"):
        assert row.line >= 1
        if row.evidence is not None:
            ipaddress.ip_address(row.evidence.ip)
            assert math.isfinite(row.evidence.at)
        else:
            assert row.problem
