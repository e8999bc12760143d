"""Streaming near-duplicate clustering: an LSH table of cluster representatives, bounded memory.

Each message's fingerprint is looked up by its band keys; the clusters whose representatives
share a key are verified on the whole MinHash signature, and the message joins the most
similar one at or above ``threshold``, else it opens a cluster of its own.  A cluster's
representatives are its founder, the latest members that had drifted from all of them, and
the slot-wise majority of those (which recovers a spam run's template from copies that
each carry their own hash-buster words).  Only representatives have band keys in the
table, so memory grows with clusters, not messages.  Clusters unseen for ``ttl_s`` are
dropped with their keys, and at most ``max_clusters`` are kept (the least recently seen
go first).

Everything lives in numpy arrays addressed by slot number: no Python object per cluster.
A ``Clusterer`` belongs to one thread; the tracker serialises calls to it.

>>> from seawall.campaigns.fingerprint import Fingerprint
>>> index = Clusterer()
>>> text = "Your parcel is waiting at the depot. Pay the small customs fee to get it delivered."
>>> first = index.assign(Fingerprint.from_text(text + " Ref 1234"), now=0.0)
>>> again = index.assign(Fingerprint.from_text(text + " Ref 9876 zqx"), now=60.0)
>>> first.new, again.new, again.cluster == first.cluster, again.size
(True, False, True, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec
import numpy as np
from numpy.typing import NDArray

from seawall.campaigns.fingerprint import BANDS, PERMUTATIONS, VERSION, Fingerprint, band_keys
from seawall.campaigns.table import ENTRIES, BandTable, Ints, Place, Slots

SNAPSHOT_VERSION: Final = 1

# Live representatives' keys fill at most 70% of the table, which then grows by half: a
# bucket holds 11 live keys on average, and more than 16 (so a live key is overwritten)
# in 7% of buckets at the peak, losing about 1% of the keys, which an active cluster
# files again (``Clusterer.assign``).
_MAX_LOAD = 0.7
_GROWTH = 1.5
_CANDIDATES = 32  # clusters verified per message at most: the ones sharing the most keys
_CHUNK = 1 << 16  # band keys per vectorised batch when many move at once
# A young index rebuilds its table as it grows (a fifth of its assign time over a scan's
# first 3,000 messages).  Starting it bigger saves that but moves which keys a full bucket
# overwrites, and so a few assignments (0.0003 of V-measure on the simulator's seed 11):
# the table's layout is part of what the index answers.
_MIN_BUCKETS = 256
_SLOT_INDEX = np.arange(PERMUTATIONS)


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one message went.

    ``cluster`` is ``"c-"`` and 16 hex digits, stable for the cluster's life (it is the
    founding message's digest); it is ``""`` for a fingerprint too small to cluster.
    ``similarity`` is the estimated Jaccard similarity to the nearest representative of
    the cluster (1.0 for the founder); ``size`` counts the messages the cluster has taken.
    ``also`` names the other clusters the message was near enough to join: evidence that
    they hold the same campaign (the tracker decides whether to merge them).
    """

    cluster: str
    new: bool
    similarity: float
    size: int
    also: tuple[str, ...] = ()

    @property
    def clustered(self) -> bool:
        return bool(self.cluster)


UNCLUSTERED: Final = Assignment("", False, 0.0, 0)


@dataclass(frozen=True, slots=True)
class IndexStats:
    clusters: int
    representatives: int
    band_keys: int
    bytes: int  # the numpy arrays' size: all the index holds besides a few scalars


