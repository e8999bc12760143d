"""``seawall dnsbl test``: one line per configured DNS list, from the checks in dnslists.check."""

from __future__ import annotations

import argparse
import asyncio

from seawall.cli.common import config_from


def cmd_dnsbl_test(args: argparse.Namespace) -> int:
    """Print one line per configured list; exit 1 when any list is unhealthy."""
    from seawall.dnslists.check import check_lists
    from seawall.dnslists.nameservers import system_nameservers

    config = config_from(args, state=False)  # the lists only: no state is opened
    settings = config.detectors.dnsbl
    servers = settings.nameservers or tuple(f"{h}:{p}" for h, p in system_nameservers())
    state = "enabled" if settings.enabled else "disabled ([detectors.dnsbl] enabled = false)"
    print(f"dnsbl: {state}; asking {', '.join(servers)}")
    results = asyncio.run(check_lists(settings))
    width = max((len(r.name) for r in results), default=4)
    zones = max((len(r.zone) for r in results), default=4)
    for r in results:
        verdict = "healthy" if r.healthy else f"UNHEALTHY: {r.problem}"
        answers = f"{r.entries[0]} -> {r.listed}, {r.entries[1]} -> {r.unlisted}"
        family = f"{r.family} " if r.family else ""
        print(f"{r.name:<{width}}  {r.zone:<{zones}}  {family}{verdict}  ({answers})")
        if r.note:
            print(f"{'':<{width}}  note: {r.note}")
    names = {r.name for r in results}
    bad = {r.name for r in results if not r.healthy}
    print(f"{len(names) - len(bad)} of {len(names)} lists healthy")
    return 1 if bad else 0
