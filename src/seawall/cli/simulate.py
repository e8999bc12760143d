"""``seawall simulate``: a seeded botnet spam run, written to files or sent to a server."""

from __future__ import annotations

import argparse


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
        newsletters=args.newsletters,
        worm_share=args.worm_share,
        speed=args.speed,
    )
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
