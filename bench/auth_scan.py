"""SPF, DKIM, DMARC and ARC together: cost per message, and `seawall scan` with them on and off.

    .venv/bin/python -m bench.auth_scan [--messages 2000] [--domains 100] [--delay-ms 50]
        [--rounds 3] [--learned] [--base OTHER/src [--scans-only]]

The mail: SpamAssassin public corpus messages (ham and spam) re-addressed as if each came
from one of ``--domains`` sender domains, as a Maildir keeps it: a Return-Path, a Received
hop from the client, From at the domain; 70% DKIM-signed for the domain (RSA, 10% ed25519;
c= in the corpora's shares, :func:`canonicalization`), 19% sealed by two ARC sets of a
forwarder (:func:`forwarded`), 80% from an address the domain's SPF allows.  Each domain
publishes SPF (its /24 and an include of a shared provider), its DKIM key, and DMARC
(reject, quarantine or none), served by NSD on loopback (tests/auth/dns_server.py);
bench/dnsdelay.py holds each query ``--delay-ms`` for the cold runs.

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
   SpamAssassin train half learned first, as a site runs it.  With ``--base``, another
   tree's ``src`` (a worktree of the commit before a change) runs the same scans in each
   round, alternated with this tree's: each tree's ratios, and this tree's CPU per message
   against the base's, side by side (``--scans-only``: these scans only, without the
   in-process figures and the delayed DNS).

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
from seawall.message import Envelope, ParseLimits, parse_message

ROOT = Path(__file__).resolve().parents[1]
SEAWALL = str(Path(sys.executable).with_name("seawall"))
# The mail's clients are on private addresses (each domain's SPF names its 10.k.x.0/24), so
# the scans' configuration does not trust private relays (write_config); the in-process
# figures parse alike, or SPF would not be asked for those messages there.
LIMITS = ParseLimits(private_is_trusted=False)
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
    records[f"arc._domainkey.{FORWARDER.decode()}"] = [rsa_record()]
    return records


def canonicalization(n: int) -> tuple[bytes, bytes]:
    """The c= of message ``n``'s signature, in the shares of the shared corpora's 3,408
    signatures: 86% relaxed/relaxed, 13% relaxed/simple, 1% simple/simple."""
    share = n % 100
    if share < 86:
        return b"relaxed", b"relaxed"
    return (b"relaxed", b"simple") if share < 99 else (b"simple", b"simple")


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
    form = canonicalization(n)
    if roll < 0.6:
        message = sign(message, name, "rsa", canonicalize=form)
    elif roll < 0.7:
        message = sign(message, name, "ed", ed25519=True, canonicalize=form)
    if n * 37 % 100 < ARC_SHARE:
        message = forwarded(message, name)
    return b"\n".join(top) + b"\n" + message


ARC_SHARE = 19  # percent of the mail sealed by two ARC sets, as Phishing Pot's 1,231 of 6,497
FORWARDER = b"bench-forwarder.net"


def forwarded(message: bytes, name: str) -> bytes:
    """``message`` as it leaves two hops of a forwarder that records what it saw and seals
    it (ARC, RFC 8617), as Microsoft's seal most of the corpora's sealed mail."""
    import dkim  # dkimpy's arc_sign (with authres, a dev dependency)
    from tests.auth.signing import RSA_PRIVATE

    for hop in (1, 2):
        server = b"mx%d.%s" % (hop, FORWARDER)
        results = b"Authentication-Results: %s; spf=pass smtp.mailfrom=%s;\n dkim=pass" % (
            server,
            name.encode(),
        )
        results += b" header.d=%s; dmarc=pass header.from=%s%s\n" % (
            name.encode(),
            name.encode(),
            b"; arc=pass" if hop == 2 else b"",
        )
        message = results + message
        sealed = dkim.arc_sign(
            message,
            b"arc",
            FORWARDER,
            RSA_PRIVATE,
            server,
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
            linesep=b"\n",
        )
        message = b"".join(sealed) + message
    return message


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
    messages = [parse_message(raw, Envelope(), LIMITS) for raw in raws]
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
        msg = parse_message(raw, Envelope(), LIMITS)
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
    scan's worker builds and runs it (cohorts of ``batch.COHORT`` scanned stage by stage,
    ``batch.WINDOW`` messages in flight, start-up frozen out of the collector's view and
    its young threshold ``batch.SCAN_GC_YOUNG`` where the scan sets one),
    authentication off and on, two passes each (the first from an empty DNS cache).  Per
    message: the main thread's CPU for the whole scan (and the other threads': the
    store's, the DNS client's), for the detector's own work
    (``start()``, with the checks when every answer is cached, and the checks after a
    wait), and for the garbage collector; and the engine's stage times of the warm pass
    (those with no wait in them)."""
    import contextlib
    import gc

    from seawall import batch
    from seawall.batch import COHORT, WINDOW, _overlay, _shared_counts
    from seawall.config import load_config
    from seawall.engine import WAIT_STAGES, build_engine

    young = getattr(batch, "SCAN_GC_YOUNG", 0)
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
        gate = asyncio.Semaphore(WINDOW // COHORT)

        async def cohort(at: int) -> None:
            async with gate:
                await engine.scan_many(raws[at : at + COHORT])

        await asyncio.gather(*(cohort(at) for at in range(0, len(raws), COHORT)))
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
                for when in ("cold", "warm"):
                    spent.update(detector=0.0, gc=0.0)
                    engine.times = type(engine.times)()
                    threshold = gc.get_threshold()
                    gc.freeze()
                    gc.set_threshold(max(threshold[0], young), *threshold[1:])
                    try:
                        c0, p0 = time.thread_time(), time.process_time()
                        loop.run_until_complete(scan(engine))
                        c1, p1 = time.thread_time(), time.process_time()
                    finally:
                        gc.set_threshold(*threshold)
                        gc.unfreeze()
                    n = len(raws)
                    out[f"{name}_{when}_us_per_message"] = {
                        "scan": round((c1 - c0) / n * 1e6),
                        "other_threads": round(((p1 - p0) - (c1 - c0)) / n * 1e6),
                        "auth_detector": round(spent["detector"] / n * 1e6),
                        "gc": round(spent["gc"] / n * 1e6),
                    }
                out[f"{name}_warm_stages_us_per_message"] = {
                    stage: round(seconds / n * 1e6, 1)
                    for stage, seconds in sorted(engine.times.seconds.items())
                    if stage not in WAIT_STAGES
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


def scan_env(pycache: Path, src: Path) -> dict[str, str]:
    """:func:`installed_env`, with the scans' ``seawall`` imported from ``src``."""
    env = installed_env(pycache)
    env["PYTHONPATH"] = os.pathsep.join([str(src.resolve()), env.get("PYTHONPATH", "")])
    return env


def ratios(
    new: str, old: str, rates: dict[str, list[float]], cpu: dict[str, list[float]]
) -> dict[str, Any]:
    """Round by round, ``new``'s rate over ``old``'s (wall) and ``old``'s CPU per message
    over ``new``'s (the throughput CPU alone allows), with their medians."""
    walls = [n / o for n, o in zip(rates[new], rates[old], strict=True)]
    by_cpu = [o / n for n, o in zip(cpu[new], cpu[old], strict=True)]
    return {
        f"ratio_{new}_to_{old}": {
            "per_round": [round(r, 3) for r in walls],
            "median": round(statistics.median(walls), 3),
        },
        f"cpu_ratio_{new}_to_{old}": {
            "per_round": [round(r, 3) for r in by_cpu],
            "median": round(statistics.median(by_cpu), 3),
        },
    }


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
    parser.add_argument("--base", help="another tree's src: its scans alternate with this one's")
    parser.add_argument(
        "--scans-only", action="store_true", help="only the scans on and off (NSD straight)"
    )
    parser.add_argument(
        "--learned",
        action="store_true",
        help="the scans' state learned from the SpamAssassin train half first (as a site "
        "runs it: the classifier on), not empty",
    )
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        k: getattr(args, k) for k in ("messages", "domains", "delay_ms", "learned", "base")
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
            if not args.scans_only:
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
            }
            if not args.scans_only:
                configs[f"on_{args.delay_ms}ms"] = write_config(
                    root / "slow.toml", root / "state", slow
                )
            trees = {"": scan_env(root / "pycache", ROOT / "src")}
            if args.base:  # the base tree's scans first in each round
                trees = {"base_": scan_env(root / "pycache", Path(args.base)), **trees}
            runs = [
                (tree + name, env, config)
                for tree, env in trees.items()
                for name, config in configs.items()
            ]
            for _, env, config in runs:  # unmeasured: compiles the modules, reads the mail
                scan_rate(config, root / "maildir", args.messages, env)
            rates: dict[str, list[float]] = {run: [] for run, _, _ in runs}
            cpu: dict[str, list[float]] = {run: [] for run, _, _ in runs}
            for _ in range(args.rounds):
                for run, env, config in runs:
                    rate, cpu_ms = scan_rate(config, root / "maildir", args.messages, env)
                    rates[run].append(rate)
                    cpu[run].append(cpu_ms)
            report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            report["scan_msgs_per_s"] = {k: [round(r, 1) for r in v] for k, v in rates.items()}
            report["scan_cpu_ms_per_message"] = {
                k: [round(c, 3) for c in v] for k, v in cpu.items()
            }
            for tree in trees:
                for name in configs:
                    if name != "off":
                        report |= ratios(f"{tree}{name}", f"{tree}off", rates, cpu)
            if args.base:  # this tree's CPU per message against the base's, round by round
                for name in configs:
                    report |= ratios(name, f"base_{name}", rates, cpu)
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
