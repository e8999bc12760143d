"""The tracker's snapshot on disk: its parts, and a campaign record as msgpack and back.

A snapshot written by an older version restores: its campaigns' samples unpacked, their
minutes as pairs, their /24s and /16s saved (now restored from the addresses), and no
``ips_capped`` or ``own_ips``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from seawall.addresses import network_of
from seawall.campaigns.registry import Campaign


class Snapshot(msgspec.Struct):
    index: bytes
    campaigns: list[dict[str, Any]]
    blocklist: dict[str, float]
    ham_domains: dict[str, list[str]]
    alias: dict[str, str] = {}
    founders: dict[str, bytes] = {}  # Founder.pack()


_COUNTERS = ("languages", "domains", "urls", "subjects")
_SETS = ("ips", "own_ips", "nets24", "nets16", "forged_nets24")
_DERIVED = {"nets24": (24, 64), "nets16": (16, 48)}  # the networks of ``ips``: not saved


def campaign_state(campaign: Campaign) -> dict[str, Any]:
    state = dict(vars(campaign))  # the sets go as they are: msgpack arrays, in no order
    for name in _DERIVED:
        del state[name]
    for name in _COUNTERS:
        state[name] = dict(state[name])
    # minute -> messages as a msgpack map (building a pair list per minute was two thirds
    # of a save's CPU under a wave)
    state["minutes"] = campaign.minutes
    del state["hour"]  # a cache
    return state


def campaign_of(state: dict[str, Any]) -> Campaign:
    values = dict(state)
    for name in _SETS:
        # own_ips, forged_nets24: not in older snapshots; nets24, nets16: only in them
        values[name] = set(values.get(name, ()))
    for name, (v4, v6) in _DERIVED.items():
        if name not in state:
            values[name] = {network_of(ip, v4, v6) for ip in values["ips"]}
    for name in _COUNTERS:
        values[name] = Counter(values[name])
    minutes = values["minutes"]  # a map; older snapshots: a list of [minute, messages]
    pairs = minutes.items() if isinstance(minutes, dict) else minutes
    values["minutes"] = {int(k): int(v) for k, v in pairs}
    sample = values.pop("sample", b"")  # older snapshots: the message as it came
    campaign = Campaign(**values)
    if sample and not campaign.packed_sample:
        campaign.sample = sample
    return campaign
