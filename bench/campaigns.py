"""Campaign index at scale: assign cost and memory over a million fingerprints.

    .venv/bin/python -m bench.campaigns [--count 1000000] [--max-clusters 1000000]
        [--ttl-live 100000] [--seed 1] [--json]

Two runs over the same stream of fingerprints.  Most are random signatures (one-off
mail), 8% are copies of 2,000 runs (45% of each copy's slots redrawn, so copies sit at
about 0.55 from their run's first copy), and 2% are the real SpamAssassin corpus,
fingerprinted once and replayed in a loop.  Fingerprints are made as the stream goes, so
the process holds only the index.

1. Expiry: ``now`` advances one second per message and the TTL is ``--ttl-live`` seconds,
   so about that many clusters are live at any time; memory must stay flat.
2. No expiry: every cluster stays (up to ``--max-clusters``): the worst case for memory.

For each window of a tenth of the stream: mean and p99 time of ``Clusterer.assign`` alone
(making the fingerprint is not timed), the index's own arrays (``stats().bytes``), the
process RSS and its peak so far (the expiry run goes first, so the peak of the larger run
is its own).  Fingerprint.of itself is measured on real mail by
tests/campaigns/test_corpus_clusters.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterator

import numpy as np
import psutil

from seawall import corpus
from seawall.campaigns import Clusterer, Fingerprint
from seawall.campaigns.fingerprint import PERMUTATIONS
from seawall.message import parse_message

_BATCH = 10_000


def real_fingerprints() -> list[Fingerprint]:
    items = corpus.items(corpus.SPAMASSASSIN)
    return [Fingerprint.of(parse_message(item.path.read_bytes())) for item in items]


def stream(count: int, seed: int, real: list[Fingerprint]) -> Iterator[Fingerprint]:
    """``count`` fingerprints: random ones, copies of 2,000 runs, and real mail (2%)."""
    rng = np.random.default_rng(seed)
    runs = rng.integers(0, 2**16, (2_000, PERMUTATIONS)).astype(np.uint16)
    made = 0
    while made < count:
        n = min(_BATCH, count - made)
        sigs = rng.integers(0, 2**16, (n, PERMUTATIONS)).astype(np.uint16)
        kind = rng.random(n)
        copies = np.flatnonzero((kind >= 0.90) & (kind < 0.98))
        base = runs[rng.integers(0, runs.shape[0], copies.size)]
        keep = rng.random((copies.size, PERMUTATIONS)) >= 0.45
        sigs[copies] = np.where(keep, base, sigs[copies])
        for i in range(n):
            if kind[i] >= 0.98:
                yield real[(made + i) % len(real)]
            else:
                yield Fingerprint.from_minhash(sigs[i], tokens=100)
        made += n


def run(
    count: int, seed: int, real: list[Fingerprint], *, ttl_s: float, max_clusters: int
) -> list[dict[str, float]]:
    process = psutil.Process()
    index = Clusterer(ttl_s=ttl_s, max_clusters=max_clusters)
    window = max(count // 10, 1)
    spent = np.empty(window)
    rows: list[dict[str, float]] = []
    for i, fp in enumerate(stream(count, seed, real)):
        start = time.perf_counter()
        index.assign(fp, now=float(i))
        spent[i % window] = time.perf_counter() - start
        if (i + 1) % window == 0:
            stats = index.stats()
            rows.append(
                {
                    "assigned": i + 1,
                    "mean_ms": round(float(spent.mean()) * 1e3, 4),
                    "p99_ms": round(float(np.percentile(spent, 99)) * 1e3, 4),
                    "clusters": stats.clusters,
                    "representatives": stats.representatives,
                    "band_keys": stats.band_keys,
                    "index_mib": round(stats.bytes / 2**20, 1),
                    "rss_mib": round(process.memory_info().rss / 2**20, 1),
                    # Linux reports the peak in KiB: it catches the moments arrays grow
                    "peak_rss_mib": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, 1
                    ),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--max-clusters", type=int, default=1_000_000)
    parser.add_argument("--ttl-live", type=int, default=100_000, help="clusters live in run 1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object per window")
    args = parser.parse_args()
    real = real_fingerprints()
    runs = {
        f"ttl {args.ttl_live} s": {
            "ttl_s": float(args.ttl_live),
            "max_clusters": args.max_clusters,
        },
        "no expiry": {"ttl_s": float(args.count) * 10, "max_clusters": args.max_clusters},
    }
    for name, settings in runs.items():
        rows = run(args.count, args.seed, real, **settings)  # type: ignore[arg-type]
        if args.json:
            for row in rows:
                print(json.dumps({"run": name, **row}))
            continue
        print(f"\n{name}")
        print(
            f"{'assigned':>10} {'mean ms':>8} {'p99 ms':>8} {'clusters':>9} {'reps':>9} "
            f"{'keys':>10} {'index MiB':>9} {'RSS MiB':>8} {'peak MiB':>8}"
        )
        for r in rows:
            print(
                f"{r['assigned']:>10} {r['mean_ms']:>8.3f} {r['p99_ms']:>8.3f} "
                f"{r['clusters']:>9} {r['representatives']:>9} {r['band_keys']:>10} "
                f"{r['index_mib']:>9.1f} {r['rss_mib']:>8.1f} {r['peak_rss_mib']:>8.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
