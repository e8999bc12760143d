"""The streaming clusterer: joining, drift, expiry, the cluster cap, snapshots, scale."""

from __future__ import annotations

import time

import msgspec
import numpy as np
import pytest

from seawall.campaigns import UNCLUSTERED, Clusterer, Fingerprint, clustering_scores, v_measure
from seawall.campaigns.fingerprint import BANDS, PERMUTATIONS
from seawall.campaigns.index import _Snapshot

TEXT = (
    "Your parcel could not be delivered because the customs fee of the shipment was not "
    "paid. Please settle the small amount within two days, otherwise the parcel goes back "
    "to the sender and the fee for storage is charged to you."
)


def random_sig(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**16, PERMUTATIONS).astype(np.uint16)


def mutate(sig: np.ndarray, rng: np.random.Generator, changed: float) -> np.ndarray:
    """A copy whose estimated Jaccard similarity to ``sig`` is about ``1 - changed``."""
    out = sig.copy()
    slots = rng.choice(PERMUTATIONS, round(changed * PERMUTATIONS), replace=False)
    out[slots] = rng.integers(0, 2**16, slots.size)
    return out


def fp(sig: np.ndarray) -> Fingerprint:
    return Fingerprint.from_minhash(sig, tokens=100)


def test_copies_join_and_strangers_open_clusters() -> None:
    rng = np.random.default_rng(0)
    index = Clusterer()
    base = random_sig(rng)
    first = index.assign(fp(base), now=0.0)
    assert first.new
    assert first.clustered
    assert first.size == 1
    assert first.similarity == 1.0
    assert first.cluster.startswith("c-")
    assert len(first.cluster) == 18
    copy = index.assign(fp(mutate(base, rng, 0.4)), now=1.0)
    assert (copy.cluster, copy.new, copy.size) == (first.cluster, False, 2)
    assert 0.5 <= copy.similarity <= 0.7
    stranger = index.assign(fp(random_sig(rng)), now=2.0)
    assert stranger.new
    assert stranger.cluster != first.cluster
    assert len(index) == 2


def test_the_cluster_id_is_the_founders_digest() -> None:
    founder = fp(random_sig(np.random.default_rng(1)))
    assert Clusterer().assign(founder, now=0.0).cluster == f"c-{founder.digest}"


def test_below_the_threshold_is_a_new_cluster() -> None:
    rng = np.random.default_rng(2)
    index = Clusterer(threshold=0.3)
    base = random_sig(rng)
    index.assign(fp(base), now=0.0)
    far = index.assign(fp(mutate(base, rng, 0.85)), now=1.0)  # about 0.15 alike
    assert far.new


def test_small_fingerprints_are_refused() -> None:
    index = Clusterer()
    small = Fingerprint.from_text("Thanks, see you")
    assert not small.clusterable
    assert index.assign(small, now=0.0) is UNCLUSTERED
    assert not UNCLUSTERED.clustered
    assert len(index) == 0


def test_real_text_near_duplicates_join() -> None:
    index = Clusterer()
    a = index.assign(Fingerprint.from_text("Dear Ann, " + TEXT + " Ref 4411"), now=0.0)
    b = index.assign(Fingerprint.from_text("Dear Bob, " + TEXT + " Ref 9087 qzx"), now=5.0)
    c = index.assign(Fingerprint.from_text("The meeting moved to Thursday at ten."), now=6.0)
    assert b.cluster == a.cluster
    assert not b.new
    assert not c.clustered  # too short to cluster


def test_representatives_follow_a_drifting_campaign() -> None:
    """Each copy is 0.75 alike to the one before: the founder alone would lose the run."""
    rng = np.random.default_rng(4)
    index = Clusterer(threshold=0.3, drift=0.6, representatives=4)
    sig = random_sig(rng)
    founder = sig
    ids = set()
    for step in range(16):
        ids.add(index.assign(fp(sig), now=float(step)).cluster)
        sig = mutate(sig, rng, 0.25)
    assert len(ids) == 1
    assert float(np.mean(sig == founder)) < 0.3  # the run has left its founder behind
    assert index.stats().representatives <= 4 + 1  # plus their slot-wise majority


def test_one_representative_never_drifts() -> None:
    rng = np.random.default_rng(5)
    index = Clusterer(representatives=1)
    base = random_sig(rng)
    index.assign(fp(base), now=0.0)
    for step in range(1, 6):
        assert not index.assign(fp(mutate(base, rng, 0.5)), now=float(step)).new
    assert index.stats().representatives == 1


def test_clusters_unseen_for_the_ttl_expire_with_their_keys() -> None:
    rng = np.random.default_rng(6)
    index = Clusterer(ttl_s=100.0)
    old = random_sig(rng)
    first = index.assign(fp(old), now=0.0)
    index.assign(fp(random_sig(rng)), now=90.0)
    assert index.stats().band_keys == 2 * BANDS
    later = index.assign(fp(random_sig(rng)), now=150.0)  # sweeps: the first is 150 s old
    assert later.new
    stats = index.stats()
    assert (stats.clusters, stats.representatives, stats.band_keys) == (2, 2, 2 * BANDS)
    assert first.cluster not in index.live()
    assert later.cluster in index.live()
    assert len(index.live()) == 2
    again = index.assign(fp(old), now=151.0)
    assert again.new
    assert again.cluster == first.cluster


