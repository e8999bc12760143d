"""SPF, DKIM, DMARC and ARC together: cost per message, and `seawall scan` with them on and off.

    .venv/bin/python -m bench.auth_scan [--messages 2000] [--domains 100] [--delay-ms 50]
        [--rounds 3] [--learned]

The mail: SpamAssassin public corpus messages (ham and spam) re-addressed as if each came
from one of ``--domains`` sender domains, as a Maildir keeps it: a Return-Path, a Received
hop from the client, From at the domain; 70% DKIM-signed for the domain (RSA, 10% ed25519),
80% from an address the domain's SPF allows.  Each domain publishes SPF (its /24 and an
include of a shared provider), its DKIM key, and DMARC (reject, quarantine or none), served
by NSD on loopback (tests/auth/dns_server.py); bench/dnsdelay.py holds each query
``--delay-ms`` for the cold runs.

a) In process, DKIM alone: each signed message's signatures read and verified, the keys
   given (no DNS), CPU per message by algorithm (``--dkim-only``: this figure only).
   Then one message at a time through AuthDetector (every check of the message:
   SPF for the Received hop and Return-Path, SPF HELO, each DKIM signature, DMARC, ARC):
   CPU per message from a warm cache, and wall time per message from a cold one (a new
   detector and cache for each message) behind the delay.
   Then an Engine as a scan's worker runs it, off and on: where the scan's CPU goes
   (:func:`engine_split`).
b) ``seawall scan --workers 2`` over the Maildir, in alternating rounds: authentication off,
   on (NSD straight), and on behind the delay (each scan process starts with an empty
   cache: the pipeline overlaps the waits).  Messages per second, and each round's ratio
   of on to off; and the CPU time of the scan's processes per message, with the ratio
   of off's to on's (the throughput CPU allows: on a shared host the wall clock also
   counts the waits for a core, which CPU time does not).  The load average before and
   after is recorded.  The scans run with Python's compiled modules kept, as installed
   (see :func:`installed_env`), after one unmeasured scan of each setting.  Their state
   is empty (no classifier learned: its stage does nothing), or with ``--learned`` the
   SpamAssassin train half learned first, as a site runs it.

Writes .cache/bench/auth_scan.json and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.auth.dns_server import AuthDns, txt
from tests.auth.signing import ED25519_PUBLIC, RSA_PUBLIC, ed25519_record, rsa_record, sign
from tests.integration.rbldnsd import free_udp_port

from seawall import corpus
from seawall.config import AuthSettings, Trusted
from seawall.detectors.auth import AuthDetector
from seawall.detectors.base import Context
from seawall.message import Envelope, parse_message

ROOT = Path(__file__).resolve().parents[1]
SEAWALL = str(Path(sys.executable).with_name("seawall"))
_DROP = (b"return-path", b"received", b"dkim-signature", b"from", b"sender", b"delivered-to")


def domain(k: int) -> str:
    return f"seawall-bench-sender{k}.net"


def zone(domains: int) -> dict[str, list[str]]:
    records: dict[str, list[str]] = {
        "_spf.bench-provider.net": [txt("v=spf1 ip4:192.0.2.0/24 ip4:198.18.0.0/16 ~all")]
    }
    policies = ("reject", "quarantine", "none")
    for k in range(domains):
        name = domain(k)
        records[name] = [
            txt(f"v=spf1 ip4:10.{k % 250}.{k // 250}.0/24 include:_spf.bench-provider.net -all")
        ]
        records[f"rsa._domainkey.{name}"] = [rsa_record()]
        records[f"ed._domainkey.{name}"] = [ed25519_record()]
        records[f"_dmarc.{name}"] = [txt(f"v=DMARC1; p={policies[k % 3]}")]
    return records


def readdress(raw: bytes, rng: random.Random, k: int, n: int) -> bytes:
    """``raw`` as if ``domain(k)`` had sent it to us: Return-Path, Received, From; signed."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() in _DROP
        if not skipping:
            kept.append(line)
    name = domain(k)
    allowed = rng.random() < 0.8
    ip = (
        f"10.{k % 250}.{k // 250}.{rng.randrange(2, 250)}"
        if allowed
        else f"45.{rng.randrange(1, 250)}.{rng.randrange(256)}.7"
    )
    when = email.utils.formatdate(1796544000 + n, usegmt=True)
    top = [
        f"Return-Path: <bounce{n}@{name}>".encode(),
        (
            f"Received: from mail.{name} (mail.{name} [{ip}])\n\tby mx.isp.example.net"
            f" (Postfix) with ESMTP id B{n:08d}\n\tfor <user@isp.example.net>; {when}"
        ).encode(),
    ]
    message = b"\n".join([f"From: Sender {n} <user{n}@{name}>".encode(), *kept]) + b"\n\n" + body
    roll = rng.random()
    if roll < 0.6:
        message = sign(message, name, "rsa")
    elif roll < 0.7:
        message = sign(message, name, "ed", ed25519=True)
    return b"\n".join(top) + b"\n" + message


