"""Campaign index at scale: assign cost and memory over a million fingerprints.

    .venv/bin/python -m bench.campaigns [--count 1000000] [--max-clusters 1000000]
        [--ttl-live 100000] [--seed 1] [--json] [--tracker]

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

``--tracker`` runs the whole tracker step instead: ``Tracker.observe`` (the index, the
recurring-feature pass with its count-min sketch and second index, the registry) and
``Tracker.judge`` for each message, over messages that carry their features and
sources: 90% one-off mail (random features, any source), 8% copies of 2,000 runs from
the runs' dynamic bots (half of them a template's 60 features and 15-30 hash-buster ones;
the other half 20 and 40-80, so that each copy opens a cluster of its own and is found
by the second look), 2% the real corpus.  The same two runs, with ``max_campaigns`` =
``--max-clusters``, the clock advancing at ``--per-day`` messages a day (a million: a
day's TTL then holds the million); besides time and memory it reports the campaign
records, founders, second-index clusters and the sketch's fill (the chance that a new
feature looks "seen before").
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from collections.abc import Iterator

import numpy as np
import psutil

from seawall import corpus
from seawall.campaigns import Clusterer, Fingerprint
from seawall.campaigns.fingerprint import PERMUTATIONS
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings
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


RealMail = tuple[Fingerprint, str, tuple[str, ...]]  # fingerprint, subject, domains


def real_mail() -> list[RealMail]:
    out = []
    for item in corpus.items(corpus.SPAMASSASSIN):
        msg = parse_message(item.path.read_bytes())
        domains = tuple(sorted({u.domain for u in msg.urls if u.domain}))
        out.append((Fingerprint.of(msg), msg.subject, domains))
    return out


def tracker_stream(
    count: int, seed: int, real: list[RealMail]
) -> Iterator[tuple[Fingerprint, Observation]]:
    """``count`` messages for the tracker: fingerprints with features, and their sources."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 2**63, (2_000, 60), dtype=np.uint64)
    bots = rng.integers(0, 2**32, (2_000, 64), dtype=np.uint64)
    for i in range(count):
        kind = rng.random()
        if kind < 0.90:
            features = np.unique(rng.integers(0, 2**63, int(rng.integers(40, 120)), np.uint64))
            ip = _ip(int(rng.integers(0, 2**32)))
            dynamic = bool(rng.random() < 0.3)
            domains: tuple[str, ...] = tuple(f"d{rng.integers(0, 10**6)}.example" for _ in range(2))
            yield (
                Fingerprint.from_features(features),
                Observation(ip=ip, dynamic=dynamic, subject=f"note {i}", domains=domains),
            )
        elif kind < 0.98:
            run = int(rng.integers(0, templates.shape[0]))
            busted = run % 2 == 1  # a short template under many hash-buster words
            size = int(rng.integers(40, 81) if busted else rng.integers(15, 31))
            noise = rng.integers(0, 2**63, size, np.uint64)
            template = templates[run, :20] if busted else templates[run]
            features = np.unique(np.concatenate((template, noise)))
            ip = _ip(int(bots[run, rng.integers(0, bots.shape[1])]))
            subject = f"offer {run} variant {rng.integers(0, 20)}"
            domains = (f"run{run}-{rng.integers(0, 10)}.example",)
            yield (
                Fingerprint.from_features(features),
                Observation(ip=ip, dynamic=True, subject=subject, domains=domains),
            )
        else:
            fp, subject, domains = real[i % len(real)]
            ip = _ip(int(rng.integers(0, 2**32)))
            yield fp, Observation(ip=ip, subject=subject, domains=domains)


