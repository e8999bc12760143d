"""``seawall demo``: learn and scan a public corpus (the work is in seawall.demo)."""

from __future__ import annotations

import argparse
import os


def cmd_demo(args: argparse.Namespace) -> int:
    from seawall.demo import run_demo

    return run_demo(state=args.state, workers=args.workers or os.cpu_count() or 1)