def build_maildir(root: Path, messages: int, domains: int) -> list[bytes]:
    items = [
        i for i in corpus.items(corpus.SPAMASSASSIN) if i.get("subset") in ("easy_ham", "spam")
    ]
    rng = random.Random(6376)
    rng.shuffle(items)
    (root / "cur").mkdir(parents=True)
    (root / "new").mkdir()
    (root / "tmp").mkdir()
    out = []
    for n in range(messages):
        raw = readdress(items[n % len(items)].path.read_bytes(), rng, rng.randrange(domains), n)
        (root / "cur" / f"{1796544000 + n}.M{n}.bench:2,S").write_bytes(raw)
        out.append(raw)
    return out


def detector(nameserver: str) -> AuthDetector:
    settings = AuthSettings(enabled=True, nameservers=(nameserver,))
    return AuthDetector(settings, Trusted(networks=(), private_is_trusted=False), io_timeout_s=2.0)


async def warm_cpu(nameserver: str, raws: list[bytes]) -> dict[str, float]:
    auth = detector(nameserver)
    messages = [parse_message(raw, Envelope()) for raw in raws]
    ctx = Context(now=time.time())
    for msg in messages:  # fills the cache
        await auth.check(msg, ctx)
    cpu, wall = time.process_time(), time.perf_counter()
    for msg in messages:
        await auth.check(msg, ctx)
    n = len(messages)
    auth.close()
    return {
        "cpu_us_per_message": round((time.process_time() - cpu) / n * 1e6, 1),
        "wall_us_per_message": round((time.perf_counter() - wall) / n * 1e6, 1),
    }


async def cold_wall(nameserver: str, raws: list[bytes]) -> dict[str, float]:
    times = []
    ctx = Context(now=time.time())
    for raw in raws:
        auth = detector(nameserver)  # a cache of its own: nothing known
        msg = parse_message(raw, Envelope())
        t0 = time.perf_counter()
        await auth.check(msg, ctx)
        times.append((time.perf_counter() - t0) * 1000)
        auth.close()
    times.sort()
    return {
        "messages": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
    }


def dkim_cpu(raws: list[bytes]) -> dict[str, float]:
    """DKIM alone, in process: ``signatures()`` and ``verify()`` of each signed message,
    the keys given as answers (no DNS), CPU per message by algorithm, best of five."""
    from seawall.auth import dkim
    from seawall.dnslists.answer import Answer, Status

    keys = {
        "rsa": Answer(Status.LISTED, (f"v=DKIM1; k=rsa; p={RSA_PUBLIC}",)),
        "ed": Answer(Status.LISTED, (f"v=DKIM1; k=ed25519; p={ED25519_PUBLIC}",)),
    }
    by_selector: dict[str, list[bytes]] = {"rsa": [], "ed": []}
    for raw in raws:
        found = dkim.signatures(raw)
        if found and found[0].selector in by_selector:
            by_selector[found[0].selector].append(raw)
    out: dict[str, float] = {}
    for selector, signed in by_selector.items():
        best = float("inf")
        for _ in range(5):
            c0 = time.process_time()
            for raw in signed:
                found = dkim.signatures(raw)
                dkim.verify(raw, found, {dkim.key_name(s): keys[selector] for s in found})
            best = min(best, (time.process_time() - c0) / max(1, len(signed)))
        name = "rsa-sha256" if selector == "rsa" else "ed25519-sha256"
        out[f"{name}_cpu_us_per_message"] = round(best * 1e6, 1)
        out[f"{name}_messages"] = len(signed)
    return out


