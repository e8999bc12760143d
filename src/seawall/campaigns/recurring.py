"""The second look: cluster a message by the features it shares with earlier mail.

A run whose template is two sentences under a heap of random hash-buster words
gives copies that share too little to match on all their features (Jaccard 0.1
to 0.2).  But the template's shingles recur in every copy, while hash-buster
shingles are new each time.  A count-min sketch remembers which features were
seen recently; a message from a dynamic source that opened a new cluster is
fingerprinted again on its recurring features alone and matched in a second
index, whose clusters point at the campaign their first copy belonged to: a
copy whose cluster is another campaign is evidence that the two are one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.index import Clusterer

ROWS = 2
WIDTH_BITS = 23  # 2 x 8 Mi one-byte counters: 16 MiB
MIN_RECURRING = 8  # as many as a fingerprint needs to be clusterable
HALF_LIFE_S = 3600.0  # counts halve every hour: "recently" means the last hour or two
# ... or sooner, once this many features were counted since the last halving (one for
# every eight counters of a row: about 13,000 messages), so that at any mail volume a
# feature never seen looks seen (both of its counters taken) with probability 0.006 on
# average and 0.015 at most (measured with 80 fresh features a message): a message that
# is no campaign then seldom has the 8 "recurring" features a second look needs.  Without
# it, a million messages a day would take 85% of the counters within the hour.
MAX_ADDED = (1 << WIDTH_BITS) // 8
_SALTS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F], dtype=np.uint64)
_ROW_STARTS = (np.arange(ROWS, dtype=np.intp) << WIDTH_BITS)[:, None]


class Recurring:
    """Recently seen features, and the index of messages by their recurring features."""

    def __init__(self, *, ttl_s: float, max_clusters: int) -> None:
        self.counts = np.zeros((ROWS, 1 << WIDTH_BITS), dtype=np.uint8)
        self.index = Clusterer(ttl_s=ttl_s, max_clusters=max_clusters)
        self.index.report_evictions = True
        self.campaign_of: dict[str, str] = {}  # recurring cluster -> campaign id
        self._halved_at = 0.0
        self._added = 0  # features counted since the last halving

    def _slots(self, features: NDArray[np.uint64]) -> NDArray[np.intp]:
        """Each feature's counter in each row, as positions in the flattened counts."""
        mixed = features[None, :] * _SALTS[:, None]
        return (mixed >> np.uint64(64 - WIDTH_BITS)).astype(np.intp) + _ROW_STARTS

    def seen(self, features: NDArray[np.uint64], now: float) -> NDArray[np.bool_]:
        """Which features were seen before (count-min > 0); then count these."""
        if now - self._halved_at >= HALF_LIFE_S or self._added >= MAX_ADDED:
            self.counts >>= 1
            self._halved_at = now
            self._added = 0
        self._added += features.size
        slots = self._slots(features)
        flat = self.counts.reshape(-1)  # a view
        current = flat.take(slots)
        before = current.min(axis=0) > 0
        # A message's features are distinct, so a plain add is exact but for the rare two
        # features sharing a counter; counters stop at 255 instead of wrapping.
        np.minimum(current, 254, out=current)
        current += 1
        flat.put(slots, current)
        return before  # type: ignore[no-any-return]

    def related(self, fp: Fingerprint, campaign: str, now: float, *, look: bool) -> list[str]:
        """The campaigns a message of ``campaign`` matches on its recurring features.

        Every message's features are counted; only with ``look`` is it matched on its
        recurring ones (the tracker looks for mail from dynamic sources, where hash-busting
        botnets send from, that found no cluster: a mailing list's posts share their
        footer, and must not merge).
        A recurring cluster met for the first time is filed under ``campaign``; the
        campaigns of the others are returned (the tracker resolves merges and decides).
        """
        if not fp.features.size:
            return []
        known = self.seen(fp.features, now)
        if not look:
            return []
        recurring = fp.features[known]
        if recurring.size < MIN_RECURRING:
            return []
        assignment = self.index.assign(Fingerprint.from_features(recurring), now)
        found = []
        for cluster in (assignment.cluster, *assignment.also):
            filed = self.campaign_of.setdefault(cluster, campaign)
            if filed != campaign:
                found.append(filed)
        return found

    def prune(self) -> None:
        """Forget where the clusters the second index let go pointed."""
        for cluster in self.index.evicted():
            self.campaign_of.pop(cluster, None)
