"""``seawall serve`` figures: /checkv2 against Rspamd, the milter in real Postfix, a soak.

    .venv/bin/python -m bench.serve [--skip-rspamd] [--skip-checkv2] [--skip-milter] [--soak N]

1. /checkv2 throughput and p50/p99 at concurrency 4, 16 and 64: Seawall (2 workers, the
   classifier trained on the SpamAssassin train half) and Rspamd 3.4 (2 workers), with the
   same load client (bench/load.py) and the same messages (the test half), in one run.
2. The milter in a real Postfix (discard transport, so delivery costs nothing): messages/s
   and per-message SMTP transaction time for Postfix alone, with Seawall's milter and with
   Rspamd's (its proxy worker in milter mode, forwarding to 2 normal workers): the same
   Postfix settings, clients and messages, two rounds of each in mirrored order.
3. A soak: N messages (default 100,000) through /checkv2 at concurrency 16; worker RSS at
   the start and the end, and every message answered and logged (none lost or stuck).

Writes .cache/bench/serve.json and prints it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from tests.integration.postfix import Postfix
from tests.integration.seawall_proc import Seawall

from bench.load import Sample, corpus_samples, percentile, run_load
from seawall import corpus

ROOT = Path(__file__).resolve().parents[1]
SEAWALL = [sys.executable, "-m", "seawall"]
CONCURRENCY = (4, 16, 64)


def train(state: Path, tmp: Path) -> None:
    """Learn the SpamAssassin train half into ``state`` (as ``seawall learn`` does)."""
    items = [i for i in corpus.items(corpus.SPAMASSASSIN) if corpus.in_train_split(i.path)]
    for label in ("spam", "ham"):
        (tmp / "train" / label).mkdir(parents=True, exist_ok=True)
    for item in items:
        (tmp / "train" / item.label / item.path.name).symlink_to(item.path)
    subprocess.run(
        [
            *SEAWALL,
            "learn",
            "--state",
            str(state),
            "--spam",
            str(tmp / "train" / "spam"),
            "--ham",
            str(tmp / "train" / "ham"),
        ],
        check=True,
        capture_output=True,
    )


def worker_rss_mb(sw: Seawall) -> dict[int, float]:
    assert sw.proc is not None
    out = {}
    for child in psutil.Process(sw.proc.pid).children():
        with contextlib.suppress(psutil.Error):
            out[child.pid] = round(child.memory_info().rss / 2**20, 1)
    return out


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Seawall's supervisor,
    workers and tracker)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def checkv2(sw: Seawall, samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Each concurrency in turn; beside msg/s and latency, the CPU time Seawall's processes
    spent per message (as bench.rspamd_baseline records for Rspamd): on a machine shared
    with other work the steadier figure, and what the throughput would be with both cores
    for the server and the client (``quiet_estimate_msgs_per_s``)."""
    assert sw.proc is not None
    url = sw.url("/checkv2")
    run_load(url, samples[:300], 16)  # warm-up: page cache, lazy tables, connections
    rows = []
    for level in CONCURRENCY:
        before = tree_cpu_s(sw.proc.pid)
        result = run_load(url, samples, level)
        server = tree_cpu_s(sw.proc.pid) - before
        row = result.summary()
        row["server_cpu_ms_per_msg"] = round(server * 1000 / max(1, result.requests), 3)
        row["client_cpu_ms_per_msg"] = round(result.client_cpu_s * 1000 / result.requests, 3)
        per_msg_ms = row["server_cpu_ms_per_msg"] + row["client_cpu_ms_per_msg"]
        cpus = os.cpu_count() or 1
        row["quiet_estimate_msgs_per_s"] = round(1000 * cpus / per_msg_ms, 1) if per_msg_ms else 0
        print(
            f"  seawall c={level:<3} {row['msgs_per_s']:8.1f} msg/s  p50 {row['p50_ms']:6.2f} ms"
            f"  p99 {row['p99_ms']:6.2f} ms  server {row['server_cpu_ms_per_msg']:.2f} ms CPU/msg"
            f"  errors {row['errors']}",
            file=sys.stderr,
        )
        rows.append(row)
    return rows


