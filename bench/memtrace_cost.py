"""``python -m bench.memtrace_cost``: what the malloc settings cost a scan, in CPU.

Two ``seawall serve`` (2 workers each) run side by side from this tree: ``glibc`` with
``serve.malloc_arena_max = 0`` and ``serve.malloc_mmap_threshold = 0`` (glibc's own
defaults: an arena per thread, the dynamic mmap threshold) and ``tuned`` with the values
given (by default Seawall's defaults).  Rounds alternate A B B A; each round posts the
messages to /checkv2 at concurrency 8 and takes the workers' CPU seconds (user + sys, from
/proc) and minor page faults over it.  Two message sets: 1,000 messages spread over the
SpamAssassin test half, and 300 of its messages of 64 kB and more, repeated (the worst
case: a fixed 128 KiB threshold maps such bodies and their copies on their own).

    .venv/bin/python -m bench.memtrace_cost [--rounds 4] [--limit 1000] [--arena-max 0]
                                            [--mmap-threshold 131072]

Prints and writes .cache/bench/memtrace-cost.json: CPU ms and minor faults per message per
round and side, the median ratio tuned / glibc of adjacent rounds, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from tests.integration.seawall_proc import Seawall

from bench.hostile_load import workers
from bench.load import Sample, corpus_samples, run_load

ROOT = Path(__file__).resolve().parents[1]
BIG = 64 * 1024


def cpu_s(procs: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def minor_faults(procs: list[psutil.Process]) -> int:
    """Page faults served without I/O (a fresh mapping's pages, a heap grown back), summed."""
    total = 0
    for p in procs:
        with open(f"/proc/{p.pid}/stat") as stat:
            total += int(stat.read().rsplit(")", 1)[1].split()[7])  # field 10, minflt
    return total


def one_round(sw: Seawall, samples: Sequence[Sample]) -> dict[str, Any]:
    procs = workers(sw)
    before, faults = cpu_s(procs), minor_faults(procs)
    row = run_load(sw.url("/checkv2"), samples, 8).summary()
    spent = cpu_s(procs) - before
    return {
        "messages": len(samples),
        "errors": row["errors"],
        "cpu_ms_per_msg": round(spent * 1000 / len(samples), 3),
        "minor_faults_per_msg": round((minor_faults(procs) - faults) / len(samples), 1),
        "msgs_per_s": row["msgs_per_s"],
        "load1": round(os.getloadavg()[0], 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="per side and message set")
    parser.add_argument("--limit", type=int, default=1000, help="messages of the test half")
    parser.add_argument("--arena-max", type=int, default=0)
    parser.add_argument("--mmap-threshold", type=int, default=131072)
    args = parser.parse_args(argv)
    half = corpus_samples(train=False, limit=args.limit)
    big = [s for s in corpus_samples(train=False) if len(s.body) >= BIG]
    sets = {"test_half": half, "big": (big * (300 // max(1, len(big)) + 1))[:300]}
    settings = {
        "glibc": {"malloc_arena_max": 0, "malloc_mmap_threshold": 0},
        "tuned": {
            "malloc_arena_max": args.arena_max,
            "malloc_mmap_threshold": args.mmap_threshold,
        },
    }
    result: dict[str, Any] = {
        "settings": settings,
        "big_messages": len(big),
        "load1_start": round(os.getloadavg()[0], 2),
    }
    order = (["glibc", "tuned", "tuned", "glibc"] * args.rounds)[: 2 * args.rounds]
    with tempfile.TemporaryDirectory(prefix="seawall-malloc-") as tmp:
        servers: dict[str, Seawall] = {}
        try:
            for side, keys in settings.items():
                sw = Seawall(root=Path(tmp) / side, state=Path(tmp) / f"{side}-state", workers=2)
                sw.write_config(**keys)
                sw.start()
                servers[side] = sw
            for sw in servers.values():  # warm-up: the caches, the first arenas
                run_load(sw.url("/checkv2"), half[:300], 8)
            for name, samples in sets.items():
                rows: dict[str, list[dict[str, Any]]] = {"glibc": [], "tuned": []}
                for side in order:
                    row = one_round(servers[side], samples)
                    rows[side].append(row)
                    print(f"  {name} {side}: {row}", file=sys.stderr)
                ratios = [
                    t["cpu_ms_per_msg"] / g["cpu_ms_per_msg"]
                    for t, g in zip(rows["tuned"], rows["glibc"], strict=True)
                ]
                result[name] = {
                    "rounds": rows,
                    "cpu_ms_per_msg_median": {
                        side: statistics.median(r["cpu_ms_per_msg"] for r in side_rows)
                        for side, side_rows in rows.items()
                    },
                    "minor_faults_per_msg_median": {
                        side: statistics.median(r["minor_faults_per_msg"] for r in side_rows)
                        for side, side_rows in rows.items()
                    },
                    "ratio_tuned_over_glibc": {
                        "median": round(statistics.median(ratios), 3),
                        "min": round(min(ratios), 3),
                        "max": round(max(ratios), 3),
                    },
                }
            result["rss_mib_end"] = {
                side: [round(p.memory_info().rss / 2**20, 1) for p in workers(sw)]
                for side, sw in servers.items()
            }
        finally:
            for sw in servers.values():
                sw.stop()
    result["load1_end"] = round(os.getloadavg()[0], 2)
    out = ROOT / ".cache" / "bench" / "memtrace-cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
