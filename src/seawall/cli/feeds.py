"""``seawall feeds import FILE...``: report CSVs in the Shadowserver layout (drone,
sinkhole, spam source) as evidence in the state that ``seawall serve`` uses
(seawall.zombies.feeds).  Files are read, nothing is fetched; a row imported again counts
once."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from seawall.cli.abuse import report
from seawall.cli.common import config_from
from seawall.errors import SeawallError
from seawall.zombies.cases import open_desk
from seawall.zombies.engine import CaseEngine, Imported
from seawall.zombies.feeds import FEED_KINDS


def add_feeds_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    feeds = sub.add_parser("feeds", help="report feeds in the Shadowserver CSV layout")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True)
    imp = feeds_sub.add_parser("import", parents=[common], help="read CSV files as evidence")
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument(
        "--kind",
        choices=FEED_KINDS,
        help="what the rows report (default: from each file's name, else drone)",
    )
    imp.add_argument("--json", action="store_true", help="print the counts as JSON")
    imp.set_defaults(func=cmd_feeds_import)


def cmd_feeds_import(args: argparse.Namespace) -> int:
    config = config_from(args)
    paths = [Path(name) for name in args.files]
    for path in paths:
        if not path.is_file():
            raise SeawallError(f"{path}: no such file")

    async def main() -> Imported:
        desk, accounts = open_desk(config)
        total = Imported()
        try:
            engine = CaseEngine(config, desk)
            for path in paths:
                done = await engine.import_feed(path, args.kind)
                total.read += done.read
                total.new += done.new
                total.duplicate += done.duplicate
                total.external += done.external
                total.opened += done.opened
                total.kinds.update(done.kinds)
                total.problems += [f"{path.name}: {p}" for p in done.problems]
        finally:
            await desk.store.close()
            await accounts.close()
        return total

    report(asyncio.run(main()), args.json)
    return 0