def _ip(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def run_tracker(
    count: int,
    seed: int,
    real: list[RealMail],
    *,
    ttl_s: float,
    max_clusters: int,
    per_second: float,
) -> list[dict[str, float]]:
    process = psutil.Process()
    start_rss = round(process.memory_info().rss / 2**20, 1)
    settings = CampaignSettings(ttl_s=ttl_s, max_campaigns=max_clusters)
    tracker = Tracker(settings)
    window = max(count // 10, 1)
    spent = np.empty(window)
    cpu = np.empty(window)
    rows: list[dict[str, float]] = []
    sample = bytes(4096)
    for i, (fp, obs) in enumerate(tracker_stream(count, seed, real)):
        now = i / per_second
        start, start_cpu = time.perf_counter(), time.thread_time()
        reply = tracker.observe(fp, obs, now)
        spam = obs.dynamic and reply.view.count >= 3
        tracker.judge(
            Judge(reply.view.id, spam, obs.domains, now, sample if reply.wants_sample else b"")
        )
        spent[i % window] = time.perf_counter() - start
        cpu[i % window] = time.thread_time() - start_cpu
        if (i + 1) % window == 0:
            counts = tracker.recurring.counts
            rows.append(
                {
                    "messages": i + 1,
                    "mean_ms": round(float(spent.mean()) * 1e3, 4),
                    "p99_ms": round(float(np.percentile(spent, 99)) * 1e3, 4),
                    # CPU time of this thread: the wall-clock p99 also holds the moments a
                    # busy host gave the core to another process.
                    "cpu_mean_ms": round(float(cpu.mean()) * 1e3, 4),
                    "cpu_p99_ms": round(float(np.percentile(cpu, 99)) * 1e3, 4),
                    "clusters": len(tracker.index),
                    "campaigns": len(tracker.campaigns),
                    "founders": len(tracker.founders),
                    "second_clusters": len(tracker.recurring.index),
                    "index_mib": round(tracker.index.stats().bytes / 2**20, 1),
                    "second_mib": round(tracker.recurring.index.stats().bytes / 2**20, 1),
                    # The chance that a feature never seen is taken for one seen recently.
                    "sketch_fill": round(float(np.prod((counts > 0).mean(axis=1))), 3),
                    "rss_mib": round(process.memory_info().rss / 2**20, 1),
                    "peak_rss_mib": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, 1
                    ),
                    "start_rss_mib": start_rss,  # the process before the run's tracker
                }
            )
    return rows


def tracker_main(args: argparse.Namespace) -> int:
    logging.disable(logging.WARNING)  # outbreak warnings for the simulated runs
    real = real_mail()
    per_second = args.per_day / 86400.0
    runs = {
        f"ttl {args.ttl_live} messages": args.ttl_live / per_second,
        "no expiry": 10 * args.count / per_second,
    }
    for name, ttl_s in runs.items():
        rows = run_tracker(
            args.count,
            args.seed,
            real,
            ttl_s=ttl_s,
            max_clusters=args.max_clusters,
            per_second=per_second,
        )
        if args.json:
            for row in rows:
                print(json.dumps({"run": name, **row}), flush=True)
            continue
        print(f"\n{name} (whole tracker step; RSS before the run {rows[0]['start_rss_mib']} MiB)")
        print(
            f"{'messages':>9} {'mean ms':>8} {'p99 ms':>7} {'cpu ms':>7} {'cpu p99':>7} "
            f"{'clusters':>9} {'campaigns':>9} "
            f"{'founders':>9} {'2nd idx':>8} {'idx MiB':>8} {'2nd MiB':>8} {'fill':>6} "
            f"{'RSS MiB':>8} {'peak MiB':>8}"
        )
        for r in rows:
            print(
                f"{r['messages']:>9} {r['mean_ms']:>8.3f} {r['p99_ms']:>7.3f} "
                f"{r['cpu_mean_ms']:>7.3f} {r['cpu_p99_ms']:>7.3f} "
                f"{r['clusters']:>9} {r['campaigns']:>9} {r['founders']:>9} "
                f"{r['second_clusters']:>8} {r['index_mib']:>8.1f} {r['second_mib']:>8.1f} "
                f"{r['sketch_fill']:>6.3f} {r['rss_mib']:>8.1f} {r['peak_rss_mib']:>8.1f}",
                flush=True,
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--max-clusters", type=int, default=1_000_000)
    parser.add_argument("--ttl-live", type=int, default=100_000, help="clusters live in run 1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object per window")
    parser.add_argument("--tracker", action="store_true", help="the whole tracker step")
    parser.add_argument(
        "--per-day", type=float, default=1e6, help="--tracker: the mail's rate (messages a day)"
    )
    args = parser.parse_args()
    if args.tracker:
        return tracker_main(args)
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