def soak(sw: Seawall, samples: Sequence[Sample], total: int) -> dict[str, Any]:
    """``total`` messages at concurrency 16, in chunks, sampling worker RSS between them."""
    chunk = 10_000
    run_load(sw.url("/checkv2"), samples[:500], 16)
    before_lines = sw.log().count(" seawall.scan: ")
    rss = [worker_rss_mb(sw)]
    sent = errors = 0
    started = time.perf_counter()
    while sent < total:
        n = min(chunk, total - sent)
        batch = [samples[(sent + i) % len(samples)] for i in range(n)]
        result = run_load(sw.url("/checkv2"), batch, 16)
        sent += n
        errors += result.errors
        rss.append(worker_rss_mb(sw))
        print(f"  soak {sent:>7} sent, {errors} errors, RSS {rss[-1]}", file=sys.stderr)
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    logged = sw.log().count(" seawall.scan: ") - before_lines
    with urllib_open(sw.url("/stat")) as stat:
        in_flight = json.loads(stat.read())["in_flight"]
    return {
        "messages": total,
        "seconds": round(seconds, 1),
        "msgs_per_s": round(total / seconds, 1),
        "errors": errors,
        "logged_verdicts": logged,
        "in_flight_at_end": in_flight,
        "rss_mb_start": rss[0],
        "rss_mb_end": rss[-1],
        "rss_mb_samples": rss,
    }


def urllib_open(url: str) -> Any:
    import urllib.request

    return urllib.request.urlopen(url, timeout=10)


def smtp_run(port: int, samples: Sequence[Sample], concurrency: int) -> dict[str, Any]:
    """Send every sample through Postfix; time each SMTP transaction (MAIL to end of DATA).

    The summary has the latencies themselves under ``_latencies`` (for pooling rounds)."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    local = threading.local()

    def one(sample: Sample) -> None:
        smtp = getattr(local, "smtp", None)
        if smtp is None:
            smtp = local.smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
            smtp.ehlo("bench.example.net")
        t0 = time.perf_counter()
        try:
            smtp.sendmail("sender@example.net", ["rcpt@example.org"], sample.body)
            outcome = "accepted"
        except smtplib.SMTPDataError as exc:
            outcome = str(exc.smtp_code)
            smtp.rset()
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(ms)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, samples))
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "messages": len(samples),
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "msgs_per_s": round(len(samples) / seconds, 1),
        "p50_ms": round(percentile(ordered, 50), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "outcomes": outcomes,
        "_latencies": latencies,
    }


def _pooled(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one side as one figure: all messages over all seconds, pooled percentiles."""
    ordered = sorted(ms for run in runs for ms in run["_latencies"])
    messages, seconds = sum(r["messages"] for r in runs), sum(r["seconds"] for r in runs)
    outcomes: dict[str, int] = {}
    for run in runs:
        for key, n in run["outcomes"].items():
            outcomes[key] = outcomes.get(key, 0) + n
    cpu_s = sum(run.get("_cpu_s", 0.0) for run in runs)
    return {
        "messages": messages,
        "concurrency": runs[0]["concurrency"],
        "seconds": round(seconds, 2),
        "msgs_per_s": round(messages / seconds, 1),
        "p50_ms": round(percentile(ordered, 50), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "outcomes": outcomes,
        "rounds_msgs_per_s": [r["msgs_per_s"] for r in runs],
        "filter_cpu_ms_per_msg": round(cpu_s * 1000 / messages, 3),
    }


def milter(
    milters: dict[str, str],
    samples: Sequence[Sample],
    root: Path,
    rounds: int = 2,
    cpu: dict[str, Callable[[], float]] | None = None,
) -> dict[str, Any]:
    """Postfix alone and Postfix with each of ``milters`` (name: ``inet:HOST:PORT``), the
    same Postfix settings, clients and messages; ``rounds`` passes of each, in mirrored
    order (A B C C B A ...) so a change in the machine's load falls on every side.
    ``cpu[name]`` reads the CPU seconds of that filter's processes so far: its CPU time per
    message is reported too (Postfix's own is not counted)."""
    cpu = cpu or {}
    # smtplib cannot send 8-bit bodies as bytes with non-ASCII in every case; Postfix takes
    # them raw, so send the corpus bytes unchanged and keep messages under Postfix's size limit.
    usable = [s for s in samples if len(s.body) < 1_000_000][:2000]
    discard = {"default_transport": "discard", "relay_transport": "discard"}
    sides: list[tuple[str, str | None]] = [("postfix_alone", None), *milters.items()]
    order = [side for n in range(rounds) for side in (sides if n % 2 == 0 else sides[::-1])]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in sides}
    for n, (name, milter_addr) in enumerate(order):
        postfix = Postfix(
            root=root / f"postfix-{name}-{n}", sink_port=1, milter=milter_addr, extra=discard
        )
        postfix.start()
        try:
            smtp_run(postfix.smtp_port, usable[:100], 8)  # warm-up: smtpd processes spawned
            used = cpu.get(name, lambda: 0.0)
            before = used()
            row = smtp_run(postfix.smtp_port, usable, 8)
            row["_cpu_s"] = used() - before
        finally:
            postfix.stop()
        runs[name].append(row)
        print(
            f"  postfix {name:<13}: {row['msgs_per_s']:7.1f} msg/s  p50 {row['p50_ms']:.2f}"
            f" ms  p99 {row['p99_ms']:.2f} ms  {row['outcomes']}",
            file=sys.stderr,
        )
    results: dict[str, Any] = {name: _pooled(rows) for name, rows in runs.items()}
    alone = results["postfix_alone"]
    results["added_p50_ms"] = {
        name: round(results[name]["p50_ms"] - alone["p50_ms"], 2) for name in milters
    }
    results["added_p99_ms"] = {
        name: round(results[name]["p99_ms"] - alone["p99_ms"], 2) for name in milters
    }
    if "seawall" in results and "rspamd" in results:
        results["seawall_over_rspamd"] = round(
            results["seawall"]["msgs_per_s"] / results["rspamd"]["msgs_per_s"], 2
        )
    return results


