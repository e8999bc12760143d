"""``seawall serve`` under hostile clients: worst-case memory per front end, and load held.

    .venv/bin/python -m bench.hostile memory
    .venv/bin/python -m bench.hostile load [--seconds 120] [--rounds 4] [--hostile 500]
    .venv/bin/python -m bench.hostile ab --base REV [--rounds 4]

``memory``: one worker with the default limits.  For each front end, ``max_connections``
connections each hold the most a connection may hold while it is read (an HTTP head one
byte short of ``max_header_bytes``, a milter packet one byte short of ``max_packet_bytes``,
a spamd header line one byte short of 8 KiB, a policy request one line short of 64 KiB),
then uploads hold ``max_bytes_in_flight`` of message bodies.  The worker's RSS growth is
printed beside the formula of docs/serve.md.  The header timeout is raised for the run, so
that the sweeper does not close the connections before they are measured.

``load``: a real Postfix with the milter (discard transport) sends the SpamAssassin test
half as fast as 8 SMTP clients can (more than twice the peak rate of the replays measured
in docs/benchmarks.md), for ``--seconds`` in ``--rounds`` rounds, alone and hostile in turn
(A B B A): hostile while ``--hostile`` connections per front end (http, milter, spamd,
policy) are held open from 40 loopback addresses, half silent and half trickling a byte
every 2 s, each reopened as soon as Seawall closes it.  Reports messages/s per round,
messages lost (no SMTP answer, or a tempfail other than a greylist verdict's) and stuck
(over 60 s), and the workers' RSS every 30 s.

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
import selectors
import smtplib
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from tests.integration.postfix import Postfix
from tests.integration.seawall_proc import Seawall

from bench.load import corpus_samples, run_load

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def worker_of(sw: Seawall) -> psutil.Process:
    return psutil.Process(int(re.findall(r"worker (\d+) serving", sw.log())[-1]))


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def loopback(i: int) -> str:
    return f"127.0.1.{i % 40 + 2}"


def connect(port: int, i: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((loopback(i), 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


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
    raise_nofile()
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


class Hostile:
    """Keeps ``per_frontend`` connections open against each front end, half silent and half
    trickling; a connection Seawall closes is opened again."""

    def __init__(self, ports: dict[str, int], per_frontend: int) -> None:
        self.ports = ports
        self.per_frontend = per_frontend
        self.selector = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.reopened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self, name: str, i: int) -> None:
        try:
            sock = connect(self.ports[name], i)
        except OSError:
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, (name, i))

    def run(self) -> None:
        for name in self.ports:
            for i in range(self.per_frontend):
                self.open(name, i)
        last_trickle = time.monotonic()
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:  # closed by Seawall (timeout or room made): come back
                    self.selector.unregister(sock)
                    sock.close()
                    self.reopened += 1
                    self.open(*key.data)
            if time.monotonic() - last_trickle > 2:
                last_trickle = time.monotonic()
                for key in list(self.selector.get_map().values()):
                    if key.data[1] % 2:
                        with contextlib.suppress(OSError):
                            key.fileobj.send(b"X")  # type: ignore[union-attr]
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def __enter__(self) -> Hostile:
        self.thread.start()
        time.sleep(3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    @property
    def held(self) -> int:
        return len(self.selector.get_map())


def load(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    samples = [s for s in corpus_samples(train=False) if len(s.body) < 1_000_000]
    result: dict[str, Any] = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "hostile_per_frontend": args.hostile,
    }
    with tempfile.TemporaryDirectory(prefix="seawall-hostile-") as tmp:
        os.chmod(tmp, 0o755)  # Postfix's own user walks into its folder
        sw = Seawall(root=Path(tmp) / "sw", state=Path(tmp) / "state", workers=2)
        sw.write_config()
        sw.start()
        postfix = Postfix(
            root=Path(tmp) / "postfix",
            sink_port=1,
            milter=f"inet:127.0.0.1:{sw.ports['milter']}",
            extra={"default_transport": "discard", "relay_transport": "discard"},
        )
        postfix.start()
        try:
            timed_smtp(postfix.smtp_port, samples[:100], 5)  # warm-up: smtpd processes
            # Rounds alone and hostile in turn (A B B A ...): this machine's load moves.
            order = (["alone", "hostile", "hostile", "alone"] * args.rounds)[: args.rounds]
            runs: dict[str, list[dict[str, Any]]] = {"alone": [], "hostile": []}
            for run in order:
                hold = Hostile(dict(sw.ports), args.hostile) if run == "hostile" else _nothing()
                with hold as hostile, RssSampler(workers(sw)) as rss:
                    rows = timed_smtp(postfix.smtp_port, samples, args.seconds / args.rounds)
                    if hostile is not None:
                        rows["hostile_held_at_end"] = hostile.held
                        rows["hostile_reopened"] = hostile.reopened
                rows["worker_rss_mib_every_30s"] = rss.samples
                runs[run].append(rows)
                print(f"  {run}: {rows}", file=sys.stderr)
        finally:
            postfix.stop()
            sw.stop()
    for run, rows in runs.items():
        result[run] = {
            "messages": sum(r["messages"] for r in rows),
            "msgs_per_s": [r["msgs_per_s"] for r in rows],
            "lost": sum(r["lost"] for r in rows),
            "stuck": sum(r["stuck"] for r in rows),
            "max_ms": max(r["max_ms"] for r in rows),
            "rounds": rows,
        }
    pairs = zip(result["hostile"]["msgs_per_s"], result["alone"]["msgs_per_s"], strict=False)
    result["throughput_ratio_median"] = round(statistics.median(h / a for h, a in pairs), 3)
    return result


class RssSampler:
    """The workers' RSS (MiB, the sum over workers) every 30 s while a run lasts."""

    def __init__(self, procs: list[psutil.Process]) -> None:
        self.procs = procs
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while True:
            total = sum(p.memory_info().rss for p in self.procs)
            self.samples.append(round(total / MIB, 1))
            if self.stop.wait(30):
                return

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@contextlib.contextmanager
def _nothing() -> Any:
    yield None


