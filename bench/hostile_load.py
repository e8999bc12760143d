"""``python -m bench.hostile load``: Postfix with Seawall's milter, alone and beside hostile
connections held against every front end (the figure "Load held" of issue 15).

Two ways to send the SpamAssassin test half through a real Postfix (discard transport):

- open loop (``--rate MSG_PER_H``): messages on a fixed schedule, message k at
  ``start + k / rate``, each on its own SMTP connection as a bot sends it, by a pool of
  ``--clients`` threads; a thread takes the next planned message when it is free, so when
  all are busy sends fall behind schedule and the lag is measured rather than hidden;
- closed loop (``--rate 0``): 8 clients as fast as they can, each on one SMTP connection.

Rounds alone (A) and hostile (B) in turn, A B B A: adjacent hostile rounds share one holder,
so with four rounds the hostile connections are held for half the run without a break and
each side gets half the run, in two blocks that straddle it (this machine's load drifts).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import re
import selectors
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
from tests.integration.postfix import Postfix
from tests.integration.seawall_proc import Seawall

from bench.load import corpus_samples

MIB = 2**20
PEAK_MSG_PER_H = 23_556  # the simulated hour's peak (docs/benchmarks.md, the full replay)
STUCK_S = 60.0


def loopback(i: int) -> str:
    return f"127.0.1.{i % 40 + 2}"


def connect(port: int, i: int) -> socket.socket:
    sock = socket.socket()
    sock.bind((loopback(i), 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


class Hostile:
    """Keeps ``per_frontend`` connections open against each front end, half silent and half
    trickling a byte every 2 s; a connection Seawall closes is opened again.

    The holder runs in a process of its own, so that its thousands of sockets do not take
    the interpreter from the SMTP clients whose latency is measured; its counts are shared.
    """

    def __init__(self, ports: dict[str, int], per_frontend: int) -> None:
        self.ports = ports
        self.names = list(ports)
        self.per_frontend = per_frontend
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        # held, failed opens, then reopened per front end
        self.counts: Any = ctx.Array("q", 2 + len(self.names), lock=False)
        self.process = ctx.Process(target=self.run, daemon=True)

    @property
    def held(self) -> int:
        return int(self.counts[0])

    @property
    def failed_opens(self) -> int:
        return int(self.counts[1])

    @property
    def reopened_by(self) -> dict[str, int]:
        return {name: int(self.counts[2 + i]) for i, name in enumerate(self.names)}

    @property
    def reopened(self) -> int:
        return sum(self.reopened_by.values())

    def run(self) -> None:
        selector = selectors.DefaultSelector()

        def open_one(name: str, i: int) -> None:
            try:
                sock = connect(self.ports[name], i)
            except OSError:
                self.counts[1] += 1
                return
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, (name, i))

        for name in self.names:
            for i in range(self.per_frontend):
                open_one(name, i)
        last_trickle = time.monotonic()
        while not self.stop.is_set():
            for key, _ in selector.select(0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:  # closed by Seawall (timeout or room made): come back
                    selector.unregister(sock)
                    sock.close()
                    self.counts[2 + self.names.index(key.data[0])] += 1
                    open_one(*key.data)
            if time.monotonic() - last_trickle > 2:
                last_trickle = time.monotonic()
                for key in list(selector.get_map().values()):
                    if key.data[1] % 2:
                        with contextlib.suppress(OSError):
                            key.fileobj.send(b"X")  # type: ignore[union-attr]
            self.counts[0] = len(selector.get_map())
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def __enter__(self) -> Hostile:
        self.process.start()
        deadline = time.monotonic() + 60
        want = self.per_frontend * len(self.ports)
        while self.held < want and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


class Timeline:
    """Every 30 s for the whole run: the workers' RSS (MiB, summed), the load average, the
    round under way and how many hostile connections are held."""

    def __init__(self, sw: Seawall) -> None:
        self.sw = sw
        self.procs = workers(sw)
        self.pids = sorted(p.pid for p in self.procs)
        self.phase = "warm-up"
        self.hostile: Hostile | None = None
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def rss_cpu(self) -> tuple[list[float], float]:
        """Each worker's RSS (MiB) and their CPU seconds so far, summed."""
        for _ in range(3):
            try:
                rss = [round(p.memory_info().rss / MIB, 1) for p in self.procs]
                cpu = sum(sum(p.cpu_times()[:2]) for p in self.procs)
                return rss, cpu
            except psutil.NoSuchProcess:  # a worker was restarted: follow the new one
                self.procs = workers(self.sw)
        return [], 0.0

    def run(self) -> None:
        while True:
            each, cpu = self.rss_cpu()
            self.samples.append(
                {
                    "t_s": round(time.monotonic() - self.started),
                    "phase": self.phase,
                    "rss_mib": round(sum(each), 1),
                    "rss_each_mib": each,
                    "workers_cpu_s": round(cpu, 1),
                    "load1": round(os.getloadavg()[0], 2),
                    "hostile_held": self.hostile.held if self.hostile is not None else 0,
                }
            )
            if self.stop.wait(30):
                return

    def __enter__(self) -> Timeline:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def workers(sw: Seawall) -> list[psutil.Process]:
    pids = {int(p) for p in re.findall(r"worker (\d+) serving", sw.log())}
    children = psutil.Process(sw.proc.pid).children()  # type: ignore[union-attr]
    return [p for p in children if p.pid in pids]


