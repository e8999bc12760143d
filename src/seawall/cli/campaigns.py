"""``seawall campaigns``: list the tracked campaigns, show one, or mark one spam or ham."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import msgspec

from seawall.cli.common import config_from
from seawall.config import Config
from seawall.errors import SeawallError


def cmd_campaigns(args: argparse.Namespace) -> int:
    """The live tracker's campaigns when ``seawall serve`` runs on this state dir, else the
    saved ones (a mark is then saved for the next start)."""
    from seawall.serve import tracker as campaign_tracker

    config = config_from(args)
    if args.action == "mark":
        if len(args.rest) != 2 or args.rest[1] not in ("spam", "ham"):
            raise SeawallError("usage: seawall campaigns mark ID spam|ham")
        cid, label = args.rest
        with campaign_tracker.connect(config) as tracker:
            sample = asyncio.run(tracker.mark(cid, label))
        if sample is None:
            raise SeawallError(f"no campaign {cid}")
        if not sample:  # its first copy's verdict has not come back yet
            print(f"{cid} marked {label}; no sample message to learn yet")
            return 0
        learned = _learn_sample(config, sample, label == "spam")
        print(f"{cid} marked {label}; its sample message {'learned' if learned else 'was known'}")
        return 0
    if args.action == "show":
        if len(args.rest) != 1:
            raise SeawallError("usage: seawall campaigns show ID [--json] [--max-ips N]")
        return _show(config, args.rest[0], json=args.json, max_ips=args.max_ips)
    if args.rest:
        raise SeawallError(
            "usage: seawall campaigns [--json] | seawall campaigns show ID"
            " | seawall campaigns mark ID spam|ham"
        )
    with campaign_tracker.connect(config) as tracker:
        listing = asyncio.run(tracker.listing(args.min_count))
    if args.json:
        for item in listing:
            sys.stdout.buffer.write(msgspec.json.encode(item) + b"\n")
        return 0
    print(
        f"{'campaign':<20} {'count':>7} {'/hour':>6} {'IPs':>5} {'/16s':>5} {'dyn':>4} "
        f"{'spam':>9} subject"
    )
    for item in listing:
        subjects: dict[str, int] = item["subjects"]
        subject = next(iter(subjects), "")
        judged = f"{item['spam']}/{int(item['spam']) + int(item['ham'])}"
        mark = item["mark"] or ("spam" if item["confirmed_spam"] else "")
        print(
            f"{item['id']:<20} {item['count']:>7} {item['per_hour']:>6} {item['ips']:>5} "
            f"{item['nets16']:>5} {float(item['dynamic_share']):>4.0%} {judged:>9} "
            f"{mark:<4} {subject[:50]}"
        )
    return 0


def _show(config: Config, cid: str, *, json: bool, max_ips: int) -> int:
    """One campaign: its counts, times, judgement, subjects, domains and source addresses,
    those in your own networks ([isp] networks) apart, marked when in a dynamic pool."""
    from seawall.addresses import IspNetworks
    from seawall.cli.cases import campaign_zombie_lines, campaign_zombies
    from seawall.serve import tracker as campaign_tracker

    with campaign_tracker.connect(config) as tracker:
        item = asyncio.run(tracker.show(cid, max_ips))
    if item is None:
        raise SeawallError(f"no campaign {cid}")
    zombies = campaign_zombies(config, cid)
    if json:
        sys.stdout.buffer.write(msgspec.json.encode({**item, "zombies": zombies}) + b"\n")
        return 0
    pools = IspNetworks.of(config.isp).dynamic
    merged = f" (merged into {item['merged_into']})" if "merged_into" in item else ""
    judged = int(item["spam"]) + int(item["ham"])
    if item["mark"]:
        verdict = f"marked {item['mark']} by an admin"
    else:
        verdict = "confirmed spam" if item["confirmed_spam"] else "not confirmed spam"
    count = int(item["count"])
    lines = [
        f"campaign {cid}{merged}",
        f"  copies       {count}, {item['per_hour']} in the last hour"
        f" (peak {item['peak_per_hour']}/h, {item['peak_per_minute']}/min)",
        f"  seen         {_iso(item['first_seen'])} .. {_iso(item['last_seen'])}",
        f"  judged       {item['spam']} spam of {judged} by content; {verdict}",
        f"  sources      {item['ips']} addresses{'' if item['ips_complete'] else ' (at least)'}"
        f" in {item['nets24']} /24s and {item['nets16']} /16s;"
        f" {float(item['dynamic_share']):.0%} of copies from dynamic sources,"
        f" {float(item['own_share']):.0%} from your own networks",
    ]
    if int(item.get("auth_checked", 0)):
        lines.append(
            f"  senders      {float(item['forged_share']):.0%} of {item['auth_checked']} copies"
            f" checked fail SPF or DMARC for the domain they claim, from"
            f" {item['forged_nets24']} /24s"
        )
    for title, counts in (("subjects", item["subjects"]), ("domains", item["top_domains"])):
        lines.append(f"  {title}")
        lines += [f"    {n:>6}  {key}" for key, n in counts.items()] or ["    -"]
    own: list[str] = item["own_addresses"]
    lines.append(
        f"  own addresses ({item['own_ips']}, in [isp] networks){_cut(own, item['own_ips'])}"
    )
    lines += [f"    {ip:<40} {'dynamic pool' if pools.contains(ip) else ''}".rstrip() for ip in own]
    lines += campaign_zombie_lines(zombies)
    sources: list[str] = item["source_addresses"]
    lines.append(f"  source addresses ({item['ips']}){_cut(sources, item['ips'])}")
    lines += [f"    {ip}" for ip in sources]
    print("\n".join(lines))
    return 0


def _cut(shown: list[str], total: int) -> str:
    return f": the first {len(shown)} by address" if len(shown) < total else ""


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _learn_sample(config: Config, raw: bytes, spam: bool) -> bool:
    from seawall.classifier import Classifier
    from seawall.message import Envelope, ParseLimits, parse_message

    classifier = Classifier.from_config(config)
    try:
        return classifier.learn(
            parse_message(raw, Envelope(), ParseLimits.from_config(config)), spam
        )
    finally:
        classifier.close()
