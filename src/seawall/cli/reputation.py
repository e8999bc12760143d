"""``seawall reputation``: what the store knows of an address and its network."""

from __future__ import annotations

import argparse
import asyncio
import time

import msgspec

from seawall.cli.common import config_from
from seawall.errors import SeawallError


def cmd_reputation(args: argparse.Namespace) -> int:
    from seawall.reputation import Reputation, keys_of
    from seawall.store import open_store
    from seawall.store.history import history_counts

    config = config_from(args)
    if keys_of(args.ip) is None:
        raise SeawallError(f"not an IP address: {args.ip!r}")

    async def read() -> dict[str, object]:
        store = open_store(config)
        try:
            now = time.time()
            own, net = await Reputation(store, config.detectors.reputation).read(args.ip, now)
            window = config.serve.policy.history_window_s
            spam, ham = await history_counts(store, args.ip, now=now, window_s=window)
        finally:
            await store.close()
        out: dict[str, object] = {}
        for label, record in (("ip", own), ("network", net)):
            out[label] = (
                None
                if record is None
                else {
                    "key": record.key,
                    "spam": round(record.spam, 2),
                    "ham": round(record.ham, 2),
                    "volume": round(record.volume, 2),
                    "spam_share": round(record.spam_share, 3),
                    "first_seen": _iso(record.first),
                    "last_seen": _iso(record.last),
                }
            )
        out["policy_window"] = {"seconds": window, "spam": spam, "ham": ham}
        return out

    found = asyncio.run(read())
    if args.json:
        print(msgspec.json.encode({"query": args.ip, **found}).decode())
        return 0
    half = config.detectors.reputation.half_life_s / 3600
    print(f"{args.ip}  (counts decayed to now; half-life {half:g} h)")
    for label in ("ip", "network"):
        record = found[label]
        if not isinstance(record, dict):
            print(f"  {label:8} no recent history")
            continue
        print(
            f"  {label:8} {record['key']:20} spam {record['spam']:>8}  ham {record['ham']:>8}"
            f"  volume {record['volume']:>8}  spam share {record['spam_share']:.0%}"
            f"  seen {record['first_seen']} .. {record['last_seen']}"
        )
    policy = found["policy_window"]
    assert isinstance(policy, dict)
    print(f"  policy   last {policy['seconds']:g} s: {policy['spam']} spam, {policy['ham']} ham")
    return 0


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
