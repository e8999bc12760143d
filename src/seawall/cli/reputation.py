"""``seawall reputation``: what the store knows of an address and its network, of a network
(a /24, IPv6 /64), or of an authenticated sender domain."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import time
from typing import TYPE_CHECKING

import msgspec

from seawall.addresses import network_of
from seawall.cli.common import config_from
from seawall.errors import SeawallError

if TYPE_CHECKING:
    from seawall.config import Config
    from seawall.reputation import Record


def cmd_reputation(args: argparse.Namespace) -> int:
    from seawall.reputation import Reputation, domain_key, keys_of, network_key
    from seawall.store import open_store
    from seawall.store.history import history_counts

    if "/" in args.ip and keys_of(args.ip.partition("/")[0]) is not None:
        address, _, prefix = args.ip.partition("/")
        if prefix in ("32", "128"):  # one address
            args.ip = address
        elif network_key(args.ip) is None:
            raise SeawallError(
                f"records are kept per address and per /24 (IPv6 /64), not for {args.ip}:"
                f" ask for {network_of(address)} or an address in it"
            )
        else:
            return _network(args, config_from(args))
    if keys_of(args.ip) is None and domain_key(args.ip) is not None:
        return _domain(args, config_from(args))
    config = config_from(args)
    if keys_of(args.ip) is None:
        raise SeawallError(f"not an IP address, a /24 (IPv6 /64) network or a domain: {args.ip!r}")

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
            out[label] = None if record is None else _record(record)
        out["policy_window"] = {"seconds": window, "spam": spam, "ham": ham}
        return out

    found = asyncio.run(read())
    if args.json:
        print(msgspec.json.encode({"query": args.ip, **found}).decode())
        return 0
    half = config.detectors.reputation.half_life_s / 3600
    print(f"{args.ip}  (counts decayed to now; half-life {half:g} h)")
    for label in ("ip", "network"):
        _print(label, found[label])
    policy = found["policy_window"]
    assert isinstance(policy, dict)
    print(f"  policy   last {policy['seconds']:g} s: {policy['spam']} spam, {policy['ham']} ham")
    return 0


def _network(args: argparse.Namespace, config: Config) -> int:
    """The record of one /24 (IPv6 /64), as ``seawall reputation`` shows a network's."""
    from seawall.reputation import Reputation
    from seawall.store import open_store

    network = str(ipaddress.ip_network(args.ip, strict=False))

    async def read() -> Record | None:
        store = open_store(config)
        try:
            return await Reputation(store, config.detectors.reputation).read_network(
                network, time.time()
            )
        finally:
            await store.close()

    record = asyncio.run(read())
    shown = None if record is None else _record(record)
    if args.json:
        print(msgspec.json.encode({"query": args.ip, "network": shown}).decode())
        return 0
    half = config.detectors.reputation.half_life_s / 3600
    print(f"{network}  (counts decayed to now; half-life {half:g} h)")
    _print("network", shown)
    return 0


def _domain(args: argparse.Namespace, config: Config) -> int:
    """The record of an authenticated sender domain (DKIM d=, aligned SPF)."""
    from seawall.reputation import Reputation
    from seawall.store import open_store

    domain = args.ip.strip().lower().rstrip(".")

    async def read() -> Record | None:
        store = open_store(config)
        try:
            return await Reputation(store, config.detectors.reputation).read_domain(
                domain, time.time()
            )
        finally:
            await store.close()

    record = asyncio.run(read())
    shown = None if record is None else _record(record)
    if args.json:
        print(msgspec.json.encode({"query": domain, "domain": shown}).decode())
        return 0
    half = config.detectors.reputation.half_life_s / 3600
    print(f"{domain}  (mail that authenticated as it; counts decayed to now; half-life {half:g} h)")
    _print("domain", shown)
    return 0


def _record(record: Record) -> dict[str, object]:
    return {
        "key": record.key,
        "spam": round(record.spam, 2),
        "ham": round(record.ham, 2),
        "volume": round(record.volume, 2),
        "spam_share": round(record.spam_share, 3),
        "first_seen": _iso(record.first),
        "last_seen": _iso(record.last),
    }


def _print(label: str, record: object) -> None:
    if not isinstance(record, dict):
        print(f"  {label:8} no recent history")
        return
    print(
        f"  {label:8} {record['key']:20} spam {record['spam']:>8}  ham {record['ham']:>8}"
        f"  volume {record['volume']:>8}  spam share {record['spam_share']:.0%}"
        f"  seen {record['first_seen']} .. {record['last_seen']}"
    )


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