class Outcomes:
    """Answers of one round: each transaction's outcome, latency and lag behind schedule."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.latencies: list[float] = []
        self.lags: list[float] = []

    def add(self, outcome: str, latency: float, lag: float = 0.0) -> None:
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            self.latencies.append(latency)
            self.lags.append(lag)

    def summary(self, spent: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        lags = sorted(self.lags)
        # A greylisted message ("451 4.7.1 Try again later") got its verdict; any other
        # tempfail (Postfix's milter_default_action, an unscanned message) or error did not.
        lost = sum(
            n
            for o, n in self.counts.items()
            if o.startswith("error") or (o.startswith("4") and "Try again later" not in o)
        )
        return {
            "messages": len(ordered),
            "msgs_per_s": round(len(ordered) / spent, 2),
            "outcomes": self.counts,
            "lost": lost,
            "stuck": sum(1 for t in ordered if t > STUCK_S),
            "p50_ms": round(quantile(ordered, 0.5) * 1000, 1),
            "p99_ms": round(quantile(ordered, 0.99) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else 0.0,
            "lag_p50_ms": round(quantile(lags, 0.5) * 1000, 1),
            "lag_p99_ms": round(quantile(lags, 0.99) * 1000, 1),
            "lag_max_ms": round(lags[-1] * 1000, 1) if lags else 0.0,
            "lag_over_1s": sum(1 for t in lags if t > 1.0),
        }


def quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def reply_text(error: bytes | str) -> str:
    return error.decode(errors="replace") if isinstance(error, bytes) else error


def send_one(port: int, body: bytes) -> str:
    """One message on its own SMTP connection; the outcome of its DATA (or what broke)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            smtp.ehlo("bench.example.net")
            try:
                smtp.sendmail("sender@example.net", ["rcpt@example.org"], body)
            except smtplib.SMTPResponseException as exc:
                text = reply_text(exc.smtp_error).split()
                return f"{exc.smtp_code} {' '.join(text[1:4])}"  # "451 Try again later"
            return "accepted"
    except (smtplib.SMTPException, OSError) as exc:
        return f"error: {type(exc).__name__}"


def scheduled_smtp(
    port: int, samples: Sequence[Any], seconds: float, rate_per_s: float, clients: int
) -> dict[str, Any]:
    """Open loop: ``seconds * rate_per_s`` messages, message k planned at ``k / rate_per_s``
    from the start.  The latency is a transaction's own (connect to the DATA answer); the
    lag is how late it started against its planned time."""
    planned = int(seconds * rate_per_s)
    outcomes = Outcomes()
    lock = threading.Lock()
    next_k = [0]
    start = time.perf_counter() + 0.5

    def client() -> None:
        while True:
            with lock:
                k = next_k[0]
                next_k[0] += 1
            if k >= planned:
                return
            due = start + k / rate_per_s
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            outcome = send_one(port, samples[k % len(samples)].body)
            outcomes.add(outcome, time.perf_counter() - t0, t0 - due)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drained = time.perf_counter() - start
    row = outcomes.summary(seconds)
    row |= {"planned": planned, "offered_msgs_per_s": round(rate_per_s, 3)}
    row["drain_s"] = round(drained - seconds, 1)  # the last answers after the window
    return row


