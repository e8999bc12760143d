"""``seawall serve`` and ``seawall config check``: run the daemons, or check what they would run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import msgspec

from seawall.cli.common import config_from
from seawall.config import Config, load_config


def cmd_serve(args: argparse.Namespace) -> int:
    from seawall.serve.supervisor import Supervisor

    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)

    def load() -> Config:
        config = config_from(args)
        if args.workers:
            serve = msgspec.structs.replace(config.serve, workers=args.workers)
            config = msgspec.structs.replace(config, serve=serve)
        return config

    return Supervisor(load).run()


def cmd_config_check(args: argparse.Namespace) -> int:
    from seawall.serve.supervisor import prepare

    config = load_config(Path(args.file), state_dir=args.state)
    prepare(config).close()
    print(f"{args.file}: ok")
    return 0
