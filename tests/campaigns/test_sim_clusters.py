"""The simulator's wave against the tracker: every campaign and worm family one campaign."""

from __future__ import annotations

from collections import Counter, defaultdict

from seawall.campaigns import Fingerprint, clustering_scores
from seawall.campaigns.client import LocalTracker
from seawall.campaigns.tracker import Tracker
from seawall.config import load_config
from seawall.detectors.base import Context
from seawall.detectors.campaign import CampaignDetector
from seawall.message import parse_message
from seawall.sim import SimSettings, simulate


def test_campaigns_and_worm_families_each_become_one_campaign() -> None:
    config = load_config()
    settings = config.detectors.campaigns
    tracker = Tracker(settings)
    # The detector says what the tracker learns of each message (its source, dynamic or not).
    detector = CampaignDetector(settings, config.isp, LocalTracker(tracker), spam_threshold=15.0)
    sim = SimSettings(
        seed=11,
        hours=0.25,
        campaigns=2,
        zombies=80,
        peak_per_hour=3000,
        ham_per_hour=600,
        newsletters=1,
        worm_share=0.3,  # worms are a few percent of the wave: more of them to count
    )
    rows = []
    for item in simulate(sim):
        msg = parse_message(item.raw, item.envelope)
        reply = tracker.observe(
            Fingerprint.of(msg), detector.observation(msg, Context(item.at)), item.at
        )
        rows.append((item.truth.kind, item.truth.campaign, reply.view.id))
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for _, truth, cid in rows:
        if truth:
            found[truth][cid] += 1
    assert {"worm-netsky", "worm-sober", "worm-mydoom"} <= found.keys()
    for truth, clusters in found.items():
        (cid, n), *_ = clusters.most_common(1)
        # A worm's copies are a line of text and its program under one of a few names.
        assert n >= sum(clusters.values()) - 2, (truth, clusters.most_common(3))
    # No campaign holds two kinds of mail, or two campaigns.
    owners: dict[str, set[str]] = defaultdict(set)
    for kind, truth, cid in rows:
        if cid:
            owners[cid].add(truth or kind)
    mixed = {cid: names for cid, names in owners.items() if len(names) > 1 and "ham" not in names}
    assert not mixed
    assert not any("ham" in names and len(names) > 1 for names in owners.values())
    truth_ids = [t or f"one-{n}" for n, (_, t, _) in enumerate(rows)]
    found_ids = [c or f"one-{n}" for n, (_, _, c) in enumerate(rows)]
    assert clustering_scores(truth_ids, found_ids).completeness > 0.98
