"""``seawall demo``: a botnet wave through a live ``seawall serve`` (the work is in
seawall.demo), or with ``--offline`` learn and scan a public corpus."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_demo_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``demo`` subcommand: every option with what it does and its default."""
    demo: argparse.ArgumentParser = sub.add_parser(
        "demo",
        parents=[common],
        help="a botnet wave through a live seawall serve, with its dashboard",
        description="Learn the train half of the shared SpamAssassin corpus, start seawall"
        " serve, replay a seeded botnet wave through it (SMTP into a private Postfix when"
        " Postfix is installed and this runs as root, else HTTP), and print the dashboard's"
        " address and a generated login. Runs until Ctrl-C. --state keeps its folder (the"
        " configuration, the state and the logs); without it a temporary one is removed.",
    )
    demo.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after this many seconds of the wave (learning and starting come first)"
        " and exit 0 (default: run until Ctrl-C)",
    )
    demo.add_argument("--workers", type=int, default=0, help="seawall serve's workers (default: 2)")
    demo.add_argument("--seed", type=int, default=7, help="the wave's seed (default: 7)")
    demo.add_argument(
        "--speed",
        type=float,
        default=12.0,
        help="simulated seconds per real second (default: 12: an hour in five minutes)",
    )
    demo.add_argument(
        "--hours", type=float, default=1.0, help="simulated length of the wave (default: 1)"
    )
    demo.add_argument(
        "--transport",
        choices=("auto", "smtp", "http"),
        default="auto",
        help="how the wave reaches Seawall: smtp (a private Postfix), http (/checkv2), or"
        " auto: smtp when it can (default: auto)",
    )
    demo.add_argument(
        "--learn-max",
        type=int,
        default=None,
        help="learn at most this many messages of the train half (default: all of it)",
    )
    demo.add_argument(
        "--offline",
        action="store_true",
        help="instead: learn half of the corpus, scan the other half, explain verdicts",
    )
    demo.set_defaults(func=cmd_demo)
    return demo


def cmd_demo(args: argparse.Namespace) -> int:
    if args.offline:
        from seawall.demo import run_offline_demo

        return run_offline_demo(state=args.state, workers=args.workers or os.cpu_count() or 1)
    from seawall.demo import DemoOptions, run_live_demo

    options = DemoOptions(
        seconds=args.seconds,
        state=args.state,
        workers=args.workers or 2,
        seed=args.seed,
        speed=args.speed,
        hours=args.hours,
        transport=args.transport,
        learn_max=args.learn_max,
    )
    return run_live_demo(options)
