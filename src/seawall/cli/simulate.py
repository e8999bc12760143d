"""``seawall simulate``: a seeded botnet spam run, written to files or sent to a server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DESCRIPTION = """\
A seeded spam run in a simulated ISP: dial-up and DSL pools whose addresses pass from one
subscriber to another, business statics, the ISP's relays, subscribers some of them
infected, zombies abroad, other organisations' mail servers and an ESP. Campaigns of
mutated copies ramp up to --peak-per-hour, beside ham, worm mail and newsletters. The same
seed gives the same run, byte for byte.

Without --out or --to it only counts what it would send. docs/campaigns.md ("The
simulator") has the address plan."""

EPILOG = """\
address plan (RFC 2544 and RFC 5737 ranges; [isp] for a Seawall that plays the ISP):
  198.18.0.0/16      dial-up pool, ppp-198-18-3-7.dialup.example.net
  198.19.0.0/17      DSL pool, dsl-198-19-5-9.dsl.example.net
  198.19.128.0/24    business statics, static-198-19-128-4.biz.example.net
  198.19.255.0/28    the ISP's relays (relay1, relay2.example.net)
  198.19.255.33,49,50  RADIUS NAS (in --radius)
  192.0.2.0/24, 198.51.100.0/24  other organisations' mail servers (ham)
  203.0.113.10-12    the ESP (newsletters), mtaN.esp.example.com
  elsewhere          zombies abroad, many /16s, a fifth without reverse DNS
  [isp] networks = ["198.18.0.0/15"], dynamic = ["198.18.0.0/16", "198.19.0.0/17"],
  relays = ["198.19.255.0/28"]

examples:
  seawall simulate --out /tmp/wave --truth /tmp/wave/truth.jsonl
  seawall simulate --to smtp://127.0.0.1:2525 --speed 12 --truth truth.jsonl
  seawall simulate --to http://127.0.0.1:7380 --truth truth.jsonl"""


def add_simulate_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``simulate`` subcommand: every option with what it does and its default."""
    from seawall.sim.model import SimSettings
    from seawall.sim.replay import RETRY_AFTER_S

    d = SimSettings()
    sim: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        parents=[common],
        help="a seeded botnet spam run",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    world = sim.add_argument_group("the run")
    world.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="draws the world and every message; the same seed, the same run"
        " (default: %(default)s)",
    )
    world.add_argument(
        "--campaigns",
        type=int,
        default=d.campaigns,
        help="concurrent spam campaigns, each with its template, ramp and link domains"
        " (default: %(default)s)",
    )
    world.add_argument(
        "--zombies",
        type=int,
        default=d.zombies,
        help="infected machines, 1 to 10000: about 30%% of them subscribers in the ISP's own"
        " dynamic pools, the rest abroad (default: %(default)s)",
    )
    world.add_argument(
        "--hours",
        type=float,
        default=d.hours,
        help="simulated length of the run, up to 48 (default: %(default)s)",
    )
    world.add_argument(
        "--peak-per-hour",
        type=int,
        default=d.peak_per_hour,
        help="the plateau rate of the first campaign, messages an hour; each other one"
        " peaks at half of it to all of it (default: %(default)s)",
    )
    world.add_argument(
        "--ham-per-hour",
        type=int,
        default=d.ham_per_hour,
        help="person-to-person mail an hour, from other organisations' servers and through"
        " the ISP's relays (default: %(default)s)",
    )
    world.add_argument(
        "--direct-per-hour",
        type=int,
        default=d.direct_per_hour,
        help="legitimate mail an hour that clean dial-up and DSL customers send from their"
        " own address straight to the MX, a few messages each (default: %(default)s)",
    )
    world.add_argument(
        "--newsletters",
        type=int,
        default=d.newsletters,
        help="bulk mailings sent by the ESP (default: %(default)s)",
    )
    world.add_argument(
        "--worm-share",
        type=float,
        default=d.worm_share,
        help="worm copies (Netsky, Sober, MyDoom) per spam copy, 0 to 1, sent by the same"
        " bots (default: %(default)s)",
    )
    world.add_argument(
        "--forge-sender",
        action="store_true",
        help="the biggest campaign forges a newsletter brand that signs with DKIM and"
        " publishes DMARC p=reject; write its DNS with --dns-records (default: off)",
    )
    where = sim.add_argument_group("where it goes")
    target = where.add_mutually_exclusive_group()
    target.add_argument(
        "--out",
        metavar="DIR",
        help="write each message as DIR/N.eml and its envelope as a line of"
        " DIR/envelopes.jsonl (default: none)",
    )
    target.add_argument(
        "--to",
        metavar="URL",
        help="send each message in compressed real time: smtp://host:port as the bot or"
        " server it came from (XCLIENT when the MTA offers it), or http://host:port to"
        " /checkv2; deferred messages are retried as a queue would (default: none)",
    )
    where.add_argument(
        "--speed",
        type=float,
        default=d.speed,
        help="with --to: simulated seconds per real second; a deferred message is retried"
        f" after {', '.join(f'{s / 60:g}' for s in RETRY_AFTER_S)} simulated minutes"
        " (default: %(default)s)",
    )
    where.add_argument(
        "--workers",
        type=int,
        default=8,
        help="with --to: messages sent at once (default: %(default)s)",
    )
    where.add_argument(
        "--truth",
        metavar="FILE",
        help="the ground truth as JSON lines: each message's kind, campaign, sender IP,"
        " account, whether the sender was infected, and with --to its outcome (default: none)",
    )
    where.add_argument(
        "--radius",
        metavar="FILE",
        help="a FreeRADIUS detail file of the dial-in sessions: who had which address when;"
        " with --to written live, each record when due, stamped in replay wall time"
        " (default: none)",
    )
    where.add_argument(
        "--dns-records",
        metavar="FILE",
        help="the world's SPF, DKIM and DMARC records as JSON (name: [TXT, ...]), for an"
        " authoritative DNS server beside the replay (default: none)",
    )
    sim.set_defaults(func=cmd_simulate)
    return sim


def cmd_simulate(args: argparse.Namespace) -> int:
    from seawall.sim.model import SimSettings
    from seawall.sim.output import default_progress, run

    settings = SimSettings(
        seed=args.seed,
        campaigns=args.campaigns,
        zombies=args.zombies,
        hours=args.hours,
        peak_per_hour=args.peak_per_hour,
        ham_per_hour=args.ham_per_hour,
        direct_per_hour=args.direct_per_hour,
        newsletters=args.newsletters,
        worm_share=args.worm_share,
        speed=args.speed,
        forge_sender=args.forge_sender,
    )
    if args.dns_records:
        from seawall.sim.authn import dns_records
        from seawall.sim.newsletter import brands
        from seawall.sim.world import build_world

        records = dns_records(build_world(settings), brands(settings.newsletters))
        Path(args.dns_records).write_text(json.dumps(records, indent=1) + "\n")
    report = run(
        settings,
        out=args.out,
        to=args.to,
        truth=args.truth,
        radius=args.radius,
        workers=args.workers,
        progress=default_progress(),
    )
    print("\n".join(report.lines()))
    return 0
