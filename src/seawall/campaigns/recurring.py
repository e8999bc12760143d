"""The second look: cluster a message by the features it shares with earlier mail.

A run whose template is two sentences under a heap of random hash-buster words
gives copies that share too little to match on all their features (Jaccard 0.1
to 0.2).  But the template's shingles recur in every copy, while hash-buster
shingles are new each time.  A count-min sketch remembers which features were
seen recently; a message that opened a new cluster is fingerprinted again on
its recurring features alone and matched in a second index, whose clusters
point at the campaign the first copy opened.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.index import Clusterer

ROWS = 2
WIDTH_BITS = 21  # 2 x 2 Mi one-byte counters: 4 MiB
MIN_RECURRING = 8  # as many as a fingerprint needs to be clusterable
HALF_LIFE_S = 3600.0  # counts halve every hour: "recently" means the last hour or two
_SALTS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F], dtype=np.uint64)


class Recurring:
    """Recently seen features, and the index of messages by their recurring features."""

    def __init__(self, *, ttl_s: float, max_clusters: int) -> None:
        self.counts = np.zeros((ROWS, 1 << WIDTH_BITS), dtype=np.uint8)
        self.index = Clusterer(ttl_s=ttl_s, max_clusters=max_clusters)
        self.campaign_of: dict[str, str] = {}  # recurring cluster -> campaign id
        self._halved_at = 0.0

    def _slots(self, features: NDArray[np.uint64]) -> NDArray[np.uint64]:
        mixed = features[None, :] * _SALTS[:, None]
        return (mixed >> np.uint64(64 - WIDTH_BITS)).astype(np.intp)

    def seen(self, features: NDArray[np.uint64], now: float) -> NDArray[np.bool_]:
        """Which features were seen before (count-min > 0); then count these."""
        if now - self._halved_at >= HALF_LIFE_S:
            self.counts >>= 1
            self._halved_at = now
        slots = self._slots(features)
        rows = np.arange(ROWS)[:, None]
        current = self.counts[rows, slots]
        before = current.min(axis=0) > 0
        # A message's features are distinct, so a plain add is exact but for the rare two
        # features sharing a counter; counters stop at 255 instead of wrapping.
        self.counts[rows, slots] = np.minimum(current, 254) + 1
        return before  # type: ignore[no-any-return]

    def campaign(self, fp: Fingerprint, opened: str, now: float, *, look: bool) -> str | None:
        """The campaign a message in cluster ``opened`` really belongs to, if any.

        Every message's features are counted; only with ``look`` is it matched on its
        recurring ones (the tracker looks for mail from dynamic sources, where hash-busting
        botnets send from: a mailing list's posts share their footer, and must not merge).
        """
        if not fp.features.size:
            return None
        known = self.seen(fp.features, now)
        if not look:
            return None
        recurring = fp.features[known]
        if recurring.size < MIN_RECURRING:
            return None
        assignment = self.index.assign(Fingerprint.from_features(recurring), now)
        if not assignment.cluster:
            return None
        found = self.campaign_of.get(assignment.cluster)
        if found is None:
            self.campaign_of[assignment.cluster] = opened
            return None
        return found if found != opened else None

    def prune(self) -> None:
        live = self.index.live()
        for cluster in [c for c in self.campaign_of if c not in live]:
            del self.campaign_of[cluster]
