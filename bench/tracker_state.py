"""The campaign tracker's state over a long wave: what it holds, what its snapshot weighs.

    .venv/bin/python -m bench.tracker_state [--hours 6] [--per-second 13] [--windows 12]
        [--ttl-s 86400] [--max-campaigns 200000] [--json]

Replays the test half of the SpamAssassin corpus (as ``bench.hostile load`` sends it to a
real ``seawall serve``) through one in-process Tracker, in a loop, with a simulated clock
advancing ``--per-second`` messages a second for ``--hours``: each message's observation
(a fresh random source address per copy, dynamic for spam) and its judgement by its label,
with the message itself when the campaign asks for a sample, as a worker sends it.

At the end of each window it records len() of every structure the tracker keeps (index
clusters, campaign records, founders, aliases, blocklist, ham domains, the second index's
map), the sums over campaigns of their address sets, minute maps and samples, the
snapshot's size and where its bytes go (each part encoded alone), the CPU time of one
``Tracker.snapshot()`` (the best of three) and of its restore, and the process RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import msgspec
import numpy as np
import psutil

from seawall import corpus
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import Judge, Observation
from seawall.campaigns.snapshot import campaign_state
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings
from seawall.message import parse_message

Mail = tuple[Fingerprint, Observation, bool, bytes]


def test_half() -> list[Mail]:
    out: list[Mail] = []
    for item in corpus.items(corpus.SPAMASSASSIN):
        if corpus.in_train_split(item.path):
            continue
        raw = item.path.read_bytes()
        msg = parse_message(raw)
        spam = item.label == "spam"
        obs = Observation(
            subject=msg.subject,
            domains=tuple(sorted({u.domain for u in msg.urls if u.domain})),
            urls=tuple(u.url for u in msg.urls[:20]),
            dynamic=spam,
        )
        out.append((Fingerprint.of(msg), obs, spam, raw))
    return out


def _ip(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def parts(tracker: Tracker) -> dict[str, int]:
    """Bytes of each part of the snapshot, encoded alone."""
    enc = msgspec.msgpack.encode
    states = [campaign_state(c) for c in tracker.campaigns.values()]
    # Packed since the sample is kept compressed; the message itself before.
    samples = sum(len(getattr(c, "packed_sample", c.sample)) for c in tracker.campaigns.values())
    names = ("ips", "own_ips", "nets24", "nets16")  # the networks: in older snapshots only
    ips = [{k: s[k] for k in names if k in s} for s in states]
    return {
        "index": len(tracker.index.snapshot()),
        "campaigns": len(enc(states)),
        "of which samples": samples,
        "of which addresses": len(enc(ips)),
        "founders": len(enc(tracker.founders)),
        "alias": len(enc(tracker.alias)),
        "blocklist": len(enc(tracker.blocklist)),
        "ham_domains": len(enc(tracker.ham_domains)),
    }


def save_cpu_ms(tracker: Tracker) -> tuple[float, int, float]:
    """CPU ms of a snapshot (the best of three), its size, and CPU ms of its restore."""
    best, data = float("inf"), b""
    for _ in range(3):
        start = time.process_time()
        data = tracker.snapshot()
        best = min(best, time.process_time() - start)
    start = time.process_time()
    Tracker.restore(data, tracker.settings)
    restore = time.process_time() - start
    return round(best * 1e3, 1), len(data), round(restore * 1e3, 1)


def window_row(tracker: Tracker, messages: int, now: float) -> dict[str, Any]:
    campaigns = tracker.campaigns.values()
    cpu_ms, size, restore_ms = save_cpu_ms(tracker)
    return {
        "hours": round(now / 3600, 2),
        "messages": messages,
        "clusters": len(tracker.index),
        "campaigns": len(tracker.campaigns),
        "founders": len(tracker.founders),
        "alias": len(tracker.alias),
        "blocklist": len(tracker.blocklist),
        "ham_domains": len(tracker.ham_domains),
        "second_map": len(tracker.recurring.campaign_of),
        "ips": sum(len(c.ips) for c in campaigns),
        "minutes": sum(len(c.minutes) for c in campaigns),
        "samples_kib": round(sum(len(c.sample) for c in campaigns) / 1024, 1),
        "snapshot_kib": round(size / 1024, 1),
        "save_cpu_ms": cpu_ms,
        "restore_cpu_ms": restore_ms,
        "parts_kib": {k: round(v / 1024, 1) for k, v in parts(tracker).items()},
        "rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    mail = test_half()
    rng = np.random.default_rng(args.seed)
    settings = CampaignSettings(ttl_s=args.ttl_s, max_campaigns=args.max_campaigns)
    tracker = Tracker(settings)
    total = int(args.hours * 3600 * args.per_second)
    every = max(1, total // args.windows)
    rows = []
    for i in range(total):
        fp, obs, spam, raw = mail[i % len(mail)]
        now = i / args.per_second
        obs = msgspec.structs.replace(obs, ip=_ip(int(rng.integers(1 << 24, 224 << 24))))
        reply = tracker.observe(fp, obs, now)
        sample = raw if reply.wants_sample else b""
        tracker.judge(Judge(reply.view.id, spam, obs.domains, now, sample))
        if (i + 1) % every == 0:
            rows.append(window_row(tracker, i + 1, now))
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
            else:
                print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--per-second", type=float, default=13.0)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--ttl-s", type=float, default=86400.0)
    parser.add_argument("--max-campaigns", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"load average {psutil.getloadavg()}", flush=True)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
