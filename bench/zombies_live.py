"""Issue 11's case figures the real way: a live replay through Postfix and ``seawall serve``.

    .venv/bin/python -m bench.zombies --live [--seeds 7,11,23] [--hours 1] [--speed 12]

For each seed: ``seawall serve`` (2 workers, its desk process, [accounting] following a
detail file), a Postfix whose smtpd_milters is Seawall, and a sink behind it, all on
loopback.  ``seawall simulate --to smtp://POSTFIX --radius FILE --truth FILE`` replays the
run in compressed time (XCLIENT gives each message its simulated client address) and
writes the RADIUS detail records live, each when due and stamped in the replay's wall time,
as a NAS's FreeRADIUS would.  Seawall attributes its evidence with what it tailed by then.

Time is compressed for Seawall too: the greylist delay, the cases' half-life and the
remedies' periods (notice interval, wall after notice, release, incident, zone refresh,
external expiry) are the defaults divided by the speed, so each means in simulated time
what it means in real time.

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
- attribution: each own evidence record of every case against the account that held the
  address in the simulated world at the moment Seawall saw the message (its ``at``,
  mapped back by the replay clock): the accounting's answer, checked; and against the
  account that truly sent it (by Message-ID), which differs only for a message that
  reached Seawall after its sender's session had ended, because the replay ran behind
  its schedule (``late``; how far behind is ``lag``); cases on an address with no account;
- volumes: cases per simulated hour, evidence per case; with the remedies enforced
  (``[remediation] mode = "enforce"``, each foreign /8 an abuse contact), the notices and
  abuse reports that reached an SMTP sink, and the accounts notified and walled.
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

import msgspec
from aiosmtpd.controller import Controller
from tests.integration.postfix import Postfix, free_port
from tests.integration.seawall_proc import Seawall

from bench.remedies import Sink as RemedySink
from bench.zombies import DIRECT_PER_HOUR, ISP, WINDOW_S, reused_after_zombies
from seawall.config import load_config
from seawall.sim import SimSettings
from seawall.sim.replay import ReplayClock
from seawall.sim.world import _FOREIGN_OCTETS, build_world, pool_of
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


def serve_config(state: Path, detail: Path, speed: float, smtp: str) -> str:
    """The TOML tables the live run adds to the generated config: the ISP, the detail file
    followed, and the remedies enforced (notices and abuse reports to ``smtp``, one abuse
    contact per foreign /8), every period divided by the speed."""
    day = 86400.0 / speed
    contacts = "".join(f'"{o}.0.0.0/8" = "abuse@net{o}.example"\n' for o in _FOREIGN_OCTETS)
    return (
        ISP
        + f'[accounting]\nfiles = ["{detail}"]\nlisten = ""\n'
        + f"[zombies]\nhalf_life_s = {HALF_LIFE_S / speed}\nexternal_ttl_s = {2 * day}\n"
        + '[remediation]\nmode = "enforce"\n'
        + f'smtp = "{smtp}"\nnotice_from = "abuse@isp.example"\nnotice_to = "{{account}}"\n'
        + 'garden_url = "https://garden.isp.example"\n'
        + f'export_dir = "{state}/exports"\n'
        + f"notice_interval_s = {day}\nwall_after_notified_s = {day}\n"
        + f"release_clean_s = {3 * day}\n"
        + f'[sharing]\nreport_from = "abuse@isp.example"\nsmtp = "{smtp}"\n'
        + f"refresh_s = {30.0 / speed}\nincident_s = {day}\n"
        + "[sharing.contacts]\n"
        + contacts
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


def run_seed(
    seed: int, hours: float, speed: float, root: Path, keep: Path | None = None
) -> dict[str, Any]:
    state, detail, truth = root / "state", root / "radius.detail", root / "truth.jsonl"
    remedies = RemedySink()
    remedies_port = free_port()
    remedies_mta = Controller(remedies, hostname="127.0.0.1", port=remedies_port)
    sw = Seawall(root=root / "sw", state=state, workers=2)
    sw.extra = serve_config(state, detail, speed, f"127.0.0.1:{remedies_port}")
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
    remedies_mta.start()
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
        remedies_mta.stop()
    lines = [json.loads(x) for x in truth.read_text().splitlines() if x.strip()]
    world = build_world(SimSettings(seed=seed, hours=hours))
    clock = replay_clock(result["simulate"])
    if keep is not None:  # what the figures are made of, to compute them again
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(truth, keep / "truth.jsonl")
        shutil.copy(detail, keep / "radius.detail")
        dump = [
            {"case": msgspec.to_builtins(c), "evidence": msgspec.to_builtins(e)} for c, e in cases
        ]
        (keep / "cases.json").write_text(json.dumps({"clock": clock, "cases": dump}))
    got = figures(world, lines, cases, ReplayClock(*clock), hours)
    transitions = [{t.to_state for t in c.transitions} for c, _ in cases]
    volumes = {
        "notices_sent": remedies.kinds["notice"],
        "reports_sent": remedies.kinds["report"],
        "other_mail": remedies.kinds["other"],
        "notified_cases": sum("notified" in t for t in transitions),
        "walled_accounts": sum("walled" in t for t in transitions),
    }
    per_hour = {f"{k}_per_hour": round(v / hours, 1) for k, v in volumes.items()}
    return result | got | volumes | per_hour | {"delivered": sink.delivered}


def replay_clock(report: list[str]) -> tuple[float, float, float]:
    """(base, wall0, speed) from simulate's "replay clock: simulated B was wall W, xS"."""
    line = next(x for x in report if x.startswith("replay clock:"))
    parts = line.split()
    return float(parts[3]), float(parts[6].rstrip(",")), float(parts[7].lstrip("x"))


class Holders:
    """Who held an address at a simulated moment, in the world itself."""

    def __init__(self, world: Any) -> None:
        self.by_ip: dict[str, list[Any]] = defaultdict(list)
        for session in world.sessions:
            self.by_ip[session.ip].append(session)

    def at(self, ip: str, when: float) -> str | None:
        for s in self.by_ip.get(ip, ()):
            if s.start <= when < s.stop:
                return str(s.account)
        return None


def figures(
    world: Any,
    lines: list[dict[str, Any]],
    cases: list[tuple[Any, list[Any]]],
    clock: ReplayClock,
    hours: float,
) -> dict[str, Any]:
    speed = clock.speed
    holders = Holders(world)
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
    right = wrong = unknown = address_cases = held_right = held_wrong = late = 0
    lags: list[float] = []
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
            lags.append(e.at - line["wall_at"])
            held = holders.at(e.ip, clock.sim(e.at))
            late += held != line["account"]
            if e.account == held:
                held_right += 1
            else:
                held_wrong += 1
                if len(wrong_samples) < 5:
                    wrong_samples.append(f"{e.ip} at {e.at:.1f}: {e.account} != {held}")
            if e.account == line["account"]:
                right += 1
            else:
                wrong += 1
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
        "attribution_right": held_right,
        "attribution_wrong": held_wrong,
        "attribution_share": share(held_right, held_right + held_wrong),
        "sender_right": right,
        "sender_wrong": wrong,
        "sender_share": share(right, right + wrong),
        "late_evidence": late,
        "lag_p50_s": round(statistics.median(lags), 2) if lags else None,
        "lag_p99_s": round(sorted(lags)[int(0.99 * (len(lags) - 1))], 2) if lags else None,
        "lag_max_s": round(max(lags), 2) if lags else None,
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
        keep = Path(out).parent / f"zombies-live-{seed}" if out else None
        try:
            row = run_seed(seed, hours, speed, root, keep)
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
