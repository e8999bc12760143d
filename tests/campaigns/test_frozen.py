"""The frozen tracker: the saved campaigns looked up, nothing filed, judged or merged."""

from __future__ import annotations

import numpy as np
from tests.campaigns.minhashes import copy_of, signature

from seawall.campaigns.frozen import FrozenTracker, find_cluster
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings

NOW = 1_795_000_000.0


def bot(i: int) -> Observation:
    return Observation(ip=f"{20 + i}.{i}.{i % 7}.{9 + i}", dynamic=True, domains=("pills.example",))


def saved() -> tuple[Tracker, np.ndarray, str]:
    """A tracker that saw a confirmed spam run of 10 copies, through its snapshot."""
    rng = np.random.default_rng(3)
    sig = signature(rng)
    live = Tracker(CampaignSettings())
    ids = set()
    for i in range(10):
        reply = live.observe(copy_of(sig, rng), bot(i), NOW + i)
        ids.add(reply.view.id)
        live.judge(Judge(reply.view.id, True, ("pills.example",), NOW + i))
    (cid,) = ids
    assert "pills.example" in live.blocklist
    return Tracker.restore(live.snapshot(), CampaignSettings()), sig, cid


async def test_a_copy_gets_the_saved_campaign_and_changes_nothing() -> None:
    tracker, sig, cid = saved()
    before = tracker.snapshot()
    frozen = FrozenTracker(tracker)
    rng = np.random.default_rng(9)
    for i in range(20):
        reply = await frozen.observe(copy_of(sig, rng), bot(100 + i), NOW + 60 + i)
        assert reply.view.id == cid
        assert reply.view.count == 10  # as saved: the looked-up copies are not counted
        assert (reply.view.spam, reply.view.ham) == (10, 0)
        assert reply.blocked == ("pills.example",)
        assert not reply.new
        await frozen.judge(Judge(cid, False, ("pills.example",), NOW + 60 + i))
    assert tracker.snapshot() == before


async def test_a_message_near_no_cluster_stands_alone_and_opens_none() -> None:
    tracker, _, _ = saved()
    before = tracker.snapshot()
    frozen = FrozenTracker(tracker)
    rng = np.random.default_rng(11)
    other = signature(rng)
    for i in range(5):
        reply = await frozen.observe(copy_of(other, rng), bot(200 + i), NOW + 60 + i)
        assert reply.view.id == ""
        assert reply.new
    assert find_cluster(tracker.index, copy_of(other, rng), NOW + 70) == ""
    assert tracker.snapshot() == before
    assert await frozen.mark("c-0000000000000000", "spam") is None


async def test_an_expired_campaign_is_not_found() -> None:
    tracker, sig, _ = saved()
    frozen = FrozenTracker(tracker)
    later = NOW + CampaignSettings().ttl_s + 3600
    reply = await frozen.observe(copy_of(sig, np.random.default_rng(4)), bot(1), later)
    assert reply.view.id == ""
    assert reply.blocked == ()  # the blocklist entry expired too
