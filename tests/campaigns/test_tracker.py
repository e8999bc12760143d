"""The tracker: clusters of one, merging clusters of one campaign, and what must never merge."""

from __future__ import annotations

import numpy as np
import pytest

from seawall.campaigns import Fingerprint
from seawall.campaigns.fingerprint import PERMUTATIONS
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings

NOW = 1_795_000_000.0


def signature(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**16, PERMUTATIONS).astype(np.uint16)


def copy_of(sig: np.ndarray, rng: np.random.Generator, changed: float = 0.2) -> Fingerprint:
    out = sig.copy()
    slots = rng.choice(PERMUTATIONS, round(changed * PERMUTATIONS), replace=False)
    out[slots] = rng.integers(0, 2**16, slots.size)
    return Fingerprint.from_minhash(out, tokens=100)


def between(a: np.ndarray, b: np.ndarray) -> Fingerprint:
    """A message half like ``a`` and half like ``b`` (about 0.5 alike to each)."""
    mixed = np.where(np.arange(PERMUTATIONS) < PERMUTATIONS // 2, a, b).astype(np.uint16)
    return Fingerprint.from_minhash(mixed, tokens=100)


def bot(i: int) -> Observation:
    return Observation(ip=f"{20 + i}.{i}.{i % 7}.{9 + i}", dynamic=True, subject="Save 80%")


def esp(i: int) -> Observation:
    return Observation(ip=f"198.51.100.{10 + i % 3}", hostname="mta1.esp.example", subject="News")


@pytest.fixture
def tracker() -> Tracker:
    return Tracker(CampaignSettings())


def wave(
    tracker: Tracker, sig: np.ndarray, rng: np.random.Generator, source: type, start: float
) -> str:
    ids = {
        tracker.observe(copy_of(sig, rng), source(i), start + i).view.id  # type: ignore[operator]
        for i in range(3)
    }
    (cid,) = ids
    return cid


def test_a_cluster_of_one_is_a_small_record_until_its_second_message(tracker: Tracker) -> None:
    rng = np.random.default_rng(1)
    sig = signature(rng)
    first = tracker.observe(copy_of(sig, rng), bot(0), NOW)
    assert first.new
    assert (first.view.count, first.view.ips, first.view.dynamic_share) == (1, 1, 1.0)
    assert not first.wants_sample
    assert first.view.id in tracker.founders
    assert first.view.id not in tracker.campaigns
    tracker.judge(Judge(first.view.id, True, (), NOW))
    second = tracker.observe(copy_of(sig, rng), bot(1), NOW + 1)
    assert second.view.id == first.view.id
    assert (second.view.count, second.view.ips, second.view.spam) == (2, 2, 1)
    assert not second.wants_sample
    assert first.view.id not in tracker.founders
    # The copy that makes it a campaign (min_copies) is asked for the sample, once.
    third = tracker.observe(copy_of(sig, rng), bot(2), NOW + 2)
    assert third.wants_sample
    tracker.judge(Judge(third.view.id, True, (), NOW + 2, b"the third copy"))
    assert not tracker.observe(copy_of(sig, rng), bot(3), NOW + 3).wants_sample
    assert tracker.campaigns[first.view.id].sample == b"the third copy"


def test_a_message_near_two_clusters_makes_them_one_campaign(tracker: Tracker) -> None:
    rng = np.random.default_rng(2)
    a, b = signature(rng), signature(rng)
    first = wave(tracker, a, rng, bot, NOW)
    second = wave(tracker, b, rng, bot, NOW + 10)
    assert first != second
    bridge = tracker.observe(between(a, b), bot(9), NOW + 20)
    # The bigger campaign keeps its id (on a tie, the older one).
    assert bridge.view.id == first
    assert bridge.view.count == 7
    assert tracker.root(second) == first
    assert second not in tracker.campaigns
    assert tracker.campaigns[first].clusters == 2
    later = tracker.observe(copy_of(b, rng), bot(10), NOW + 30)
    assert (later.view.id, later.view.count) == (first, 8)
    # A judgement for a copy of the cluster merged away goes to the campaign.
    tracker.judge(Judge(second, True, (), NOW + 31))
    assert tracker.campaigns[first].spam == 1


def test_a_newsletter_never_merges_into_a_botnet_campaign(tracker: Tracker) -> None:
    rng = np.random.default_rng(3)
    spam, letter = signature(rng), signature(rng)
    spam_id = wave(tracker, spam, rng, bot, NOW)
    letter_id = wave(tracker, letter, rng, esp, NOW + 10)
    # A bot's message near both, and an ESP's message near both: neither glues them.
    tracker.observe(between(spam, letter), bot(9), NOW + 20)
    tracker.observe(between(spam, letter), esp(9), NOW + 21)
    assert tracker.root(letter_id) == letter_id
    assert tracker.root(spam_id) == spam_id
    assert tracker.campaigns[letter_id].count == 3
    assert tracker.campaigns[letter_id].dynamic == 0
    assert tracker.observe(copy_of(letter, rng), esp(4), NOW + 30).view.id == letter_id


def test_campaigns_judged_spam_and_ham_do_not_merge(tracker: Tracker) -> None:
    rng = np.random.default_rng(4)
    a, b = signature(rng), signature(rng)
    spam_id = wave(tracker, a, rng, bot, NOW)
    ham_id = wave(tracker, b, rng, bot, NOW + 10)
    for i in range(3):
        tracker.judge(Judge(spam_id, True, (), NOW + 11 + i))
        tracker.judge(Judge(ham_id, False, (), NOW + 11 + i))
    tracker.observe(between(a, b), bot(9), NOW + 20)
    assert tracker.root(ham_id) == ham_id
    assert {spam_id, ham_id} <= tracker.campaigns.keys()


def test_hash_busted_copies_each_in_a_cluster_of_their_own_are_one_campaign(
    tracker: Tracker,
) -> None:
    # Two short sentences under many random words: copies share about 0.15 of their
    # features, too little to join one cluster; their recurring features find each other.
    rng = np.random.default_rng(5)
    template = (
        "The best site to meet new friends near you. To unsubscribe, please click here to "
        "remove yourself from our list of members."
    )
    vocabulary = [rng.bytes(4).hex() for _ in range(5000)]
    ids = []
    opened = 0
    for i in range(60):
        noise = " ".join(rng.choice(vocabulary, 60))
        fp = Fingerprint.from_text(f"{noise}\n{template}\n{noise[::-1]}", "Meet friends")
        reply = tracker.observe(fp, bot(i), NOW + 10 * i)
        opened += reply.new
        ids.append(reply.view.id)
    assert opened > 30  # most copies opened a cluster of their own
    assert len(set(ids[10:])) == 1
    assert tracker.campaigns[ids[-1]].count >= 50


def test_clusters_that_expire_take_their_records_with_them() -> None:
    tracker = Tracker(CampaignSettings(ttl_s=600.0))
    rng = np.random.default_rng(6)
    a, b = signature(rng), signature(rng)
    wave(tracker, a, rng, bot, NOW)
    wave(tracker, b, rng, bot, NOW + 10)
    tracker.observe(between(a, b), bot(9), NOW + 20)  # merged: one campaign, two clusters
    for i in range(20):
        tracker.observe(copy_of(signature(rng), rng), bot(i), NOW + 30 + i)  # founders
    assert len(tracker.founders) == 20
    assert len(tracker.campaigns) == 1
    assert tracker.alias
    # Hours later: one new message sweeps what the index let go, and only that is left.
    later = tracker.observe(copy_of(signature(rng), rng), bot(0), NOW + 7200)
    assert list(tracker.founders) == [later.view.id]
    assert not tracker.campaigns
    assert not tracker.alias


def test_a_restart_keeps_merges_and_clusters_of_one(tracker: Tracker) -> None:
    rng = np.random.default_rng(7)
    a, b = signature(rng), signature(rng)
    first = wave(tracker, a, rng, bot, NOW)
    second = wave(tracker, b, rng, bot, NOW + 10)
    tracker.observe(between(a, b), bot(9), NOW + 20)
    lone = signature(rng)
    lone_id = tracker.observe(copy_of(lone, rng), bot(1), NOW + 21).view.id
    restored = Tracker.restore(tracker.snapshot(), CampaignSettings())
    assert restored.root(second) == first
    assert lone_id in restored.founders
    assert restored.observe(copy_of(b, rng), bot(5), NOW + 30).view == (
        tracker.observe(copy_of(b, rng), bot(5), NOW + 30).view
    )
    assert restored.observe(copy_of(lone, rng), bot(2), NOW + 31).view.count == 2