def milter_both(sw: Seawall, samples: Sequence[Sample], root: Path, *, rspamd: bool) -> Any:
    """Seawall's milter and (``rspamd``) Rspamd's proxy worker in milter mode, each in the
    same Postfix set-up, with Rspamd started beside the running Seawall."""
    assert sw.proc is not None
    pid = sw.proc.pid
    ours = {"seawall": f"inet:127.0.0.1:{sw.ports['milter']}"}
    cpu: dict[str, Callable[[], float]] = {"seawall": lambda: tree_cpu_s(pid)}
    if not rspamd:
        return milter(ours, samples, root, cpu=cpu)
    from bench.rspamd_baseline import BaselineError, group_cpu_s, milter_rspamd

    try:
        with milter_rspamd(workers=2) as (instance, port):
            cpu["rspamd"] = lambda: group_cpu_s([instance.pgid])
            return milter({**ours, "rspamd": f"inet:127.0.0.1:{port}"}, samples, root, cpu=cpu)
    except BaselineError as exc:  # rspamd missing or not starting: Seawall's figures still
        print(f"  Rspamd's milter not measured: {exc}", file=sys.stderr)
        return {**milter(ours, samples, root, cpu=cpu), "rspamd_error": str(exc)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-rspamd", action="store_true")
    parser.add_argument("--skip-milter", action="store_true")
    parser.add_argument("--skip-checkv2", action="store_true", help="/checkv2 on neither side")
    parser.add_argument("--soak", type=int, default=100_000, help="messages; 0 skips the soak")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    results["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    samples = corpus_samples(train=False)
    root = Path(tempfile.mkdtemp(prefix="seawall-bench-serve-"))
    root.chmod(0o755)
    try:
        state = root / "state"
        print("learning the train half...", file=sys.stderr)
        train(state, root)
        sw = Seawall(root=root / "seawall", state=state, workers=2)
        sw.start()
        try:
            if not args.skip_checkv2:
                print("/checkv2 (seawall serve, 2 workers)...", file=sys.stderr)
                results["seawall_checkv2"] = checkv2(sw, samples)
            if not args.skip_milter:
                print("milter through Postfix...", file=sys.stderr)
                results["milter"] = milter_both(sw, samples, root, rspamd=not args.skip_rspamd)
            if args.soak:
                print(f"soak ({args.soak} messages)...", file=sys.stderr)
                results["soak"] = soak(sw, samples, args.soak)
        finally:
            results["seawall_exit"] = sw.stop()
        if not args.skip_rspamd and not args.skip_checkv2:
            from bench.rspamd_baseline import baseline

            print("rspamd 3.4 (2 workers), same client and messages...", file=sys.stderr)
            results["rspamd"] = baseline(concurrency=CONCURRENCY, workers=2, bayes=True)
            results["ratio"] = ratios(results)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / ".cache" / "bench" / "serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "rspamd"}, indent=2))
    print(f"written to {out}", file=sys.stderr)
    return 0


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Seawall's msgs/s over Rspamd's, per concurrency, for each Rspamd phase."""
    ours = {row["concurrency"]: row["msgs_per_s"] for row in results["seawall_checkv2"]}
    out: dict[str, Any] = {}
    for phase, data in results["rspamd"].get("phases", {}).items():
        if not isinstance(data, dict) or "runs" not in data:
            continue
        theirs = {row["concurrency"]: row["msgs_per_s"] for row in data["runs"]}
        out[phase] = {c: round(ours[c] / theirs[c], 2) for c in ours if theirs.get(c)}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