def timed_smtp(port: int, samples: Sequence[Any], seconds: float) -> dict[str, Any]:
    """Closed loop: 8 SMTP clients, each on one connection, as fast as they can."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    outcomes = Outcomes()
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
                text = reply_text(exc.smtp_error).split()
                outcome = f"{exc.smtp_code} {' '.join(text[1:4])}"
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.rset()  # type: ignore[union-attr]
            except (smtplib.SMTPException, OSError) as exc:
                outcome = f"error: {type(exc).__name__}"
                smtp = None
            outcomes.add(outcome, time.perf_counter() - t0)
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes.summary(time.perf_counter() - started)


def log_figures(path: Path, offset: int) -> dict[str, Any]:
    """From the server's log since ``offset``: the scan times it logged per message (wall
    clock in the worker, waiting for its event loop included), and its ERROR lines."""
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    scans = sorted(float(ms) for ms in re.findall(r" seawall\.scan: .* ms=([\d.]+)", text))
    return {
        "scan_ms_p50": round(quantile(scans, 0.5), 1),
        "scan_ms_p99": round(quantile(scans, 0.99), 1),
        "scan_ms_max": round(scans[-1], 1) if scans else 0.0,
        "log_errors": len(re.findall(r"^\S+ \S+ \[\d+\] ERROR ", text, re.MULTILINE)),
        "log_tracebacks": text.count("Traceback (most recent call last)"),
    }


def blocks(order: Sequence[str]) -> Iterator[tuple[str, int]]:
    """Adjacent rounds of one kind as (kind, count): A B B A -> A 1, B 2, A 1."""
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and order[j] == order[i]:
            j += 1
        yield order[i], j - i
        i = j


def load(args: argparse.Namespace) -> dict[str, Any]:
    samples = [s for s in corpus_samples(train=False) if len(s.body) < 1_000_000]
    random.Random(15).shuffle(samples)  # the corpus lists ham, then spam: mix them evenly
    per_round = args.seconds / args.rounds
    rate = args.rate / 3600
    result: dict[str, Any] = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "hostile_per_frontend": args.hostile,
        "loop": "open" if rate else "closed",
        "offered_msg_per_h": args.rate,
        "clients": args.clients if rate else 8,
        "load1_start": round(os.getloadavg()[0], 2),
    }

    def one_round(port: int) -> dict[str, Any]:
        if rate:
            return scheduled_smtp(port, samples, per_round, rate, args.clients)
        return timed_smtp(port, samples, per_round)

    order = (["alone", "hostile", "hostile", "alone"] * args.rounds)[: args.rounds]
    runs: dict[str, list[dict[str, Any]]] = {"alone": [], "hostile": []}
    with tempfile.TemporaryDirectory(prefix="seawall-hostile-") as tmp:
        os.chmod(tmp, 0o755)  # Postfix's own user walks into its folder
        sw = Seawall(root=Path(tmp) / "sw", state=Path(tmp) / "state", workers=2)
        sw.write_config()
        with memtrace(args.memtrace):
            sw.start()
        postfix = Postfix(
            root=Path(tmp) / "postfix",
            sink_port=1,
            milter=f"inet:127.0.0.1:{sw.ports['milter']}",
            extra={"default_transport": "discard", "relay_transport": "discard"},
        )
        postfix.start()
        try:
            with Timeline(sw) as timeline:
                # Warm-up: smtpd processes, the milter's connections, the caches.
                one_round_warm = timed_smtp(postfix.smtp_port, samples[:200], 10)
                result["warm_up"] = {"messages": one_round_warm["messages"]}
                n = 0
                for kind, count in blocks(order):
                    hold = Hostile(dict(sw.ports), args.hostile) if kind == "hostile" else None
                    with hold if hold is not None else contextlib.nullcontext():
                        timeline.hostile = hold
                        for _ in range(count):
                            n += 1
                            timeline.phase = f"{n} {kind}"
                            held_before = hold.held if hold is not None else 0
                            log_at = sw.log_file.stat().st_size
                            cpu_at = timeline.rss_cpu()[1]
                            rows = one_round(postfix.smtp_port)
                            rows["round"] = n
                            rows["workers_cpu_s"] = round(timeline.rss_cpu()[1] - cpu_at, 1)
                            rows |= log_figures(sw.log_file, log_at)
                            if hold is not None:
                                rows["hostile_held_at_start"] = held_before
                                rows["hostile_held_at_end"] = hold.held
                                rows["hostile_reopened_so_far"] = hold.reopened
                                rows["hostile_failed_opens"] = hold.failed_opens
                            runs[kind].append(rows)
                            print(f"  {n} {kind}: {rows}", file=sys.stderr)
                        timeline.hostile = None
                    if hold is not None:
                        result.setdefault("hostile_reopened", []).append(hold.reopened)
                        result.setdefault("hostile_reopened_by", []).append(hold.reopened_by)
                        result.setdefault("hostile_failed_opens", []).append(hold.failed_opens)
                timeline.phase = "end"
            result["postfix_queued_at_end"] = postfix.queued()
            result["workers_at_start"] = timeline.pids
            result["workers_at_end"] = sorted(p.pid for p in workers(sw))
        finally:
            postfix.stop()
            sw.stop()
    result["timeline"] = timeline.samples
    result["load1_end"] = round(os.getloadavg()[0], 2)
    for kind, side in runs.items():
        result[kind] = summarise(side)
    pairs = zip(result["hostile"]["msgs_per_s"], result["alone"]["msgs_per_s"], strict=False)
    result["throughput_ratio_median"] = round(statistics.median(h / a for h, a in pairs), 3)
    result["rss_growth_last_300s_mib"] = growth(timeline.samples, 300)
    return result


@contextlib.contextmanager
def memtrace(folder: str | None) -> Iterator[None]:
    """Dev-only: with a folder, Seawall's workers record their heap there every minute
    (bench/memtrace/sitecustomize.py and its variables); the bench's own process is not."""
    if not folder:
        yield
        return
    saved = dict(os.environ)
    here = Path(__file__).resolve().parent / "memtrace"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(here), saved.get("PYTHONPATH", "")])
    os.environ["SEAWALL_BENCH_MEMTRACE"] = str(Path(folder).resolve())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's rounds together; p50/p99 are the rounds' (their medians, not pooled)."""
    out: dict[str, Any] = {
        "messages": sum(r["messages"] for r in rows),
        "msgs_per_s": [r["msgs_per_s"] for r in rows],
        "lost": sum(r["lost"] for r in rows),
        "stuck": sum(r["stuck"] for r in rows),
        "p50_ms": [r["p50_ms"] for r in rows],
        "p99_ms": [r["p99_ms"] for r in rows],
        "max_ms": max(r["max_ms"] for r in rows),
        "lag_max_ms": max(r["lag_max_ms"] for r in rows),
        "lag_over_1s": sum(r["lag_over_1s"] for r in rows),
        "scan_ms_p50": [r["scan_ms_p50"] for r in rows],
        "scan_ms_p99": [r["scan_ms_p99"] for r in rows],
        "workers_cpu_s": [r["workers_cpu_s"] for r in rows],
        "log_tracebacks": sum(r["log_tracebacks"] for r in rows),
        "rounds": rows,
    }
    if rows and "planned" in rows[0]:
        out["planned"] = sum(r["planned"] for r in rows)
    return out


def growth(samples: list[dict[str, Any]], window_s: float) -> float | None:
    """RSS at the last sample less RSS ``window_s`` before it (None if the run was shorter)."""
    if not samples:
        return None
    last = samples[-1]
    earlier = [s for s in samples if last["t_s"] - s["t_s"] >= window_s]
    if not earlier:
        return None
    return round(float(last["rss_mib"]) - float(earlier[-1]["rss_mib"]), 1)


def add_load_parser(sub: Any) -> None:
    run = sub.add_parser("load", help="Postfix with the milter, alone and hostile in turn")
    run.add_argument("--seconds", type=float, default=120.0, help="of load, all rounds")
    run.add_argument("--hostile", type=int, default=500, help="connections per front end")
    run.add_argument("--rounds", type=int, default=4, help="alone and hostile: A B B A")
    run.add_argument(
        "--rate",
        type=float,
        default=2 * PEAK_MSG_PER_H,
        help="offered msg/h on a fixed schedule (default: 2x the measured peak); 0: closed loop",
    )
    run.add_argument("--clients", type=int, default=64, help="SMTP client threads (open loop)")
    run.add_argument(
        "--memtrace",
        metavar="DIR",
        help="dev-only: the workers write their heap (tracemalloc, malloc_info) to DIR",
    )
