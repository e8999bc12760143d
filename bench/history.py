"""What the verdict history and /metrics cost: /checkv2 throughput with them and without.

    .venv/bin/python -m bench.history [--rounds 6] [--messages 1500] [--concurrency 16]

Two ``seawall serve`` (2 workers each) on copies of one learned state (the SpamAssassin
train half): A with the defaults (the verdict history written in batches, the Prometheus
counters), B with ``[serve.history] enabled = false`` and ``[serve.metrics] enabled =
false``.  Both run the whole time; the load (bench/load.py, the test half) goes to one at
a time in interleaved rounds (A B B A ...), so both see the same machine.  Reports each
side's msg/s per round and the median of the per-round ratios A/B, and the CPU time the
server's processes (workers and tracker) spent per message, which a machine shared with
other work disturbs less than throughput; writes .cache/bench/history.json.  A third,
optional side (``--keep``) keeps every message too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from tests.integration.seawall_proc import Seawall

from bench.load import corpus_samples, run_load
from bench.serve import train

ROOT = Path(__file__).resolve().parents[1]
HEADERS = ("IP: 203.0.113.5", "From: sender@example.org", "Rcpt: user@example.net")
SIDES = {
    "history": "",
    "off": "[serve.history]\nenabled = false\n[serve.metrics]\nenabled = false\n",
    "keep": "[serve.history]\nkeep_messages = true\n",
}


def server_cpu_s(sw: Seawall) -> float:
    """CPU seconds (user and system) of ``sw``'s supervisor and every process under it."""
    assert sw.proc is not None
    root = psutil.Process(sw.proc.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="a third side keeping messages")
    args = parser.parse_args(argv)
    samples = corpus_samples(train=False, limit=args.messages)
    names = ["history", "off"] + (["keep"] if args.keep else [])
    with tempfile.TemporaryDirectory(prefix="seawall-bench-history-") as tmp:
        root = Path(tmp)
        learned = root / "learned"
        train(learned, root)
        servers: dict[str, Seawall] = {}
        try:
            for name in names:
                state = root / name / "state"
                shutil.copytree(learned, state)
                sw = Seawall(root / name, state, workers=2, extra=SIDES[name])
                sw.write_config(log_messages=False)
                sw.start()
                servers[name] = sw
                run_load(sw.url("/checkv2"), samples[:300], args.concurrency, headers=HEADERS)
            rates: dict[str, list[float]] = {name: [] for name in names}
            cpu_ms: dict[str, list[float]] = {name: [] for name in names}
            for r in range(args.rounds):
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    url = servers[name].url("/checkv2")
                    cpu0 = server_cpu_s(servers[name])
                    result = run_load(url, samples, args.concurrency, headers=HEADERS).summary()
                    time.sleep(1.5)  # the history's last batch of the round is written
                    spent = server_cpu_s(servers[name]) - cpu0
                    assert result["errors"] == 0, result
                    rates[name].append(result["msgs_per_s"])
                    cpu_ms[name].append(round(1000 * spent / len(samples), 3))
                    print(
                        f"round {r + 1} {name:<8} {result['msgs_per_s']:8.1f} msg/s"
                        f" {cpu_ms[name][-1]:6.2f} ms CPU/msg",
                        file=sys.stderr,
                    )
        finally:
            for sw in servers.values():
                sw.stop()
    report: dict[str, Any] = {
        "messages": len(samples),
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "msgs_per_s": rates,
        "median_msgs_per_s": {n: statistics.median(v) for n, v in rates.items()},
        "cpu_ms_per_msg": cpu_ms,
        "median_cpu_ms_per_msg": {n: statistics.median(v) for n, v in cpu_ms.items()},
    }
    for name in names[:1] + names[2:]:
        ratios = [a / b for a, b in zip(rates[name], rates["off"], strict=True)]
        report[f"median_ratio_{name}_to_off"] = round(statistics.median(ratios), 3)
        cpu = [a / b for a, b in zip(cpu_ms[name], cpu_ms["off"], strict=True)]
        report[f"median_cpu_ratio_{name}_to_off"] = round(statistics.median(cpu), 3)
    out = ROOT / ".cache" / "bench" / "history.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
