"""``seawall campaigns``: list the tracked campaigns, or mark one spam or ham."""

from __future__ import annotations

import argparse
import asyncio
import sys

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
    if args.rest:
        raise SeawallError("usage: seawall campaigns [--json] | seawall campaigns mark ID spam|ham")
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
