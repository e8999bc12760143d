"""Issue 11's case figures the real way: a live replay through Postfix and ``seawall serve``.

    .venv/bin/python -m bench.zombies --live [--seeds 7,11,23] [--hours 1] [--speed 12]

For each seed: ``seawall serve`` (2 workers, its desk process, [accounting] following a
detail file), a Postfix whose smtpd_milters is Seawall, and a sink behind it, all on
loopback.  ``seawall simulate --to smtp://POSTFIX --radius FILE --truth FILE`` replays the
run in compressed time (XCLIENT gives each message its simulated client address) and
writes the RADIUS detail records live, each when due and stamped in the replay's wall time,
as a NAS's FreeRADIUS would.  Seawall attributes its evidence with what it tailed by then.

Time is compressed for Seawall too: the greylist delay and the cases' half-life are the
defaults divided by the speed, so both mean in simulated time what they mean in real time.

Then, against the truth lines (each with the wall time it was due, ``wall_at``) and the
cases Seawall's store holds (the store `seawall cases list` reads):

- found: infected own accounts that sent spam or worms, with a case on their account,
  within 10 simulated minutes of their first spam or worm reaching Seawall (the case's
  ``opened_at`` against that message's wall time, times the speed); median and p90;
- falsely accused: clean accounts with a case (on the account, or on an address only they
  sent from), over all clean accounts, and among those that sent through the relay,
  sent a few legitimate messages straight to the MX from a dynamic address, run a
  business mail server on a static address, or were given an address a zombie held
  earlier that hour;
- attribution: each own evidence record of every case, by its Message-ID, against the
  account that truly sent the message; cases on an address with no account;
- volumes: cases per simulated hour, evidence per case.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from tests.integration.postfix import Postfix, free_port
from tests.integration.seawall_proc import Seawall

from bench.zombies import DIRECT_PER_HOUR, ISP, WINDOW_S, reused_after_zombies
from seawall.config import load_config
from seawall.sim import SimSettings
from seawall.sim.world import build_world, pool_of
from seawall.zombies.store import open_case_store

GREYLIST_DELAY_S = 300.0  # serve.greylist_delay_s, the default
HALF_LIFE_S = 86400.0  # zombies.half_life_s, the default


class CountingSink:
    """Postfix's next hop: counts what it was given, keeps nothing."""

    def __init__(self) -> None:
        self.delivered = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered += 1
        return "250 OK"


def serve_config(state: Path, detail: Path, speed: float) -> str:
    """The TOML tables the live run adds to the generated config."""
    return (
        ISP
        + f'[accounting]\nfiles = ["{detail}"]\nlisten = ""\n'
        + f"[zombies]\nhalf_life_s = {HALF_LIFE_S / speed}\n"
    )


async def read_cases(config: Any) -> list[tuple[Any, list[Any]]]:
    store = open_case_store(config)
    try:
        cases = await store.list()
        return [(c, await store.evidence(c.id)) for c in cases]
    finally:
        await store.close()


def settle(config: Any, timeout_s: float = 120.0) -> list[tuple[Any, list[Any]]]:
    """The cases once the desk has taken every piece of evidence (no change for 5 s)."""
    last: tuple[int, int] | None = None
    stable_since = time.monotonic()
    deadline = time.monotonic() + timeout_s
    while True:
        cases = asyncio.run(read_cases(config))
        now = (len(cases), sum(c.evidence_count for c, _ in cases))
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= 5.0 or time.monotonic() > deadline:
            return cases
        time.sleep(1.0)


def run_seed(seed: int, hours: float, speed: float, root: Path) -> dict[str, Any]:
    state, detail, truth = root / "state", root / "radius.detail", root / "truth.jsonl"
    sw = Seawall(root=root / "sw", state=state, workers=2)
    sw.extra = serve_config(state, detail, speed)
    sw.write_config(greylist_delay_s=GREYLIST_DELAY_S / speed)
    sink = CountingSink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    postfix = Postfix(
        root=root / "postfix",
        sink_port=sink_port,
        milter=f"inet:127.0.0.1:{sw.ports['milter']}",
        extra={"relay_domains": "example.net, example.org, example.com", "message_size_limit": "0"},
    )
    controller.start()
    result: dict[str, Any] = {"seed": seed, "hours": hours, "speed": speed}
    try:
        sw.start()
        postfix.start()
        started = time.perf_counter()
        sim = subprocess.run(
            [
                *(sys.executable, "-m", "seawall", "simulate", "--seed", str(seed)),
                *("--hours", str(hours), "--speed", str(speed)),
                *("--direct-per-hour", str(DIRECT_PER_HOUR)),
                *("--to", f"smtp://127.0.0.1:{postfix.smtp_port}", "--workers", "32"),
                *("--truth", str(truth), "--radius", str(detail)),
            ],
            capture_output=True,
            text=True,
        )
        result["replay_wall_s"] = round(time.perf_counter() - started, 1)
        if sim.returncode != 0:
            raise RuntimeError(f"simulate failed: {sim.stderr[-3000:]}")
        result["simulate"] = sim.stdout.strip().splitlines()
        deadline = time.monotonic() + 120
        while postfix.queued() and time.monotonic() < deadline:
            postfix.flush()
            time.sleep(1)
        cases = settle(load_config(sw.config_file))
        result["seawall_log_errors"] = [
            line for line in sw.log().splitlines() if " ERROR " in line or "Traceback" in line
        ][:5]
    finally:
        postfix.stop()
        controller.stop()
        result["seawall_exit"] = sw.stop()
    lines = [json.loads(x) for x in truth.read_text().splitlines() if x.strip()]
    world = build_world(SimSettings(seed=seed, hours=hours))
    return result | figures(world, lines, cases, speed, hours) | {"delivered": sink.delivered}