class _Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The index on disk: parameters and the live clusters, arrays as little-endian bytes."""

    version: int
    fingerprint_version: int
    threshold: float
    drift: float
    representatives: int
    ttl_s: float
    max_clusters: int
    ids: bytes  # uint64 per cluster
    seen: bytes  # float64 per cluster
    sizes: bytes  # int32 per cluster
    turns: bytes  # uint8 per cluster
    members: bytes  # int32 per cluster and representative: a row of ``signatures`` or -1
    signatures: bytes  # uint16, PERMUTATIONS per representative


class Clusterer:
    """Streaming near-duplicate clusters of fingerprints, in one process, in bounded memory.

    ``threshold``: estimated Jaccard similarity a message needs to join a cluster (copies
    of a run with 10-20% inserted words sit at 0.35-0.5 from each other, unrelated mail
    below 0.1, and messages that share only a mailing-list footer at 0.1-0.35).
    ``drift``: a member less similar than this to every representative becomes one (up to
    ``representatives``; past that it replaces the previous such member, never the
    founder), so the cluster follows a campaign whose copies wander from the first one.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.3,
        drift: float = 0.45,
        representatives: int = 4,
        ttl_s: float = 86400.0,
        max_clusters: int = 200_000,
    ) -> None:
        if not 0.0 < threshold <= drift <= 1.0:
            raise ValueError("need 0 < threshold <= drift <= 1")
        if not 1 <= representatives <= 255 or max_clusters < 1 or ttl_s <= 0:
            raise ValueError("need 1 <= representatives <= 255, max_clusters and ttl_s > 0")
        self.threshold = threshold
        self.drift = drift
        self.representatives = representatives
        self.ttl_s = ttl_s
        self.max_clusters = max_clusters
        self._clusters = Slots(min(1024, max_clusters))
        cap = self._clusters.capacity
        self._ids = np.zeros(cap, dtype=np.uint64)
        self._seen = np.full(cap, -np.inf)  # -inf marks a free slot
        self._sizes = np.zeros(cap, dtype=np.int32)
        self._turns = np.zeros(cap, dtype=np.uint8)
        # Three or more representatives can outvote noise: one more column for their majority.
        self._width = representatives + (representatives >= 3)
        self._members = np.full((cap, self._width), -1, dtype=np.int32)
        self._reps = Slots(1024)
        self._sigs = np.zeros((1024, PERMUTATIONS), dtype=np.uint16)
        self._owner = np.zeros(1024, dtype=np.int32)  # the cluster of each representative
        self._filed = np.zeros(1024, dtype=np.int64)  # table.written when its keys went in
        self._table = BandTable(_MIN_BUCKETS)
        self._next_sweep = -np.inf
        # Whether to remember the ids of expired and evicted clusters for ``evicted()``
        # (the tracker forgets their campaigns by them, without scanning all clusters).
        self.report_evictions = False
        self._evicted: list[NDArray[np.uint64]] = []

    def __len__(self) -> int:
        return self._clusters.used

    def live(self) -> frozenset[str]:
        """The ids of the clusters kept (the others have expired or been evicted)."""
        ids = self._ids[self._seen > -np.inf].tolist()
        return frozenset(f"c-{ident:016x}" for ident in ids)

    def evicted(self) -> list[str]:
        """The clusters expired or evicted since the last call (with ``report_evictions``)."""
        gone = np.concatenate(self._evicted).tolist() if self._evicted else []
        self._evicted = []
        return [f"c-{ident:016x}" for ident in gone]

    def lookup(self, fp: Fingerprint, now: float) -> str:
        """The live cluster ``fp`` would join (its id), or "" when none is near enough:
        :meth:`assign`'s look, which files nothing and changes nothing."""
        if not fp.clusterable:
            return ""
        cluster, _, _, _ = self._nearest(self._table.locate(fp.keys), fp.minhash, now)
        return "" if cluster < 0 else f"c-{int(self._ids[cluster]):016x}"

    def assign(self, fp: Fingerprint, now: float) -> Assignment:
        """Put one message's fingerprint into its cluster, opening one if none is near."""
        if not fp.clusterable:
            return UNCLUSTERED
        if now >= self._next_sweep:
            self._expire(now)
        keys = fp.keys
        place = self._table.locate(keys)
        cluster, rep, similarity, also = self._nearest(place, fp.minhash, now)
        if cluster < 0:
            cluster = self._open(int(fp.digest, 16), now)
            self._represent(cluster, fp.minhash, keys, place)
            return Assignment(f"c-{int(self._ids[cluster]):016x}", True, 1.0, 1)
        self._seen[cluster] = now
        self._sizes[cluster] += 1
        if similarity < self.drift and self.representatives > 1:
            self._represent(cluster, fp.minhash, keys, place)
        elif self._table.written - self._filed[rep] > self._table.capacity // 2:
            # Its keys may have been overwritten by newer ones: file them again while the
            # campaign is still running.
            self._file(rep, band_keys(self._sigs[rep]))
        ident = f"c-{int(self._ids[cluster]):016x}"
        others = tuple(f"c-{int(self._ids[c]):016x}" for c in also)
        return Assignment(ident, False, similarity, int(self._sizes[cluster]), others)

    def _nearest(
        self, place: Place, sig: NDArray[np.uint16], now: float
    ) -> tuple[int, int, float, list[int]]:
        """The best cluster at or above the threshold, its nearest representative, how near,
        and the other clusters at or above the threshold."""
        reps = self._table.find(place)
        if reps.size == 0:
            return -1, -1, 0.0, []
        # Distinct owners by sort and compare: np.unique costs ten times more on a few dozen.
        owners = self._owner[reps]
        owners.sort()
        first = np.empty(owners.size, dtype=np.bool_)
        first[0] = True
        np.not_equal(owners[1:], owners[:-1], out=first[1:])
        starts = first.nonzero()[0]
        clusters = owners[starts]
        if clusters.size > _CANDIDATES:
            hits = np.diff(np.append(starts, owners.size))
            clusters = clusters[np.argsort(-hits, kind="stable")[:_CANDIDATES]]
        clusters = clusters[self._seen[clusters] >= now - self.ttl_s]  # not swept yet
        if clusters.size == 0:
            return -1, -1, 0.0, []
        members = self._members[clusters]
        agree = (self._sigs[np.maximum(members, 0)] == sig).sum(axis=2)
        agree[members < 0] = -1
        row, column = divmod(int(agree.argmax()), agree.shape[1])
        similarity = float(agree[row, column]) / PERMUTATIONS
        if similarity < self.threshold:
            return -1, -1, similarity, []
        near = (agree.max(axis=1) >= self.threshold * PERMUTATIONS).nonzero()[0]
        also = [int(clusters[r]) for r in near if r != row]
        return int(clusters[row]), int(members[row, column]), similarity, also

    def _open(self, ident: int, now: float) -> int:
        if self._clusters.used >= self.max_clusters:
            # Evict the least recently seen 1/64 at once: one partial sort per batch.
            live = np.flatnonzero(self._seen > -np.inf)
            count = max(1, self.max_clusters // 64)
            self._evict(live[np.argpartition(self._seen[live], count - 1)[:count]])
        if self._clusters.top == 0:
            capacity = int(self._clusters.capacity * _GROWTH)
            self._grow_clusters(min(capacity, self.max_clusters))
        cluster = self._clusters.take()
        self._ids[cluster] = ident
        self._seen[cluster] = now
        self._sizes[cluster] = 1
        self._turns[cluster] = 0
        self._members[cluster] = -1
        return cluster

    def _represent(
        self, cluster: int, sig: NDArray[np.uint16], keys: NDArray[np.uint64], place: Place
    ) -> None:
        """Make ``sig`` a representative of ``cluster``, filed under its band ``keys``."""
        row = self._members[cluster, : self.representatives]
        empty = (row < 0).nonzero()[0]
        table = self._table
        if empty.size:
            rep = self._new_representative(cluster)
            self._members[cluster, int(empty[0])] = rep
        else:
            # Full: the newest drifted member replaces the previous one, in turn over all
            # places but the founder's.  The old keys stay until overwritten: they lead
            # to this same cluster, whose representatives decide.
            turn = int(self._turns[cluster])
            self._turns[cluster] = (turn + 1) % 255
            rep = int(row[1 + turn % (self.representatives - 1)])
        self._sigs[rep] = sig
        self._file(rep, keys, place if self._table is table else None)
        if self._width > self.representatives and (empty.size == 0 or empty[0] >= 2):
            self._agree(cluster)

    def _agree(self, cluster: int) -> None:
        """File the slot-wise majority of the representatives as one more representative.

        Hash-buster words make every copy of a run differ from every other in its own way,
        but the slots they leave alone agree across copies: the majority recovers them,
        and a new copy is nearer to it than to any one copy (for 15% inserted words,
        0.6 rather than 0.45).  Ties go to the founder.
        """
        row = self._members[cluster]
        sigs = self._sigs[row[: self.representatives][row[: self.representatives] >= 0]]
        votes = (sigs[:, None, :] == sigs[None, :, :]).sum(axis=1)
        majority = sigs[votes.argmax(axis=0), _SLOT_INDEX]
        rep = int(row[-1])
        if rep < 0:
            rep = self._new_representative(cluster)
            self._members[cluster, -1] = rep
        self._sigs[rep] = majority
        self._file(rep, band_keys(majority))

    def _new_representative(self, cluster: int) -> int:
        if self._reps.top == 0:
            self._grow_representatives(int(self._reps.capacity * _GROWTH))
        if (self._reps.used + 1) * BANDS > _MAX_LOAD * self._table.capacity:
            self._rebuild(int(self._table.buckets * _GROWTH))
        rep = self._reps.take()
        self._owner[rep] = cluster
        return rep

    def _file(self, rep: int, keys: NDArray[np.uint64], place: Place | None = None) -> None:
        """File ``rep`` under ``keys`` (``place``: where the current table put them)."""
        self._table.add(self._table.locate(keys) if place is None else place, rep)
        self._filed[rep] = self._table.written

    def _evict(self, clusters: Ints) -> None:
        if self.report_evictions:
            self._evicted.append(self._ids[clusters])
        members = self._members[clusters].reshape(-1)
        reps = members[members >= 0]
        for lo in range(0, reps.size, _CHUNK // BANDS):
            part = reps[lo : lo + _CHUNK // BANDS]
            keys = band_keys(self._sigs[part]).reshape(-1)
            self._table.remove(keys, np.repeat(part, BANDS))
        self._reps.give(reps)
        self._members[clusters] = -1
        self._seen[clusters] = -np.inf
        self._clusters.give(clusters.astype(np.int32))

    def _expire(self, now: float) -> None:
        # A sweep every 1/16 of the TTL costs one pass over the clusters' last-seen times.
        self._next_sweep = now + self.ttl_s / 16
        dead = np.flatnonzero((self._seen > -np.inf) & (self._seen < now - self.ttl_s))
        if dead.size:
            self._evict(dead)

    def _grow_clusters(self, capacity: int) -> None:
        extra = capacity - self._clusters.capacity
        self._ids = np.concatenate((self._ids, np.zeros(extra, dtype=np.uint64)))
        self._seen = np.concatenate((self._seen, np.full(extra, -np.inf)))
        self._sizes = np.concatenate((self._sizes, np.zeros(extra, dtype=np.int32)))
        self._turns = np.concatenate((self._turns, np.zeros(extra, dtype=np.uint8)))
        blank = np.full((extra, self._width), -1, dtype=np.int32)
        self._members = np.concatenate((self._members, blank))
        self._clusters.grow(capacity)

    def _grow_representatives(self, capacity: int) -> None:
        extra = capacity - self._reps.capacity
        self._sigs = np.concatenate((self._sigs, np.zeros((extra, PERMUTATIONS), np.uint16)))
        self._owner = np.concatenate((self._owner, np.zeros(extra, dtype=np.int32)))
        self._filed = np.concatenate((self._filed, np.zeros(extra, dtype=np.int64)))
        self._reps.grow(capacity)

    def _rebuild(self, buckets: int) -> None:
        """File every live representative's keys again, in a table of ``buckets`` buckets."""
        self._table = BandTable(buckets)
        live = self._members[self._seen > -np.inf].reshape(-1)
        live = live[live >= 0]
        for lo in range(0, live.size, _CHUNK // BANDS):
            part = live[lo : lo + _CHUNK // BANDS]
            place = self._table.locate(band_keys(self._sigs[part]).reshape(-1))
            self._table.add_many(place, np.repeat(part, BANDS))
        self._filed[live] = self._table.written

    def stats(self) -> IndexStats:
        """Sizes for logs and the dashboard (``band_keys`` counts the table: O(its size))."""
        arrays = (self._ids, self._seen, self._sizes, self._turns, self._members, self._sigs)
        held = sum(a.nbytes for a in arrays) + self._owner.nbytes + self._filed.nbytes
        held += self._clusters.free.nbytes + self._reps.free.nbytes + self._table.nbytes
        return IndexStats(self._clusters.used, self._reps.used, self._table.entries(), held)

    def snapshot(self) -> bytes:
        """The live clusters and the parameters as msgpack, for ``Clusterer.restore``."""
        live = np.flatnonzero(self._seen > -np.inf)
        members = self._members[live]
        used = members >= 0
        renumber = np.full(self._reps.capacity, -1, dtype=np.int32)
        renumber[members[used]] = np.arange(np.count_nonzero(used), dtype=np.int32)
        state = _Snapshot(
            version=SNAPSHOT_VERSION,
            fingerprint_version=VERSION,
            threshold=self.threshold,
            drift=self.drift,
            representatives=self.representatives,
            ttl_s=self.ttl_s,
            max_clusters=self.max_clusters,
            ids=self._ids[live].astype("<u8").tobytes(),
            seen=self._seen[live].astype("<f8").tobytes(),
            sizes=self._sizes[live].astype("<i4").tobytes(),
            turns=self._turns[live].tobytes(),
            members=np.where(used, renumber[members], -1).astype("<i4").tobytes(),
            signatures=self._sigs[members[used]].astype("<u2").tobytes(),
        )
        return msgspec.msgpack.encode(state)

    @classmethod
    def restore(cls, data: bytes) -> Clusterer:
        """An index from ``snapshot()`` bytes; ``ValueError`` if they are not one we can use.

        A snapshot made by other fingerprint code is refused: its signatures would never
        match new ones.
        """
        try:
            state = msgspec.msgpack.decode(data, type=_Snapshot)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a campaign index snapshot: {exc}") from None
        if (state.version, state.fingerprint_version) != (SNAPSHOT_VERSION, VERSION):
            raise ValueError(
                f"snapshot version {state.version}/{state.fingerprint_version}, "
                f"this code reads {SNAPSHOT_VERSION}/{VERSION}"
            )
        index = cls(
            threshold=state.threshold,
            drift=state.drift,
            representatives=state.representatives,
            ttl_s=state.ttl_s,
            max_clusters=state.max_clusters,
        )
        try:
            ids = np.frombuffer(state.ids, dtype="<u8")
            n = ids.size
            sigs = np.frombuffer(state.signatures, dtype="<u2").reshape(-1, PERMUTATIONS)
            members = np.frombuffer(state.members, dtype="<i4").reshape(n, index._width)
            columns = (np.frombuffer(state.seen, "<f8"), np.frombuffer(state.sizes, "<i4"))
        except ValueError as exc:
            raise ValueError(f"snapshot arrays are damaged: {exc}") from None
        if (
            n > state.max_clusters
            or members.max(initial=-1) >= sigs.shape[0]
            or any(c.size != n for c in columns)
            or len(state.turns) != n
        ):
            raise ValueError("snapshot arrays do not fit together")
        index._grow_clusters(max(index._clusters.capacity, min(state.max_clusters, n * 5 // 4)))
        index._grow_representatives(max(index._reps.capacity, sigs.shape[0] * 5 // 4))
        index._clusters.reserve(n)
        index._reps.reserve(sigs.shape[0])
        index._ids[:n] = ids
        index._seen[:n], index._sizes[:n] = columns
        index._turns[:n] = np.frombuffer(state.turns, dtype=np.uint8)
        index._members[:n] = members
        index._sigs[: sigs.shape[0]] = sigs
        rows, places = np.nonzero(members >= 0)
        index._owner[members[rows, places]] = rows
        wanted = int(sigs.shape[0] * BANDS / _MAX_LOAD / ENTRIES * _GROWTH)
        index._rebuild(max(_MIN_BUCKETS, wanted))
        return index
