"""The registry's arithmetic: rates over the last hour, merges, founders packed small."""

from __future__ import annotations

import random

import pytest

from seawall.campaigns.registry import Campaign, Founder, Observation


@pytest.mark.parametrize("start", [-5000.0, 0.0, 1.7e9])
def test_the_hourly_rate_is_the_last_60_minutes_out_of_order_and_merged(start: float) -> None:
    rng = random.Random(start)
    campaign = Campaign(id="c-1", first_seen=start, last_seen=start)
    at = start
    for _ in range(400):
        at += rng.expovariate(1 / 20)
        late = rng.random() * 120 if rng.random() < 0.1 else 0.0  # a copy that was queued
        campaign.add(Observation(ip="192.0.2.1"), at - late)
        if rng.random() < 0.05:
            other = Campaign(id="c-2", first_seen=at, last_seen=at)
            other.add(Observation(ip="192.0.2.2"), at - 30)
            campaign.merge(other)
        asked = at + rng.random() * 30
        minute = int(asked // 60)
        assert campaign.per_hour(asked) == sum(
            n for m, n in campaign.minutes.items() if m > minute - 60
        )


def test_a_merge_adds_up_both_records() -> None:
    a = Campaign(id="c-a", first_seen=100.0, last_seen=100.0)
    b = Campaign(id="c-b", first_seen=50.0, last_seen=50.0)
    for i in range(3):
        a.add(
            Observation(ip=f"192.0.2.{i}", dynamic=True, subject="A", domains=("x.example",)),
            100.0 + i,
        )
    for i in range(2):
        b.add(
            Observation(ip=f"198.51.100.{i}", dynamic=True, subject="B", domains=("x.example",)),
            50.0 + i,
        )
    b.spam, b.sample = 2, b"sample"
    a.merge(b)
    assert (a.count, a.dynamic, a.spam, len(a.ips), len(a.nets16)) == (5, 5, 2, 5, 2)
    assert (a.first_seen, a.last_seen, a.sample) == (50.0, 102.0, b"sample")
    assert a.domains["x.example"] == 5
    assert a.subjects == {"A": 3, "B": 2}
    assert a.per_hour(102.0) == 5


def test_a_founder_packs_into_a_few_dozen_bytes_and_becomes_a_campaign() -> None:
    founder = Founder.of(Observation(ip="2001:db8::7", dynamic=True, own=True), 1_795_000_000.5)
    judged = founder.judged(True).judged(False).judged(True)
    packed = judged.pack()
    assert len(packed) < 40
    again = Founder.unpack(packed)
    assert again == judged
    assert Founder.unpack(Founder(1.0, None, dynamic=False, own=False).pack()).ip is None
    assert Founder.packed(packed)
    assert not Founder.packed(packed[:5])  # a damaged snapshot's record is dropped on restore
    campaign = again.campaign("c-1")
    assert (campaign.count, campaign.spam, campaign.ham, campaign.dynamic, campaign.own) == (
        1,
        2,
        1,
        1,
        1,
    )
    assert campaign.view(1_795_000_000.5) == again.view("c-1")
