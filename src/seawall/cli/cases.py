"""``seawall cases list|show|notify|wall|release|close``: the zombie cases in the state that
``seawall serve`` uses (seawall.zombies).

A case is named by its id, its account, or (a static customer) its address.  The moves
record who (the OS user) and why (``--reason``), then run the remedies, whose own note
(``dry-run: ...`` without remedies installed) is printed with the case.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import sys
import time
from typing import Any, get_args

from seawall.cli.common import config_from
from seawall.config import Config
from seawall.errors import SeawallError
from seawall.zombies.cases import Desk, open_desk
from seawall.zombies.model import Case, Evidence, State

MOVES: dict[str, State] = {
    "notify": "notified",
    "wall": "walled",
    "release": "released",
    "close": "closed",
}


def add_cases_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    cases = sub.add_parser("cases", help="the own zombies: cases, their evidence and state")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True)
    listing = cases_sub.add_parser("list", parents=[common], help="the cases, newest first")
    listing.add_argument(
        "--only",
        action="append",
        choices=get_args(State),
        metavar="STATE",
        help="cases in this state (repeat for several): open notified walled released closed",
    )
    listing.add_argument("--account", help="the case of this account")
    listing.add_argument("--ip", help="cases that used this address")
    listing.add_argument("--campaign", help="cases that sent this campaign")
    listing.add_argument("--limit", type=int, help="at most this many")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.set_defaults(func=cmd_cases_list)
    show = cases_sub.add_parser(
        "show", parents=[common], help="one case: its transitions and evidence"
    )
    show.add_argument("case", metavar="CASE", help="case id, account, or address")
    show.add_argument("--evidence", type=int, default=20, help="pieces shown (default 20)")
    show.add_argument("--raw", action="store_true", help="print each report's raw original")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(func=cmd_cases_show)
    for command, state in MOVES.items():
        move = cases_sub.add_parser(
            command, parents=[common], help=f"record the case as {state} (and run its remedy)"
        )
        move.add_argument("case", metavar="CASE", help="case id, account, or address")
        move.add_argument("--reason", required=True, help="why, logged on the case")
        move.add_argument("--json", action="store_true", help="print the case as JSON")
        move.set_defaults(func=cmd_cases_move, case_state=state)


def case_json(case: Case, now: float, half_life_s: float) -> dict[str, Any]:
    """A case as the CLI and the JSON API print it."""
    return {
        "id": case.id,
        "account": case.account,
        "ip": case.ip,
        "ips": list(case.ips),
        "state": case.state,
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
        "score": round(case.score_now(now, half_life_s), 3),
        "evidence_count": case.evidence_count,
        "kinds": dict(sorted(case.kinds.items())),
        "campaigns": list(case.campaigns),
        "first_seen": case.first_seen,
        "last_seen": case.last_seen,
        "clean_count": case.clean_count,
    }


def transitions_json(case: Case) -> list[dict[str, Any]]:
    return [
        {"at": t.at, "from": t.from_state, "to": t.to_state, "who": t.who, "why": t.why}
        for t in case.transitions
    ]


def evidence_json(e: Evidence) -> dict[str, Any]:
    return {
        "id": e.id,
        "source": e.source,
        "kind": e.kind,
        "at": e.at,
        "ip": e.ip,
        "account": e.account,
        "queue_id": e.queue_id,
        "message_id": e.message_id,
        "campaign": e.campaign,
        "symbols": list(e.symbols),
        "subject": e.subject,
        "infection": e.infection,
        "weight": e.weight,
        "raw_ref": e.raw_ref,
    }


async def find_case(desk: Desk, ref: str) -> Case:
    """The case named by id, account or address (an address case, else the account case
    that used it last); SeawallError when there is none."""
    case = (
        await desk.store.get(ref)
        or await desk.store.find(account=ref)
        or await desk.store.find(ip=ref)
    )
    if case is None:  # an account's case that used the address, the newest
        case = next(iter(await desk.store.list(ip=ref, limit=1)), None)
    if case is None:
        raise SeawallError(f"no case {ref!r} (an id, an account or an address)")
    return case


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _run(config: Config, work: Any) -> int:
    async def main() -> int:
        desk, accounts = open_desk(config)
        try:
            result: int = await work(desk)
            return result
        finally:
            await desk.store.close()
            await accounts.close()

    return asyncio.run(main())


def cmd_cases_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    half = config.zombies.half_life_s

    async def work(desk: Desk) -> int:
        cases = await desk.store.list(
            states=args.only or (),
            account=args.account,
            ip=args.ip,
            campaign=args.campaign,
            limit=args.limit,
        )
        now = time.time()
        out = sys.stdout
        if args.json:
            for case in cases:
                out.write(json.dumps(case_json(case, now, half), sort_keys=True) + "\n")
            return 0
        out.write(f"{'CASE':12}  {'STATE':8}  {'SUBJECT':24}  SCORE  EVID  OPENED (UTC)  KINDS\n")
        for c in cases:
            kinds = ",".join(f"{k}:{n}" for k, n in sorted(c.kinds.items()))
            out.write(
                f"{c.id:12}  {c.state:8}  {c.subject[:24]:24}  {c.score_now(now, half):5.1f}"
                f"  {c.evidence_count:4}  {_when(c.opened_at)}  {kinds}\n"
            )
        return 0

    return _run(config, work)


def cmd_cases_show(args: argparse.Namespace) -> int:
    config = config_from(args)
    half = config.zombies.half_life_s

    async def work(desk: Desk) -> int:
        case = await find_case(desk, args.case)
        evidence = await desk.store.evidence(case.id, limit=max(0, args.evidence))
        now = time.time()
        out = sys.stdout
        if args.json:
            body = case_json(case, now, half)
            body["transitions"] = transitions_json(case)
            body["evidence"] = [evidence_json(e) for e in evidence]
            out.write(json.dumps(body, sort_keys=True) + "\n")
            return 0
        out.write(f"case {case.id}: {case.subject} ({case.state})\n")
        out.write(f"  score {case.score_now(now, half):.1f}, {case.evidence_count} pieces of ")
        out.write(f"evidence from {_when(case.first_seen)} to {_when(case.last_seen)}\n")
        out.write(f"  addresses: {', '.join(case.ips)}\n")
        if case.campaigns:
            out.write(f"  campaigns: {', '.join(case.campaigns)}\n")
        out.write("transitions:\n")
        for t in case.transitions:
            out.write(f"  {_when(t.at)}  {t.from_state or '-'} -> {t.to_state}  {t.who}: {t.why}\n")
        out.write(f"evidence (newest {len(evidence)}):\n")
        for e in evidence:
            what = e.infection or e.subject or " ".join(e.symbols[:3])
            out.write(f"  {_when(e.at)}  {e.kind:11} {e.source:7} {e.ip:15} {what[:60]}\n")
            if args.raw and e.raw_ref:
                raw = await desk.store.raw(e.raw_ref)
                if raw is not None:
                    out.write(raw.decode("utf-8", "replace").rstrip("\n") + "\n")
        return 0

    return _run(config, work)


def cmd_cases_move(args: argparse.Namespace) -> int:
    config = config_from(args)
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"

    async def work(desk: Desk) -> int:
        case = await find_case(desk, args.case)
        case = await desk.transition(case.id, args.case_state, who, args.reason)
        if args.json:
            body = case_json(case, time.time(), config.zombies.half_life_s)
            body["transitions"] = transitions_json(case)
            sys.stdout.write(json.dumps(body, sort_keys=True) + "\n")
            return 0
        sys.stdout.write(f"case {case.id} ({case.subject}) is {case.state}\n")
        moved = next(
            i for i in range(len(case.transitions) - 1, -1, -1) if case.transitions[i].who == who
        )
        for t in case.transitions[moved + 1 :]:
            sys.stdout.write(f"  {t.who}: {t.why}\n")
        return 0

    return _run(config, work)


def campaign_zombies(config: Config, campaign: str) -> dict[str, Any]:
    """Who of the ISP's own sent ``campaign`` (accounts, else addresses, with their case)
    and how many external addresses did, from the case store (``seawall campaigns show``)."""

    async def work() -> dict[str, Any]:
        from seawall.zombies.store import open_case_store

        store = open_case_store(config)
        try:
            own, external = await store.campaign_senders(campaign)
            cases = {c.subject: c for c in await store.list(campaign=campaign)}
        finally:
            await store.close()
        return {
            "own": [
                {
                    "subject": s,
                    "case": cases[s].id if s in cases else None,
                    "state": cases[s].state if s in cases else None,
                }
                for s in own
            ],
            "external": external,
        }

    return asyncio.run(work())


def campaign_zombie_lines(found: dict[str, Any]) -> list[str]:
    """The text of :func:`campaign_zombies`."""
    own: list[dict[str, Any]] = found["own"]
    lines = [
        f"  zombies      {len(own)} own accounts or addresses sent it;"
        f" {found['external']} external addresses (botnet, worm or malware mail)"
    ]
    for item in own:
        case = f"case {item['case']} ({item['state']})" if item["case"] else "no case"
        lines.append(f"    {item['subject']:<40} {case}")
    return lines
