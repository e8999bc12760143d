"""``seawall accounting import FILE... | who IP [--at TIME] | history IP``: RADIUS accounting
in the state that ``seawall serve`` reads (seawall.accounting)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seawall.accounting import Record, Session, open_sessions
from seawall.accounting.detail import DetailParser, Problem
from seawall.cli.common import config_from
from seawall.errors import SeawallError

BATCH = 2000  # records stored in one call
SHOWN_PROBLEMS = 20  # problems printed one by one; the rest are counted


def add_accounting_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    acct = sub.add_parser("accounting", help="RADIUS accounting: who held an address when")
    acct_sub = acct.add_subparsers(dest="accounting_command", required=True)
    imp = acct_sub.add_parser(
        "import",
        parents=[common],
        help="read FreeRADIUS detail files into the state (again changes nothing)",
    )
    imp.add_argument("files", nargs="+", metavar="FILE", help="detail file, or .gz; - is stdin")
    imp.set_defaults(func=cmd_import)
    who = acct_sub.add_parser("who", parents=[common], help="the account that held IP at TIME")
    who.add_argument("ip", metavar="IP")
    who.add_argument("--at", metavar="TIME", help="epoch seconds or ISO 8601 (default: now)")
    who.add_argument("--json", action="store_true", help="one JSON object")
    who.set_defaults(func=cmd_who)
    hist = acct_sub.add_parser("history", parents=[common], help="the sessions of IP")
    hist.add_argument("ip", metavar="IP")
    hist.add_argument("--since", metavar="TIME", help="epoch seconds or ISO 8601 (default: 0)")
    hist.add_argument("--until", metavar="TIME", help="epoch seconds or ISO 8601 (default: now)")
    hist.add_argument("--json", action="store_true", help="one JSON object a line")
    hist.set_defaults(func=cmd_history)


def parse_time(text: str) -> float:
    """Epoch seconds, or an ISO 8601 time (UTC unless it names its offset)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SeawallError(f"{text!r}: not epoch seconds nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _chunks(name: str) -> Iterator[bytes]:
    if name == "-":
        yield from iter(lambda: sys.stdin.buffer.read(1 << 20), b"")
        return
    try:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(name, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")
    except (OSError, EOFError) as exc:
        raise SeawallError(f"{name}: {exc}") from None


def cmd_import(args: argparse.Namespace) -> int:
    config = config_from(args)
    for name in args.files:
        if name != "-" and not Path(name).is_file():
            raise SeawallError(f"{name}: no such file")

    async def run() -> tuple[int, int, int, list[Problem]]:
        sessions = open_sessions(config, timeout_s=5.0)
        records = changed = skipped = 0
        problems: list[Problem] = []
        try:
            for name in args.files:
                parser = DetailParser(name)
                batch: list[Record] = []
                for chunk in [*_chunks(name), None]:
                    items = parser.feed(chunk) if chunk is not None else parser.end()
                    for item in items:
                        if isinstance(item, Problem):
                            problems.append(item)
                        else:
                            batch.append(item)
                    if len(batch) >= BATCH or chunk is None:
                        changed += await sessions.add(batch)
                        records += len(batch)
                        batch = []
                skipped += parser.skipped
        finally:
            await sessions.close()
        return records, changed, skipped, problems

    started = time.perf_counter()
    records, changed, skipped, problems = asyncio.run(run())
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"seawall: skipped a record: {problem}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"seawall: ... and {len(problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(
        f"imported {records} records ({changed} sessions new or changed) from {len(args.files)}"
        f" files in {elapsed:.1f} s; {skipped} not about addresses, {len(problems)} unreadable"
    )
    return 1 if problems else 0


def _row(session: Session) -> dict[str, Any]:
    return {
        "account": session.account,
        "ip": session.ip,
        "start": session.start,
        "stop": session.stop,
        "nas": session.nas,
        "session_id": session.session_id,
    }


def _iso(t: float | None) -> str:
    if t is None:
        return "open"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(session: Session) -> str:
    return (
        f"{session.account}\t{session.ip}\t{_iso(session.start)}\t{_iso(session.stop)}"
        f"\t{session.nas}\t{session.session_id}"
    )


def cmd_who(args: argparse.Namespace) -> int:
    config = config_from(args)
    at = parse_time(args.at) if args.at else time.time()

    async def run() -> Session | None:
        sessions = open_sessions(config, timeout_s=5.0)
        try:
            return await sessions.who(args.ip, at)
        finally:
            await sessions.close()

    try:
        session = asyncio.run(run())
    except ValueError as exc:
        raise SeawallError(str(exc)) from None
    if args.json:
        print(json.dumps({"ip": args.ip, "at": at, "session": session and _row(session)}))
    elif session is None:
        print(f"no session held {args.ip} at {_iso(at)}", file=sys.stderr)
    else:
        print(_line(session))
    return 0 if session is not None else 1


def cmd_history(args: argparse.Namespace) -> int:
    config = config_from(args)
    since = parse_time(args.since) if args.since else 0.0
    until = parse_time(args.until) if args.until else time.time()

    async def run() -> list[Session]:
        sessions = open_sessions(config, timeout_s=5.0)
        try:
            return await sessions.history(args.ip, since, until)
        finally:
            await sessions.close()

    try:
        found = asyncio.run(run())
    except ValueError as exc:
        raise SeawallError(str(exc)) from None
    for session in found:
        print(json.dumps(_row(session)) if args.json else _line(session))
    return 0
