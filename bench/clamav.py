"""ClamAV's cost: the time a clamd scan adds to a message with attachments, and its round trips.

    .venv/bin/python -m bench.clamav [--messages 300] [--worms 100] [--synthetic 200000]

A private clamd (tests/integration/clamd.py) loads EICAR, hash signatures of the
simulator's worm programs and ``--synthetic`` random signatures (nine in ten MD5 hashes,
one in ten body patterns), standing in for the official database, which cannot be
downloaded here; its scan cache is off, so every scan does the whole work, as for mail
never seen before.  Messages: those with attachments from the shared corpora (SpamAssassin,
CSDMC2010, Phishing Pot; up to ``--messages``) and ``--worms`` simulator worm copies.

1. Engine: every message scanned by two engines in one run, in alternating order: the
   default detectors, and the same detectors plus clamav (TCP, kept IDSESSION
   connections).  p50/p99 of each scan time and of the per-message difference, one
   message at a time; then 8 messages at once (latency and messages/s).
2. Client round trips: Clamd.instream over TCP and the unix socket, with kept sessions and
   with a new connection per scan, one at a time and 8 at once: on the same mail, and on
   1 KB of text, where the protocol's own cost shows.
3. Text-only mail: the share of corpus messages with attachments, and the round trip and
   clamd CPU per message without one: what ``only_with_attachments = false`` would add.

Writes .cache/bench/clamav.json and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import uvloop
from tests.integration.clamd import EICAR, ClamdServer

from bench.load import percentile
from seawall import corpus
from seawall.clamd import Clamd
from seawall.config import ClamavSettings, load_config
from seawall.detectors.clamav import ClamavDetector
from seawall.engine import Engine, build_engine
from seawall.message import Envelope, parse_message
from seawall.sim import SimSettings, plan_traffic
from seawall.sim.traffic import render

ROOT = Path(__file__).resolve().parents[1]
CORPORA = (corpus.SPAMASSASSIN, corpus.CSDMC, corpus.PHISHING_POT)


def corpus_mail(limit: int) -> tuple[list[bytes], list[bytes], dict[str, float]]:
    """Up to ``limit`` messages with attachments and as many without; the share with."""
    with_att: list[bytes] = []
    without: list[bytes] = []
    share: dict[str, float] = {}
    for name in CORPORA:
        items = corpus.items(name)
        found = 0
        for item in items:
            raw = item.path.read_bytes()
            if parse_message(raw).attachments:
                found += 1
                with_att.append(raw)
            else:
                without.append(raw)
        share[name] = round(found / len(items), 4)
    rng = random.Random(1)
    rng.shuffle(with_att)
    rng.shuffle(without)
    return with_att[:limit], without[:limit], share


def worm_mail(count: int) -> tuple[list[bytes], dict[str, bytes]]:
    """``count`` worm copies of the simulator, and its worm programs by signature name."""
    plan = plan_traffic(SimSettings(seed=7, hours=1.0, worm_share=0.5))
    events = [e for e in plan.events if e.kind == "worm"][:count]
    hashes = {f"Seawall.Bench.Worm{i}": blob for i, blob in enumerate(plan.payloads)}
    return [render(plan, e).raw for e in events], hashes


def synthetic_database(count: int) -> dict[str, str]:
    rng = random.Random(5)
    hashes = count - count // 10
    hdb = "".join(
        f"{rng.randbytes(16).hex()}:{rng.randint(1000, 10**7)}:Seawall.Synthetic.H{i}\n"
        for i in range(hashes)
    )
    ndb = "".join(
        f"Seawall.Synthetic.B{i}:0:*:{rng.randbytes(rng.randint(12, 24)).hex()}\n"
        for i in range(count - hashes)
    )
    return {"synthetic.hdb": hdb, "synthetic.ndb": ndb}


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    ordered = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": round(percentile(ordered, 50), 3),
        "p99_ms": round(percentile(ordered, 99), 3),
        "mean_ms": round(statistics.fmean(ordered), 3) if ordered else 0.0,
    }


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await call()
    return time.perf_counter() - t0


async def at_once(
    calls: Sequence[Callable[[], Awaitable[Any]]], concurrency: int
) -> tuple[list[float], float]:
    """Latencies of ``calls`` run ``concurrency`` at a time, and calls per second."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> float:
        async with gate:
            return await timed(call)

    t0 = time.perf_counter()
    latencies = await asyncio.gather(*(one(c) for c in calls))
    return list(latencies), len(calls) / (time.perf_counter() - t0)


