"""``seawall abuse import MAILDIR``: ARF and X-ARF reports from other networks, as evidence
in the state that ``seawall serve`` uses (seawall.zombies.reports_in).

Reading the same reports again changes nothing: each incident counts once.  The Maildir is
only read (``seawall serve`` with ``[zombies] abuse_maildir`` also moves what it read from
``new/`` to ``cur/``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from seawall.cli.common import config_from
from seawall.errors import SeawallError
from seawall.zombies.cases import open_desk
from seawall.zombies.engine import CaseEngine, Imported

SHOWN_PROBLEMS = 20


def add_abuse_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    abuse = sub.add_parser("abuse", help="abuse reports from other networks (ARF, X-ARF)")
    abuse_sub = abuse.add_subparsers(dest="abuse_command", required=True)
    imp = abuse_sub.add_parser(
        "import", parents=[common], help="read a Maildir (or folder) of reports as evidence"
    )
    imp.add_argument("maildir", metavar="MAILDIR")
    imp.add_argument("--json", action="store_true", help="print the counts as JSON")
    imp.set_defaults(func=cmd_abuse_import)


def report(done: Imported, as_json: bool) -> None:
    """Print what an import did (counts, then the first problems on stderr)."""
    if as_json:
        body = {
            "read": done.read,
            "new": done.new,
            "duplicate": done.duplicate,
            "external": done.external,
            "opened": done.opened,
            "kinds": dict(done.kinds),
            "skipped": len(done.problems),
        }
        sys.stdout.write(json.dumps(body, sort_keys=True) + "\n")
    else:
        sys.stdout.write(done.summary() + "\n")
    for problem in done.problems[:SHOWN_PROBLEMS]:
        print(f"seawall: skipped {problem}", file=sys.stderr)
    if len(done.problems) > SHOWN_PROBLEMS:
        print(f"seawall: ... and {len(done.problems) - SHOWN_PROBLEMS} more", file=sys.stderr)


def cmd_abuse_import(args: argparse.Namespace) -> int:
    config = config_from(args)
    path = Path(args.maildir)
    if not path.is_dir():
        raise SeawallError(f"{path}: not a folder")

    async def main() -> Imported:
        desk, accounts = open_desk(config)
        try:
            return await CaseEngine(config, desk).import_maildir(path)
        finally:
            await desk.store.close()
            await accounts.close()

    done = asyncio.run(main())
    report(done, args.json)
    return 0