def engine_split(nameserver: str, raws: list[bytes], root: Path) -> dict[str, Any]:
    """Where a scan's CPU goes with authentication on, in one process: an Engine as a
    scan's worker builds it (64 messages in flight), authentication off and on, three
    passes each (the first from an empty DNS cache; the third with the objects of the
    first two frozen out of the garbage collector's view, ``gc.freeze()``, as a server
    could after start-up).  Per message: the main thread's CPU
    for the whole scan, for the detector's own work (``start()``, with the checks when
    every answer is cached, and the checks after a wait), and for the garbage collector."""
    import contextlib
    import gc

    from seawall.batch import _overlay, _shared_counts
    from seawall.config import load_config
    from seawall.engine import build_engine

    spent = {"detector": 0.0, "gc": 0.0}
    depth = [0]

    def timed(method: Any) -> Any:
        def run(self: AuthDetector, *args: Any) -> Any:
            depth[0] += 1
            c0 = time.thread_time()
            try:
                return method(self, *args)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent["detector"] += time.thread_time() - c0

        return run

    gc_started = [0.0]

    def collecting(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.thread_time()
        else:
            spent["gc"] += time.thread_time() - gc_started[0]

    saved = AuthDetector.start, AuthDetector._hits
    AuthDetector.start = timed(AuthDetector.start)  # type: ignore[method-assign]
    AuthDetector._hits = timed(AuthDetector._hits)  # type: ignore[method-assign]
    gc.callbacks.append(collecting)

    async def scan(engine: Any) -> None:
        gate = asyncio.Semaphore(64)

        async def one(raw: bytes) -> None:
            async with gate:
                await engine.scan_message(Envelope(), raw)

        await asyncio.gather(*(one(raw) for raw in raws))
        await engine.flush()

    out: dict[str, Any] = {}
    try:
        for name, server in (("off", None), ("on", nameserver)):
            config = load_config(write_config(root / f"split-{name}.toml", root / "state", server))
            with contextlib.ExitStack() as stack:
                engine = build_engine(config, store=_overlay(config, _shared_counts(stack)))
                stack.callback(engine.close)
                loop = asyncio.new_event_loop()
                stack.callback(loop.close)
                for when in ("cold", "warm", "warm_gc_frozen"):
                    if when == "warm_gc_frozen":  # what gc.freeze() after start-up buys
                        gc.collect()
                        gc.freeze()
                    spent.update(detector=0.0, gc=0.0)
                    c0 = time.thread_time()
                    try:
                        loop.run_until_complete(scan(engine))
                    finally:
                        gc.unfreeze()
                    n = len(raws)
                    out[f"{name}_{when}_us_per_message"] = {
                        "scan": round((time.thread_time() - c0) / n * 1e6),
                        "auth_detector": round(spent["detector"] / n * 1e6),
                        "gc": round(spent["gc"] / n * 1e6),
                    }
    finally:
        AuthDetector.start, AuthDetector._hits = saved  # type: ignore[method-assign]
        gc.callbacks.remove(collecting)
    return out


def write_config(path: Path, state: Path, nameserver: str | None) -> Path:
    lines = [f'state_dir = "{state}"', "[trusted]", "private_is_trusted = false"]
    if nameserver is not None:
        lines += ["[detectors.auth]", "enabled = true", f'nameservers = ["{nameserver}"]']
    path.write_text("\n".join(lines) + "\n")
    return path


def installed_env(pycache: Path) -> dict[str, str]:
    """The environment of the scans: Python's compiled modules kept (in ``pycache``), as an
    installed package has them, even where the shell says not to write them; without
    them each scan compiles every module it imports, authentication's more than off's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def scan_rate(
    config: Path, maildir: Path, messages: int, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Messages per second (wall), and CPU ms per message of the scan's processes (the
    reader and its workers: user + system time, which other load on the host inflates
    far less than it slows the wall clock)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [SEAWALL, "scan", "--config", str(config), "--workers", "2", "--json", str(maildir)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return messages / wall, cpu / messages * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-messages", type=int, default=100)
    parser.add_argument(
        "--dkim-only", action="store_true", help="only the in-process DKIM figure (no DNS)"
    )
    parser.add_argument(
        "--learned",
        action="store_true",
        help="the scans' state learned from the SpamAssassin train half first (as a site "
        "runs it: the classifier on), not empty",
    )
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        k: getattr(args, k) for k in ("messages", "domains", "delay_ms", "learned")
    }
    report["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="seawall-bench-authscan-") as tmp:
        root = Path(tmp)
        raws = build_maildir(root / "maildir", args.messages, args.domains)
        report["dkim_in_process"] = dkim_cpu(raws)
        if args.dkim_only:
            print(json.dumps(report, indent=2))
            return 0
        nsd = AuthDns(root / "nsd")
        nsd.records = zone(args.domains)
        nsd.start()
        port = free_udp_port()
        proxy = subprocess.Popen(
            [sys.executable, "-m", "bench.dnsdelay", str(port), str(nsd.port), str(args.delay_ms)],
            cwd=ROOT,
        )
        try:
            time.sleep(0.5)  # the proxy binds
            slow = f"127.0.0.1:{port}"
            report["in_process_warm"] = asyncio.run(warm_cpu(nsd.address, raws))
            report["engine_split"] = engine_split(nsd.address, raws, root)
            report[f"in_process_cold_{args.delay_ms}ms"] = asyncio.run(
                cold_wall(slow, raws[: args.cold_messages])
            )
            if args.learned:
                from bench.serve import train

                train(root / "state", root / "learn")
            configs = {
                "off": write_config(root / "off.toml", root / "state", None),
                "on": write_config(root / "on.toml", root / "state", nsd.address),
                f"on_{args.delay_ms}ms": write_config(root / "slow.toml", root / "state", slow),
            }
            rates: dict[str, list[float]] = {name: [] for name in configs}
            cpu: dict[str, list[float]] = {name: [] for name in configs}
            env = installed_env(root / "pycache")
            for config in configs.values():  # unmeasured: compiles the modules, reads the mail
                scan_rate(config, root / "maildir", args.messages, env)
            for _ in range(args.rounds):
                for name, config in configs.items():
                    rate, cpu_ms = scan_rate(config, root / "maildir", args.messages, env)
                    rates[name].append(rate)
                    cpu[name].append(cpu_ms)
            report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            report["scan_msgs_per_s"] = {k: [round(r, 1) for r in v] for k, v in rates.items()}
            report["scan_cpu_ms_per_message"] = {
                k: [round(c, 3) for c in v] for k, v in cpu.items()
            }
            for name in configs:
                if name != "off":
                    ratios = [on / off for on, off in zip(rates[name], rates["off"], strict=True)]
                    report[f"ratio_{name}_to_off"] = {
                        "per_round": [round(r, 3) for r in ratios],
                        "median": round(statistics.median(ratios), 3),
                    }
                    # The throughput CPU alone allows: off's CPU per message over on's.
                    by_cpu = [off / on for on, off in zip(cpu[name], cpu["off"], strict=True)]
                    report[f"cpu_ratio_{name}_to_off"] = {
                        "per_round": [round(r, 3) for r in by_cpu],
                        "median": round(statistics.median(by_cpu), 3),
                    }
        finally:
            proxy.terminate()
            proxy.wait(5)
            nsd.stop()
    out = ROOT / ".cache" / "bench" / "auth_scan.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