def workers(sw: Seawall) -> list[psutil.Process]:
    pids = {int(p) for p in re.findall(r"worker (\d+) serving", sw.log())}
    return [p for p in psutil.Process(sw.proc.pid).children() if p.pid in pids]  # type: ignore[union-attr]


def timed_smtp(port: int, samples: Sequence[Any], seconds: float) -> dict[str, Any]:
    """The corpus through Postfix by 8 SMTP clients, again and again, for ``seconds``.

    Lost: a message without a final answer (a dropped connection, a timeout) or with a
    tempfail other than the greylist verdict's (Postfix's milter_default_action when the
    milter does not answer, a message left unscanned).  Stuck: a transaction over 60 s.
    """
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    next_index = [0]

    def client() -> None:
        smtp: smtplib.SMTP | None = None
        while time.monotonic() < deadline:
            with lock:
                sample = samples[next_index[0] % len(samples)]
                next_index[0] += 1
            t0 = time.perf_counter()
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
                    smtp.ehlo("bench.example.net")
                smtp.sendmail("sender@example.net", ["rcpt@example.org"], sample.body)
                outcome = "accepted"
            except smtplib.SMTPResponseException as exc:
                text = exc.smtp_error.decode(errors="replace").split()
                outcome = f"{exc.smtp_code} {' '.join(text[1:4])}"  # "451 Try again later"
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.rset()  # type: ignore[union-attr]
            except (smtplib.SMTPException, OSError) as exc:
                outcome = f"error: {type(exc).__name__}"
                smtp = None
            with lock:
                latencies.append(time.perf_counter() - t0)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spent = time.perf_counter() - started
    ordered = sorted(latencies)
    # A greylisted message ("451 4.7.1 Try again later") got its verdict; any other tempfail
    # (Postfix's milter_default_action, an unscanned message) or error did not.
    lost = sum(
        n
        for o, n in outcomes.items()
        if o.startswith("error") or (o.startswith("4") and "Try again later" not in o)
    )
    return {
        "messages": len(latencies),
        "msgs_per_s": round(len(latencies) / spent, 1),
        "outcomes": outcomes,
        "lost": lost,
        "stuck": sum(1 for t in latencies if t > 60),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


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
    run = sub.add_parser("load")
    run.add_argument("--seconds", type=float, default=120.0)
    run.add_argument("--hostile", type=int, default=500)
    run.add_argument("--rounds", type=int, default=4, help="alone and hostile in turn")
    versus = sub.add_parser("ab")
    versus.add_argument("--base", required=True)
    versus.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    result = {"memory": memory, "load": load, "ab": ab}[args.mode](args)
    out = ROOT / ".cache" / "bench" / f"hostile-{args.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