def figures(
    world: Any,
    lines: list[dict[str, Any]],
    cases: list[tuple[Any, list[Any]]],
    speed: float,
    hours: float,
) -> dict[str, Any]:
    infected = {a.name for a in world.accounts if a.infected}
    clean = {a.name for a in world.accounts if not a.infected}
    business = {a.name for a in world.accounts if a.pool == "business"}
    first_bad: dict[str, float] = {}
    senders: dict[str, set[str]] = defaultdict(set)
    by_mid: dict[str, dict[str, Any]] = {}
    address_users: dict[str, set[str]] = defaultdict(set)  # own ip -> accounts that sent
    for line in lines:
        by_mid[line["message_id"]] = line
        account = line["account"]
        if not account:
            continue
        pool = pool_of(line["ip"])
        address_users[line["ip"]].add(account)
        senders[account].add(pool or "relay")
        if line["infected"] and line["kind"] in ("spam", "worm"):
            first_bad.setdefault(account, line["wall_at"])
    opened: dict[str, float] = {}
    accused: set[str] = set()
    why: dict[str, Any] = {}  # a falsely accused account's case: its kinds and symbols
    right = wrong = unknown = address_cases = 0
    wrong_samples: list[str] = []
    for case, evidence in cases:
        if case.account:
            opened[case.account] = case.opened_at
            if case.account in clean:
                accused.add(case.account)
                why[case.account] = {
                    "kinds": dict(case.kinds),
                    "symbols": sorted({s for e in evidence for s in e.symbols})[:12],
                }
        else:
            address_cases += 1
            users = address_users.get(case.ip, set())
            accused |= users & clean  # a case on an address only clean customers sent from
        for e in evidence:
            line = by_mid.get(e.message_id.strip("<>"))
            if line is None or not e.own:
                unknown += 1
                continue
            if e.account == line["account"]:
                right += 1
            else:
                wrong += 1
                if len(wrong_samples) < 5:
                    wrong_samples.append(f"{e.ip} {e.message_id}: {e.account} != {line['account']}")
    active = sorted(first_bad)
    delays = sorted((opened[a] - first_bad[a]) * speed for a in active if a in opened)
    within = sum(d <= WINDOW_S for d in delays)
    direct = {a for a, how in senders.items() if how & {"dialup", "dsl"}} & clean
    statics = {a for a, how in senders.items() if "business" in how} & clean
    relay = {a for a, how in senders.items() if "relay" in how} & clean
    reused = reused_after_zombies(world) & clean

    def share(part: int, whole: int) -> float:
        return round(part / whole, 4) if whole else 0.0

    counted = [c for c, _ in cases]
    return {
        "messages": len(lines),
        "infected_accounts": len(infected),
        "infected_sending": len(active),
        "found": sum(a in opened for a in active),
        "found_within_10min": within,
        "found_share": share(within, len(active)),
        "missed": [a for a in active if a not in opened][:5],
        "median_time_to_case_s": round(statistics.median(delays), 1) if delays else None,
        "p90_time_to_case_s": round(delays[int(0.9 * (len(delays) - 1))], 1) if delays else None,
        "max_time_to_case_s": round(delays[-1], 1) if delays else None,
        "clean_accounts": len(clean),
        "falsely_accused": len(accused),
        "falsely_accused_share": share(len(accused), len(clean)),
        "accused_samples": {a: why.get(a, "address case") for a in sorted(accused)[:5]},
        "clean_relay_senders": len(relay),
        "clean_direct_dynamic_senders": len(direct),
        "clean_business_servers": len(statics),
        "clean_business_accounts": len(business & clean),
        "clean_after_a_zombie_on_their_address": len(reused),
        "accused_relay": len(accused & relay),
        "accused_direct_dynamic": len(accused & direct),
        "accused_business_servers": len(accused & statics),
        "accused_after_a_zombie": len(accused & reused),
        "attribution_right": right,
        "attribution_wrong": wrong,
        "attribution_share": share(right, right + wrong),
        "evidence_not_in_truth": unknown,
        "wrong_samples": wrong_samples,
        "cases": len(counted),
        "address_cases": address_cases,
        "cases_per_hour": round(len(counted) / hours, 1),
        "evidence_per_case": round(statistics.mean(c.evidence_count for c in counted), 1)
        if counted
        else 0.0,
        "evidence_per_case_median": statistics.median(c.evidence_count for c in counted)
        if counted
        else 0,
    }


def main(seeds: list[int], hours: float, speed: float, out: str | None) -> int:
    rows = []
    for seed in seeds:
        root = Path(tempfile.mkdtemp(prefix=f"bench-zombies-live-{seed}-"))
        root.chmod(0o755)
        try:
            row = run_seed(seed, hours, speed, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if out:
        Path(out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = sum(r["found_within_10min"] for r in rows)
    sending = sum(r["infected_sending"] for r in rows)
    accused = sum(r["falsely_accused"] for r in rows)
    clean = sum(r["clean_accounts"] for r in rows)
    right = sum(r["attribution_right"] for r in rows)
    total = right + sum(r["attribution_wrong"] for r in rows)
    print(
        f"live: found within 10 min: {found}/{sending} ({found / max(1, sending):.2%}); "
        f"falsely accused: {accused}/{clean} ({accused / max(1, clean):.3%}); "
        f"attribution: {right}/{total} ({right / max(1, total):.3%})",
        file=sys.stderr,
    )
    return 0
