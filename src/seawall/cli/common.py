"""What every ``seawall`` command shares: the common arguments and the configuration they name."""

from __future__ import annotations

import argparse
from pathlib import Path

from seawall.config import Config, load_config


def common_arguments() -> argparse.ArgumentParser:
    """The parent parser of the commands: ``--config``, ``--state`` and ``-v``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="a seawall.toml file")
    common.add_argument(
        "--state", metavar="DIR", help="state dir (default: $SEAWALL_STATE, else ./var)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return common


def config_from(args: argparse.Namespace) -> Config:
    """The configuration ``--config`` and ``--state`` name."""
    return load_config(Path(args.config) if args.config else None, state_dir=args.state)
