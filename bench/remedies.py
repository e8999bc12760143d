"""Volumes of the remedies and of sharing on ``seawall simulate`` worlds (3 seeds).

    nice -n 10 .venv/bin/python -m bench.remedies [--seeds 7,11,23] [--hours 1]

For each seed the simulated traffic is scanned in arrival order by one Engine on the
simulated clock, and each verdict becomes evidence as ``seawall serve`` makes it (as
bench/zombies.py does, with the world's RADIUS accounting imported first), own and
external.  The evidence goes through the Desk with the remedies in ``enforce`` mode on the
simulated clock: notices and abuse reports go over SMTP to a sink on loopback, the walled
set is exported, the zone rewritten, and the remedies' clock ticks every simulated minute.
The foreign zombies' networks each have an abuse contact (one per /8, 20 reports an hour
each).  Then per simulated hour:

- notices sent (mail to customers), accounts walled, abuse reports sent;
- the zone's size at the end (own ones at the addresses their accounts hold then, and
  external), and how often it was rewritten.

No NAS is configured (the CoA exchange is tested against a server on loopback, not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.zombies import ISP, import_accounting
from seawall.config import load_config
from seawall.engine import build_engine
from seawall.sim import SimSettings, simulate
from seawall.sim.radius import radius_detail
from seawall.sim.world import _FOREIGN_OCTETS, build_world
from seawall.store import open_store
from seawall.zombies.cases import Accounts, Desk
from seawall.zombies.evidence import Scope, from_verdict
from seawall.zombies.model import Evidence
from seawall.zombies.remedies.remediation import Remediation
from seawall.zombies.store import open_case_store

TICK_S = 60.0  # simulated seconds between the remedies' clock ticks


@dataclass
class Sink:
    kinds: Counter[str] = field(default_factory=Counter)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content or b"")
        if message["X-Seawall-Case"]:
            self.kinds["notice"] += 1
        elif message.get_content_type() == "multipart/report" or message["X-ARF"]:
            self.kinds["report"] += 1
        else:
            self.kinds["other"] += 1
        return "250 OK"


def write_config(state: Path, smtp: str) -> Path:
    contacts = "".join(f'"{o}.0.0.0/8" = "abuse@net{o}.example"\n' for o in _FOREIGN_OCTETS)
    path = state / "seawall.toml"
    path.write_text(
        f'state_dir = "{state}"\n'
        + ISP
        + "[remediation]\n"
        + 'mode = "enforce"\n'
        + f'smtp = "{smtp}"\n'
        + 'notice_from = "abuse@isp.example"\n'
        + 'notice_to = "{account}"\n'  # the sim's accounts are user@realm addresses
        + 'garden_url = "https://garden.isp.example"\n'
        + f'export_dir = "{state}/exports"\n'
        + "[sharing]\n"
        + 'report_from = "abuse@isp.example"\n'
        + f'smtp = "{smtp}"\n'
        + f'zone_file = "{state}/zone/zombies.ip4set"\n'
        + "[sharing.contacts]\n"
        + contacts
    )
    return path


def scan(seed: int, hours: float, config: Any) -> tuple[list[Evidence], int, float]:
    settings = SimSettings(seed=seed, hours=hours)
    world = build_world(settings)
    asyncio.run(import_accounting(config, radius_detail(world)))
    engine = build_engine(config)
    scope = Scope(config)
    pending: list[Evidence] = []
    messages = 0
    try:
        for sim in simulate(settings, world):
            messages += 1
            verdict = engine.scan_sync(sim.envelope, sim.raw, now=sim.at).verdict
            evidence = from_verdict(scope, config.zombies, sim.envelope, verdict, sim.raw, sim.at)
            if evidence is not None:
                pending.append(evidence)
    finally:
        engine.close()
    return pending, messages, settings.start


async def remedy(
    config: Any, pending: list[Evidence], start: float, hours: float
) -> dict[str, Any]:
    cases = open_case_store(config)
    accounts = Accounts(config)
    store = open_store(config)
    clock = [start]
    remedies = Remediation(config, cases, store, clock=lambda: clock[0])
    desk = Desk(cases, remedies=remedies, who=accounts.who)
    rewrites = 0
    publish = remedies.zone.publish

    def counted(*args: Any, **kw: Any) -> bool:
        nonlocal rewrites
        changed = publish(*args, **kw)
        rewrites += changed
        return changed

    remedies.zone.publish = counted  # type: ignore[method-assign]
    next_tick = start
    started = time.perf_counter()
    try:
        for evidence in pending:
            clock[0] = evidence.at
            if evidence.at >= next_tick:
                next_tick = evidence.at + TICK_S
                await remedies.tick(evidence.at)
            await desk.ingest(evidence)
        end = start + hours * 3600
        clock[0] = end
        await remedies.tick(end)
        listed = await cases.list()
        published = remedies.zone.entries  # as the zone lists them: own ones where they are now
    finally:
        await cases.close()
        await accounts.close()
        await store.close()
    walled = sum(1 for c in listed if any(t.to_state == "walled" for t in c.transitions))
    notified = sum(1 for c in listed if any(t.to_state == "notified" for t in c.transitions))
    return {
        "cases": len(listed),
        "notified_cases": notified,
        "walled_accounts": walled,
        "zone_own": sum(1 for z in published if z.cls == "own"),
        "zone_external": sum(1 for z in published if z.cls != "own"),
        "zone_rewrites": rewrites,
        "remedy_s": round(time.perf_counter() - started, 1),
    }


def run_seed(seed: int, hours: float, root: Path, sink: Sink, smtp: str) -> dict[str, Any]:
    state = root / f"state-{seed}"
    state.mkdir()
    config = load_config(write_config(state, smtp))
    before = Counter(sink.kinds)
    pending, messages, start = scan(seed, hours, config)
    result = asyncio.run(remedy(config, pending, start, hours))
    time.sleep(0.5)  # the sink's last deliveries
    sent = sink.kinds - before
    return {
        "seed": seed,
        "hours": hours,
        "messages": messages,
        "evidence": len(pending),
        "external_evidence": sum(1 for e in pending if not e.own),
        **result,
        "notices_sent": sent["notice"],
        "reports_sent": sent["report"],
        "notices_per_hour": round(sent["notice"] / hours, 1),
        "walled_per_hour": round(result["walled_accounts"] / hours, 1),
        "reports_per_hour": round(sent["report"] / hours, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args(argv)
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-remedies-") as tmp:
            for seed in (int(s) for s in args.seeds.split(",")):
                row = run_seed(seed, args.hours, Path(tmp), sink, f"127.0.0.1:{port}")
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        controller.stop()
    hours = sum(r["hours"] for r in rows)
    print(
        f"per simulated hour over {len(rows)} seeds: "
        f"notices {sum(r['notices_sent'] for r in rows) / hours:.1f}, "
        f"walled {sum(r['walled_accounts'] for r in rows) / hours:.1f}, "
        f"reports {sum(r['reports_sent'] for r in rows) / hours:.1f}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
