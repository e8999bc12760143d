"""``seawall serve`` under hostile clients: worst-case memory per front end, and load held.

    .venv/bin/python -m bench.hostile memory
    .venv/bin/python -m bench.hostile load [--seconds 120] [--rounds 4] [--hostile 500]
                                           [--rate 47112] [--clients 64]
    .venv/bin/python -m bench.hostile ab --base REV [--rounds 4]
    .venv/bin/python -m bench.hostile input [--repeat 3] [--corpus]   (bench/hostile_input.py)

``memory``: one worker with the default limits.  For each front end, ``max_connections``
connections each hold the most a connection may hold while it is read (an HTTP head one
byte short of ``max_header_bytes``, a milter packet one byte short of ``max_packet_bytes``,
a spamd header line one byte short of 8 KiB, a policy request one line short of 64 KiB),
then uploads hold ``max_bytes_in_flight`` of message bodies.  The worker's RSS growth is
printed beside the formula of docs/serve.md.  The header timeout is raised for the run, so
that the sweeper does not close the connections before they are measured.

``load`` (bench/hostile_load.py): a real Postfix with the milter (discard transport) sends
the SpamAssassin test half for ``--seconds`` in ``--rounds`` rounds, alone and hostile in
turn (A B B A; adjacent hostile rounds share one holder): hostile while ``--hostile``
connections per front end (http, milter, spamd, policy) are held open from 40 loopback
addresses, half silent and half trickling a byte every 2 s, each reopened as soon as
Seawall closes it.  Open loop by default: ``--rate`` msg/h (2x the simulated hour's measured
peak, 23,556 msg/h) on a fixed schedule, one SMTP connection per message, from a pool of
``--clients`` threads; ``--rate 0`` is the closed loop of 8 clients as fast as they can.
Reports per round messages/s, messages lost (no SMTP answer, or a tempfail other than a
greylist verdict's) and stuck (over 60 s), p50/p99 transaction latency, how far sends fell
behind schedule, and for the whole run the workers' RSS and the load average every 30 s.

``ab``: /checkv2 throughput at concurrency 16 of this tree against ``REV`` (A B B A rounds,
each side's ``seawall serve`` with 2 workers run from its own ``src/``).

Writes .cache/bench/hostile-<mode>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from tests.integration.seawall_proc import Seawall

from bench.hostile_input import add_input_parser, hostile_input
from bench.hostile_load import add_load_parser, connect, load
from bench.load import corpus_samples, run_load

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def worker_of(sw: Seawall) -> psutil.Process:
    return psutil.Process(int(re.findall(r"worker (\d+) serving", sw.log())[-1]))


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worst_head(name: str, limits: dict[str, int]) -> bytes:
    """What one connection of ``name`` may hold unfinished (the codec's limit, one short)."""
    if name == "http":
        head = b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nX-Pad: "
        return head + b"a" * (limits["max_header_bytes"] - len(head) - 1)
    if name == "milter":
        size = limits["max_packet_bytes"]
        return struct.pack(">I", size) + b"B" + b"x" * (size - 2)
    if name == "spamd":
        return b"CHECK SPAMC/1.5\r\nX-Pad: " + b"a" * (8192 - 40)
    line = b"x=" + b"a" * 8000 + b"\n"
    return b"request=smtpd_access_policy\n" + line * 7  # under 64 KiB, never finished


def memory(args: argparse.Namespace) -> dict[str, Any]:
    """Each front end on a fresh server (freed memory stays in a process and would hide the
    next one's growth)."""
    rows: dict[str, Any] = {}
    for name in ("http", "milter", "spamd", "policy", "bodies_in_flight"):
        with tempfile.TemporaryDirectory(prefix="seawall-hostile-") as tmp:
            sw = Seawall(root=Path(tmp) / "sw", state=Path(tmp) / "state", workers=1)
            # Only the deadlines are moved, so that nothing is closed before it is measured.
            sw.write_config(header_timeout_s=600.0, body_timeout_s=600.0)
            sw.start()
            try:
                rows[name] = measure(sw, name)
            finally:
                sw.stop()
        print(f"  {name:<6} {rows[name]}", file=sys.stderr)
    return rows


def measure(sw: Seawall, name: str) -> dict[str, Any]:
    from seawall.config import load_config

    config = load_config(sw.config_file)
    serve = config.serve
    proc = worker_of(sw)
    time.sleep(1)
    before = proc.memory_info().rss
    socks = []
    if name == "bodies_in_flight":
        # Uploads that said their length and sent all but their last byte.
        size = config.limits.max_message_bytes
        count = serve.max_bytes_in_flight // size + 2
        for i in range(count):
            sock = connect(sw.ports["http"], i)
            sock.sendall(b"POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            with contextlib.suppress(OSError):
                sock.sendall(b"Subject: x\r\n\r\n" + b"a" * (size - 15))
            socks.append(sock)
        time.sleep(5)
        refused = 0
        for sock in socks:
            sock.settimeout(0.2)
            with contextlib.suppress(OSError):
                refused += sock.recv(64).startswith(b"HTTP/1.1 503")
        row = {"uploads": count, "answered_503": refused, "bytes_each": size}
        formula = serve.max_bytes_in_flight
    else:
        limits = {
            "max_header_bytes": serve.max_header_bytes,
            "max_packet_bytes": serve.milter.max_packet_bytes,
        }
        per_conn = {
            "http": serve.max_header_bytes,
            "milter": serve.milter.max_packet_bytes,
            "spamd": 8192,
            "policy": 65536,
        }
        payload = worst_head(name, limits)
        for i in range(serve.max_connections):
            sock = connect(sw.ports[name], i)
            with contextlib.suppress(OSError):
                sock.sendall(payload)
            socks.append(sock)
        time.sleep(3)
        row = {"connections": serve.max_connections, "bytes_each": len(payload)}
        formula = serve.max_connections * per_conn[name]
    row["rss_growth_mib"] = round((proc.memory_info().rss - before) / MIB, 1)
    row["formula_mib"] = round(formula / MIB, 1)
    row["worker_rss_mib"] = round(proc.memory_info().rss / MIB, 1)
    for sock in socks:
        sock.close()
    return row


def ab(args: argparse.Namespace) -> dict[str, Any]:
    from bench.ab import worktree

    base = worktree(args.base)
    samples = corpus_samples(train=False, limit=1500)
    sides = {"base": base / "src", "this": ROOT / "src"}
    rates: dict[str, list[float]] = {"base": [], "this": []}
    order = ["base", "this", "this", "base"] * ((args.rounds + 3) // 4)
    with tempfile.TemporaryDirectory(prefix="seawall-ab-") as tmp:
        for n, side in enumerate(order[: args.rounds * 2]):
            old = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = str(sides[side])
            try:
                sw = Seawall(root=Path(tmp) / f"{side}{n}", state=Path(tmp) / f"s{n}", workers=2)
                sw.write_config()
                sw.start()
            finally:
                if old is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = old
            try:
                url = sw.url("/checkv2")
                run_load(url, samples[:200], 16)
                row = run_load(url, samples, 16).summary()
                rates[side].append(row["msgs_per_s"])
                print(
                    f"  {side}: {row['msgs_per_s']} msg/s ({row['errors']} errors)", file=sys.stderr
                )
            finally:
                sw.stop()
    return {
        "base": args.base,
        "msgs_per_s": rates,
        "median_this_over_base": round(
            statistics.median(rates["this"]) / statistics.median(rates["base"]), 3
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("memory")
    add_load_parser(sub)
    add_input_parser(sub)
    versus = sub.add_parser("ab")
    versus.add_argument("--base", required=True)
    versus.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    if args.mode in ("memory", "load"):
        raise_nofile()
    result = {"memory": memory, "load": load, "ab": ab, "input": hostile_input}[args.mode](args)
    out = ROOT / ".cache" / "bench" / f"hostile-{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
