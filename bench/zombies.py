"""Issue figures for finding the own zombies, on ``seawall simulate`` worlds (3 seeds).

    .venv/bin/python -m bench.zombies [--seeds 7,11,23] [--hours 1] [--live [--speed 12]]

(``--live``: the same figures through SMTP, Postfix and ``seawall serve`` with the
accounting tailed live; see bench/zombies_live.py.)

For each seed the simulated traffic is scanned in arrival order by one in-process Engine
whose clock is the simulated one (as bench/wave.py does); each verdict becomes evidence as
``seawall serve`` makes it (``zombies.evidence.from_verdict`` at the message's simulated
time), and the evidence goes through the Desk (attribution by the accounting, the case
rules, the case store in a state of its own) in arrival order.  The RADIUS accounting of
the world is imported into that state first (the detail file ``seawall simulate --radius``
writes).  Then, against the truth:

- found: the share of infected own accounts that sent spam or worms and have a case, and
  that got it within 10 simulated minutes of their first spam or worm reaching Seawall;
  the median and 90th percentile of that time;
- falsely accused: clean accounts with a case, over all clean accounts, and over those
  that sent mail straight to the MX (business statics, direct senders) or held an address a
  zombie held earlier within the hour;
- attribution: the share of own evidence whose account is the one that truly sent it;
- volumes: cases opened per simulated hour, evidence per case.

This in-process run goes through neither SMTP nor a live tail of the accounting; ``--live``
does both (bench/zombies_live.py: ``seawall simulate`` writes the detail file live in the
replay's wall time, which ``seawall serve`` follows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from seawall.accounting import open_sessions
from seawall.accounting.detail import DetailParser, Problem
from seawall.config import load_config
from seawall.engine import build_engine
from seawall.sim import SimSettings, simulate
from seawall.sim.radius import radius_detail
from seawall.sim.world import build_world
from seawall.zombies.cases import Accounts, Desk
from seawall.zombies.evidence import Scope, from_verdict
from seawall.zombies.model import Evidence
from seawall.zombies.store import open_case_store

ISP = (
    "[trusted]\nprivate_is_trusted = false\n"
    '[isp]\nnetworks = ["198.18.0.0/15"]\n'
    'dynamic = ["198.18.0.0/16", "198.19.0.0/17"]\n'
    'relays = ["198.19.255.0/28"]\n'
)
WINDOW_S = 600.0
# Clean customers' mail straight to the MX, an hour (dial-up, DSL and business servers).
DIRECT_PER_HOUR = 60


def write_config(state: Path) -> Path:
    path = state / "seawall.toml"
    path.write_text(f'state_dir = "{state}"\n' + ISP)
    return path


async def import_accounting(config: Any, text: str) -> int:
    sessions = open_sessions(config)
    parser = DetailParser("sim")
    records = [r for r in parser.feed(text.encode()) + parser.end() if not isinstance(r, Problem)]
    try:
        for i in range(0, len(records), 5000):
            await sessions.add(records[i : i + 5000])
    finally:
        await sessions.close()
    return len(records)


def run_seed(seed: int, hours: float, state: Path) -> dict[str, Any]:
    settings = SimSettings(seed=seed, hours=hours, direct_per_hour=DIRECT_PER_HOUR)
    world = build_world(settings)
    config = load_config(write_config(state))
    records = asyncio.run(import_accounting(config, radius_detail(world)))
    engine = build_engine(config)
    scope = Scope(config)
    pending: list[tuple[Evidence, Any]] = []
    first_bad: dict[str, float] = {}
    senders: dict[str, set[str]] = defaultdict(set)  # account -> how it sent: direct, relay
    started = time.perf_counter()
    messages = 0
    try:
        for sim in simulate(settings, world):
            messages += 1
            truth = sim.truth
            verdict = engine.scan_sync(sim.envelope, sim.raw, now=sim.at).verdict
            if truth.account:
                relay = scope.exempted(truth.ip)
                senders[truth.account].add("relay" if relay else "direct")
                if truth.infected and truth.kind in ("spam", "worm"):
                    first_bad.setdefault(truth.account, sim.at)
            evidence = from_verdict(scope, config.zombies, sim.envelope, verdict, sim.raw, sim.at)
            if evidence is not None and evidence.own:
                pending.append((evidence, truth))
    finally:
        engine.close()
    scan_s = time.perf_counter() - started
    result = asyncio.run(ingest(config, pending, world))
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for evidence, truth in pending:
        if truth.account:
            kinds[truth.account][evidence.kind] += 1
    missed = [a for a in first_bad if a not in result["opened"]]
    row = summarise(seed, hours, world, result, first_bad, senders)
    row["missed_samples"] = {a: dict(kinds[a]) for a in missed[:5]}
    return row | {
        "messages": messages,
        "evidence": len(pending),
        "accounting_records": records,
        "scan_s": round(scan_s, 1),
    }


async def ingest(config: Any, pending: list[tuple[Evidence, Any]], world: Any) -> dict[str, Any]:
    holders: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for session in world.sessions:
        holders[session.ip].append((session.start, session.stop, session.account))

    def shared(ip: str, at: float) -> bool:
        """Whether another account held ``ip`` within the hour around ``at``."""
        near = {a for start, stop, a in holders.get(ip, ()) if start - 3600 <= at <= stop + 3600}
        return len(near) > 1

    reuse_total = reuse_right = 0
    store = open_case_store(config)
    accounts = Accounts(config)
    desk = Desk(store, who=accounts.who)
    opened: dict[str, float] = {}  # subject -> simulated time of the evidence that opened it
    right = wrong = 0
    wrong_samples: list[str] = []
    started = time.perf_counter()
    try:
        for evidence, truth in pending:
            attributed = await desk.attribute(evidence)
            if shared(evidence.ip, evidence.at):
                reuse_total += 1
                reuse_right += attributed.account == truth.account
            if attributed.account == truth.account:
                right += 1
            else:
                wrong += 1
                if len(wrong_samples) < 5:
                    wrong_samples.append(f"{evidence.ip}: {attributed.account} != {truth.account}")
            got = await desk.store.add_evidence(attributed)
            if got.moved is not None and got.moved.from_state is None and got.case is not None:
                opened.setdefault(got.case.subject, evidence.at)
        cases = await store.list()
    finally:
        await store.close()
        await accounts.close()
    return {
        "opened": opened,
        "cases": cases,
        "right": right,
        "wrong": wrong,
        "wrong_samples": wrong_samples,
        "reuse_total": reuse_total,
        "reuse_right": reuse_right,
        "ingest_s": time.perf_counter() - started,
    }


def reused_after_zombies(world: Any) -> set[str]:
    """Clean accounts given an address within an hour after an infected one held it."""
    infected = {a.name for a in world.accounts if a.infected}
    by_ip: dict[str, list[Any]] = defaultdict(list)
    for session in world.sessions:
        by_ip[session.ip].append(session)
    out: set[str] = set()
    for sessions in by_ip.values():
        bad_stops = [s.stop for s in sessions if s.account in infected]
        for s in sessions:
            if s.account not in infected and any(0 <= s.start - t <= 3600 for t in bad_stops):
                out.add(s.account)
    return out


def summarise(
    seed: int,
    hours: float,
    world: Any,
    result: dict[str, Any],
    first_bad: dict[str, float],
    senders: dict[str, set[str]],
) -> dict[str, Any]:
    infected = {a.name for a in world.accounts if a.infected}
    clean = {a.name for a in world.accounts if not a.infected}
    business = {a.name for a in world.accounts if a.pool == "business"}
    case_subjects = {c.subject for c in result["cases"]}
    opened: dict[str, float] = result["opened"]
    active = [a for a in infected if a in first_bad]
    delays = sorted(opened[a] - first_bad[a] for a in active if a in opened)
    in_window = sum(1 for d in delays if d <= WINDOW_S)
    accused = sorted(case_subjects & clean)
    reused = reused_after_zombies(world)
    direct_clean = {a for a, how in senders.items() if "direct" in how} & clean
    relay_clean = {a for a, how in senders.items() if "relay" in how} & clean

    def share(part: int, whole: int) -> float:
        return round(part / whole, 4) if whole else 0.0

    return {
        "seed": seed,
        "hours": hours,
        "infected_accounts": len(infected),
        "infected_sending": len(active),
        "found": len([a for a in active if a in opened]),
        "found_within_10min": in_window,
        "found_share": share(in_window, len(active)),
        "median_time_to_case_s": round(statistics.median(delays), 1) if delays else None,
        "p90_time_to_case_s": round(delays[int(0.9 * (len(delays) - 1))], 1) if delays else None,
        "clean_accounts": len(clean),
        "falsely_accused": len(accused),
        "falsely_accused_share": share(len(accused), len(clean)),
        "accused_samples": accused[:5],
        "clean_direct_senders": len(direct_clean),
        "clean_relay_senders": len(relay_clean),
        "clean_business": len(business & clean),
        "clean_after_a_zombie_on_their_address": len(reused),
        "accused_among_those": len(set(accused) & (direct_clean | relay_clean | reused)),
        "attribution_right": result["right"],
        "attribution_wrong": result["wrong"],
        "attribution_share": share(result["right"], result["right"] + result["wrong"]),
        "wrong_samples": result["wrong_samples"],
        "evidence_on_reused_addresses": result["reuse_total"],
        "attributed_right_on_reused": result["reuse_right"],
        "cases": len(result["cases"]),
        "cases_per_hour": round(len(result["cases"]) / hours, 1),
        "evidence_per_case": round(statistics.mean(c.evidence_count for c in result["cases"]), 1)
        if result["cases"]
        else 0.0,
        "ingest_s": round(result["ingest_s"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--out", help="also write the rows as JSON lines here")
    parser.add_argument(
        "--live",
        action="store_true",
        help="replay through Postfix and seawall serve, the accounting tailed live"
        " (bench/zombies_live.py)",
    )
    parser.add_argument("--speed", type=float, default=12.0, help="with --live (default: 12)")
    args = parser.parse_args(argv)
    if args.live:
        from bench import zombies_live

        seeds = [int(s) for s in args.seeds.split(",")]
        return zombies_live.main(seeds, args.hours, args.speed, args.out)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-zombies-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            state = Path(tmp) / f"state-{seed}"
            state.mkdir()
            row = run_seed(seed, args.hours, state)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = sum(r["found_within_10min"] for r in rows)
    sending = sum(r["infected_sending"] for r in rows)
    accused = sum(r["falsely_accused"] for r in rows)
    clean = sum(r["clean_accounts"] for r in rows)
    right = sum(r["attribution_right"] for r in rows)
    total = right + sum(r["attribution_wrong"] for r in rows)
    print(
        f"found within 10 min: {found}/{sending} ({found / max(1, sending):.2%}); "
        f"falsely accused: {accused}/{clean} ({accused / max(1, clean):.3%}); "
        f"attribution: {right}/{total} ({right / max(1, total):.3%})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
