"""The tracker's state stays within its settings under a long wave (bench.tracker_state
measures it; these pin the bounds)."""

from __future__ import annotations

import zlib

import msgspec
import numpy as np
from tests.campaigns.minhashes import copy_of, signature

from seawall.campaigns import Fingerprint
from seawall.campaigns.fingerprint import PERMUTATIONS
from seawall.campaigns.registry import FLOOR_IPS, Judge, Observation
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings

NOW = 1_795_000_000.0
MAIL = b"Subject: Your parcel\r\n\r\n" + b"Pay the customs fee to release your parcel.\r\n" * 800


def source(run: int, i: int, *, own: bool = False) -> Observation:
    return Observation(ip=f"{10 + run}.{i // 250}.{i % 250}.9", dynamic=True, own=own)


def waves(tracker: Tracker, runs: list[np.ndarray], copies: int, start: float) -> list[str]:
    rng = np.random.default_rng(len(runs))
    ids = []
    for i in range(copies):
        ids = [
            tracker.observe(copy_of(sig, rng), source(k, i), start + i).view.id
            for k, sig in enumerate(runs)
        ]
    return ids


def test_the_campaigns_remember_at_most_max_addresses_sources_but_each_its_first() -> None:
    tracker = Tracker(CampaignSettings(max_addresses=150))
    rng = np.random.default_rng(1)
    ids = waves(tracker, [signature(rng) for _ in range(3)], 200, NOW)
    held = [len(tracker.campaigns[cid].ips) for cid in ids]
    assert [tracker.campaigns[cid].count for cid in ids] == [200, 200, 200]
    # Without the budget each would hold its 200 sources.
    assert sum(held) <= 150 + 3 * FLOOR_IPS
    assert min(held) >= FLOOR_IPS
    assert tracker.addresses == sum(held)
    detail = tracker.show(ids[0], NOW + 200)
    assert detail is not None
    assert detail["ips_complete"] is False
    assert detail["ips"] == held[0]
    # The ISP's own sources are always remembered: they are the customers it acts on.
    own = signature(rng)
    for i in range(100):
        reply = tracker.observe(copy_of(own, rng), source(9, i, own=True), NOW + 300 + i)
    campaign = tracker.campaigns[reply.view.id]
    assert len(campaign.own_ips) == len(campaign.ips) == 100


def test_forgotten_campaigns_give_their_addresses_back() -> None:
    tracker = Tracker(CampaignSettings(max_addresses=150, ttl_s=600.0))
    rng = np.random.default_rng(2)
    waves(tracker, [signature(rng) for _ in range(3)], 100, NOW)
    assert tracker.addresses > 150
    # Hours later the first campaigns are gone: a new one has the whole budget.
    (later,) = waves(tracker, [signature(rng)], 140, NOW + 7200)
    assert list(tracker.campaigns) == [later]
    assert len(tracker.campaigns[later].ips) == 140
    assert tracker.addresses == 140


def test_a_snapshot_of_the_previous_version_restores_with_its_address_count() -> None:
    tracker = Tracker(CampaignSettings(max_addresses=150))
    rng = np.random.default_rng(3)
    ids = waves(tracker, [signature(rng) for _ in range(2)], 90, NOW)
    tracker.judge(Judge(ids[0], True, (), NOW + 90, MAIL))
    state = msgspec.msgpack.decode(tracker.snapshot())
    for campaign in state["campaigns"]:
        # The previous version's snapshots: no ips_capped, the sample as it came.
        del campaign["ips_capped"]
        packed = campaign.pop("packed_sample")
        campaign["sample"] = zlib.decompress(packed) if packed else b""
        campaign["minutes"] = [[k, v] for k, v in campaign["minutes"].items()]
        # ... and the networks of its addresses, which it saved.
        for name in ("nets24", "nets16"):
            campaign[name] = sorted(getattr(tracker.campaigns[campaign["id"]], name))
    restored = Tracker.restore(msgspec.msgpack.encode(state), CampaignSettings(max_addresses=150))
    assert restored.addresses == tracker.addresses
    assert [restored.campaigns[c].ips for c in ids] == [tracker.campaigns[c].ips for c in ids]
    assert restored.campaigns[ids[0]].sample == MAIL
    assert restored.campaigns[ids[1]].sample == b""
    assert [restored.campaigns[c].minutes for c in ids] == [
        tracker.campaigns[c].minutes for c in ids
    ]


def test_a_campaign_keeps_its_sample_packed() -> None:
    tracker = Tracker(CampaignSettings())
    rng = np.random.default_rng(4)
    (cid,) = waves(tracker, [signature(rng)], 3, NOW)
    empty = len(tracker.snapshot())
    tracker.judge(Judge(cid, True, (), NOW + 3, MAIL))
    assert tracker.show(cid, NOW + 4, sample=True)["sample"] == MAIL  # type: ignore[index]
    assert len(tracker.snapshot()) - empty < len(MAIL) // 4
    restored = Tracker.restore(tracker.snapshot(), CampaignSettings())
    assert restored.campaigns[cid].sample == MAIL
    # A damaged one reads as none, not as an error.
    restored.campaigns[cid].packed_sample = b"not zlib"
    assert restored.campaigns[cid].sample == b""


def test_the_networks_of_the_addresses_are_not_saved_but_restored() -> None:
    tracker = Tracker(CampaignSettings())
    rng = np.random.default_rng(5)
    a, b = signature(rng), signature(rng)
    ids = waves(tracker, [a, b], 40, NOW)
    # One more copy near both: the two campaigns merge.
    half = np.where(np.arange(PERMUTATIONS) < PERMUTATIONS // 2, a, b).astype(np.uint16)
    tracker.observe(Fingerprint.from_minhash(half, tokens=100), source(7, 1), NOW + 50)
    (merged,) = tracker.campaigns.values()
    assert merged.id in ids
    assert len(merged.nets24) == len(merged.ips) == 81
    state = msgspec.msgpack.decode(tracker.snapshot())
    assert "nets24" not in state["campaigns"][0]
    assert "nets16" not in state["campaigns"][0]
    restored = Tracker.restore(tracker.snapshot(), CampaignSettings()).campaigns[merged.id]
    assert (restored.ips, restored.nets24, restored.nets16) == (
        merged.ips,
        merged.nets24,
        merged.nets16,
    )


def test_samples_past_their_budget_go_from_the_campaigns_seen_longest_ago() -> None:
    tracker = Tracker(CampaignSettings(max_samples_mib=1))
    rng = np.random.default_rng(6)
    runs = [signature(rng) for _ in range(30)]
    noise = np.random.default_rng(7)
    ids = []
    for k, sig in enumerate(runs):  # one after the other: the first are seen longest ago
        for i in range(3):
            reply = tracker.observe(copy_of(sig, rng), source(k, i), NOW + 10 * k + i)
        assert reply.wants_sample
        sample = noise.bytes(60_000)  # does not compress: 17 of them pass 1 MiB
        tracker.judge(Judge(reply.view.id, True, (), NOW + 10 * k + 2, sample))
        ids.append(reply.view.id)
    held = [bool(tracker.campaigns[c].packed_sample) for c in ids]
    assert tracker.sample_bytes == sum(len(c.packed_sample) for c in tracker.campaigns.values())
    assert tracker.sample_bytes <= 1 << 20
    assert held[-1]
    assert not held[0]
    assert held == sorted(held)  # the ones dropped are the oldest
    # A campaign whose sample went asks for a new one with its next copy.
    again = tracker.observe(copy_of(runs[0], rng), source(0, 9), NOW + 400)
    assert again.view.id == ids[0]
    assert again.wants_sample