def test_an_expired_cluster_is_not_joined_before_the_sweep() -> None:
    rng = np.random.default_rng(7)
    index = Clusterer(ttl_s=1600.0)  # sweeps every 100 s
    base = random_sig(rng)
    index.assign(fp(base), now=0.0)
    index.assign(fp(random_sig(rng)), now=1599.0)  # sweeps at 1599: nothing is old yet
    assert index.assign(fp(mutate(base, rng, 0.1)), now=1650.0).new


def test_the_cap_evicts_the_least_recently_seen() -> None:
    rng = np.random.default_rng(8)
    index = Clusterer(max_clusters=64)
    sigs = [random_sig(rng) for _ in range(200)]
    for i, sig in enumerate(sigs):
        index.assign(fp(sig), now=float(i))
    assert len(index) <= 64
    assert not index.assign(fp(mutate(sigs[-1], rng, 0.1)), now=300.0).new
    assert index.assign(fp(mutate(sigs[0], rng, 0.1)), now=301.0).new


def test_snapshot_and_restore_keep_every_cluster() -> None:
    rng = np.random.default_rng(9)
    index = Clusterer(threshold=0.35, ttl_s=5000.0, max_clusters=500)
    bases = [random_sig(rng) for _ in range(40)]
    first = {}
    for step in range(400):
        k = step % 40
        first.setdefault(k, index.assign(fp(mutate(bases[k], rng, 0.2)), now=float(step)))
    data = index.snapshot()
    restored = Clusterer.restore(data)
    assert restored.snapshot() == data
    assert (restored.threshold, restored.ttl_s, restored.max_clusters) == (0.35, 5000.0, 500)
    before, after = index.stats(), restored.stats()
    assert (after.clusters, after.representatives) == (before.clusters, before.representatives)
    for k in range(40):
        copy = fp(mutate(bases[k], rng, 0.2))
        got = restored.assign(copy, now=500.0)
        assert got == index.assign(copy, now=500.0)
        assert got.cluster == first[k].cluster
        assert not got.new


def test_an_empty_index_round_trips() -> None:
    restored = Clusterer.restore(Clusterer(ttl_s=60.0).snapshot())
    assert len(restored) == 0
    assert restored.ttl_s == 60.0
    assert restored.assign(fp(random_sig(np.random.default_rng(11))), now=0.0).new


def test_restore_refuses_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="not a campaign index snapshot"):
        Clusterer.restore(b"\x93garbage")
    state = msgspec.msgpack.decode(Clusterer().snapshot(), type=_Snapshot)
    other = msgspec.structs.replace(state, fingerprint_version=state.fingerprint_version + 1)
    with pytest.raises(ValueError, match="version"):
        Clusterer.restore(msgspec.msgpack.encode(other))
    broken = msgspec.structs.replace(state, ids=b"\0" * 8)
    with pytest.raises(ValueError, match="damaged"):
        Clusterer.restore(msgspec.msgpack.encode(broken))
    index = Clusterer()
    index.assign(fp(random_sig(np.random.default_rng(12))), now=0.0)
    one = msgspec.msgpack.decode(index.snapshot(), type=_Snapshot)
    unsigned = msgspec.structs.replace(one, signatures=b"")
    with pytest.raises(ValueError, match="do not fit"):
        Clusterer.restore(msgspec.msgpack.encode(unsigned))
    damaged = msgspec.structs.replace(state, signatures=b"\0" * 3)
    with pytest.raises(ValueError, match="damaged"):
        Clusterer.restore(msgspec.msgpack.encode(damaged))


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0.0}, {"threshold": 0.7, "drift": 0.5}, {"representatives": 0}]
)
def test_settings_that_cannot_work_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need"):
        Clusterer(**kwargs)  # type: ignore[arg-type]


def test_cost_and_memory_stay_flat_at_scale() -> None:
    """30,000 fingerprints, a fifth of them copies of 300 runs, the TTL keeping ~7,500 live.

    bench/campaigns.py runs the same with 1,000,000.
    """
    rng = np.random.default_rng(10)
    n, ttl = 30_000, 7_500.0
    runs = rng.integers(0, 2**16, (300, PERMUTATIONS)).astype(np.uint16)
    fps = []
    for i in range(n):
        if i % 5 == 0:
            fps.append(fp(mutate(runs[(i // 5) % 300], rng, 0.45)))
        else:
            fps.append(fp(random_sig(rng)))
    index = Clusterer(ttl_s=ttl)
    sizes = {}
    start = time.perf_counter()
    for i, f in enumerate(fps):
        index.assign(f, now=float(i))
        if i + 1 in (15_000, 22_500, 30_000):
            sizes[i + 1] = index.stats()
    per_assign = (time.perf_counter() - start) / n
    # How fast is a figure (bench/campaigns.py measures it), not a pass/fail.
    print(f"\nClusterer.assign: {per_assign * 1e3:.3f} ms a fingerprint over {n:,}")
    # after one TTL the index holds one TTL's worth: it neither grows nor leaks
    assert sizes[22_500].bytes == sizes[30_000].bytes
    assert sizes[30_000].clusters <= 8_000
    assert sizes[30_000].bytes < 20 * 2**20


def test_quality_scores() -> None:
    assert v_measure(["a", "a", "b"], ["x", "x", "y"]) == 1.0
    assert v_measure(["a", "a", "b"], ["y", "y", "x"]) == 1.0  # names do not matter
    split = clustering_scores(["a", "a", "b", "b"], ["x", "y", "z", "w"])
    assert (split.homogeneity, split.completeness) == (1.0, 0.5)
    assert 0.66 < split.v_measure < 0.67
    with pytest.raises(ValueError, match="different numbers"):
        v_measure(["a"], [])