async def engine_costs(plain: Engine, with_clamav: Engine, mail: list[bytes]) -> dict[str, Any]:
    env = Envelope(client_ip="198.51.100.7", helo="pc1.example.net")
    for raw in mail[:20]:  # warm up both
        await plain.scan(env, raw)
        await with_clamav.scan(env, raw)
    without: list[float] = []
    added: list[float] = []
    with_: list[float] = []
    for i, raw in enumerate(mail):
        pair = (plain, with_clamav) if i % 2 else (with_clamav, plain)
        times = {}
        for engine in pair:
            times[id(engine)] = await timed(lambda e=engine, r=raw: e.scan(env, r))
        without.append(times[id(plain)])
        with_.append(times[id(with_clamav)])
        added.append(times[id(with_clamav)] - times[id(plain)])
    result: dict[str, Any] = {
        "sequential": {
            "without_clamav": stats_ms(without),
            "with_clamav": stats_ms(with_),
            "added_per_message": stats_ms(added),
        }
    }
    for engine, key in ((plain, "without_clamav"), (with_clamav, "with_clamav")):
        calls = [lambda e=engine, r=raw: e.scan(env, r) for raw in mail]
        latencies, rate = await at_once(calls, 8)
        result.setdefault("concurrency_8", {})[key] = stats_ms(latencies) | {
            "msgs_per_s": round(rate, 1)
        }
    return result


async def client_costs(server: ClamdServer, mail: Sequence[bytes]) -> dict[str, Any]:
    """Round trips of each transport and connection mode over the same data."""
    out: dict[str, Any] = {}
    for (where, address), sessions in itertools.product(
        (("tcp", server.tcp_address), ("unix", server.unix_address)), (True, False)
    ):
        client = Clamd(address, sessions=sessions, timeout_s=10.0)
        for raw in mail[:20]:
            await client.instream(raw)
        calls = [lambda c=client, r=raw: c.instream(r) for raw in mail]
        seq = [await timed(call) for call in calls]
        latencies, rate = await at_once(calls, 8)
        key = f"{where}_{'session' if sessions else 'new_connection'}"
        out[key] = {"sequential": stats_ms(seq), "concurrency_8": stats_ms(latencies)}
        out[key]["concurrency_8"]["scans_per_s"] = round(rate, 1)
        client.close()
    return out


async def clamd_cpu(server: ClamdServer, mail: list[bytes]) -> dict[str, float]:
    """Round trip and clamd CPU per message, one at a time over a kept session."""
    client = Clamd(server.tcp_address, timeout_s=10.0)
    proc = psutil.Process(server.pid)
    before = proc.cpu_times()
    seq = [await timed(lambda r=raw: client.instream(r)) for raw in mail]
    after = proc.cpu_times()
    client.close()
    cpu = (after.user + after.system - before.user - before.system) / len(mail)
    return stats_ms(seq) | {"clamd_cpu_ms": round(cpu * 1000, 3)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with_att, text_only, share = corpus_mail(args.messages)
    worms, hashes = worm_mail(args.worms)
    mail = with_att + worms
    random.Random(2).shuffle(mail)
    # No scan cache: every scan does the whole work, as for mail never seen before.
    server = ClamdServer(
        hashes=hashes, extra=synthetic_database(args.synthetic), options={"DisableCache": "yes"}
    )
    server.start()
    state = Path(tempfile.mkdtemp(prefix="seawall-bench-clamav-"))
    try:
        config = load_config(state_dir=str(state))
        plain = build_engine(config)
        settings = ClamavSettings(enabled=True, address=server.tcp_address)
        detector = ClamavDetector(settings, io_timeout_s=plain.io_timeout_s)
        with_clamav = Engine(
            scores=plain.scores,
            detectors=(*plain.detectors, detector),
            limits=plain.limits,
            identify_language=plain.identify_language,
            io_timeout_s=plain.io_timeout_s,
            classifier=plain.classifier,
        )
        found = sum(
            ["CLAMAV_VIRUS" in (await with_clamav.scan(Envelope(), r)).symbols for r in worms]
        )
        assert (await detector.client.instream(EICAR)).infected
        results: dict[str, Any] = {
            "clamd": {
                "version": await detector.client.version(),
                "signatures": server.signatures(),
                "started_in_s": round(server.started_in_s, 3),
            },
            "messages": {
                "with_attachments": len(with_att),
                "worms": len(worms),
                "worms_found": found,
                "bytes_p50": int(statistics.median(len(m) for m in mail)),
                "bytes_max": max(len(m) for m in mail),
                "text_only": len(text_only),
            },
            "share_with_attachments": share,
            "engine": await engine_costs(plain, with_clamav, mail),
            "client": await client_costs(server, mail),
            # The protocol's own cost: 1 KB of clean text, where connecting weighs most.
            "client_1kb": await client_costs(server, [b"x" * 1024] * 1000),
            "clamd_cpu": {
                "with_attachments": await clamd_cpu(server, mail),
                "text_only": await clamd_cpu(server, text_only),
            },
        }
        plain.close()
        return results
    finally:
        server.remove()
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--worms", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=200_000)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(args))
    out = ROOT / ".cache" / "bench" / "clamav.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
