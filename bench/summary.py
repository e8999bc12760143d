"""The speed targets of ``make bench``, read back from the run's JSON files and printed last.

    .venv/bin/python -m bench.summary [--dir .cache/bench]

Three comparisons with Rspamd 3.4 (2 workers), each from figures measured side by side in one
run of one benchmark:

1. ``seawall scan --workers 2`` against Rspamd's best (no Bayes, its fastest concurrency):
   ``results.json`` of ``bench.run``; Seawall's figure is the mean of that run's rounds.
2. ``/checkv2`` with 2 workers at concurrency 4, 16 and 64, msg/s and p99 beside Rspamd's
   (no Bayes): ``serve.json`` of ``bench.serve``.
3. The milter through Postfix against Rspamd's proxy worker in milter mode, in the same
   Postfix set-up, with the p50 each adds over Postfix alone: ``serve.json``.

A file that is missing says which benchmark writes it.  Only reads; the exit status is 0
unless a file cannot be read as JSON (2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCAN_TARGET = 2.0
CHECKV2_TARGET = 1.5
MILTER_TARGET = 1.0


def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def _runs(rspamd: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Rspamd's /checkv2 rows without Bayes (its best configuration here)."""
    if not rspamd:
        return []
    phase = rspamd.get("phases", {}).get("no_bayes", {})
    runs = phase.get("runs", []) if isinstance(phase, dict) else []
    return [row for row in runs if isinstance(row, dict) and row.get("msgs_per_s")]


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _when(data: Mapping[str, Any]) -> str:
    load = data.get("loadavg_start")
    parts = [str(data["date"])] if data.get("date") else []
    if isinstance(load, Sequence) and load:
        parts.append(f"load {float(load[0]):.2f}")
    return f" ({', '.join(parts)})" if parts else ""


def scan_lines(results: Mapping[str, Any] | None) -> list[str]:
    head = "seawall scan --workers 2 against Rspamd's best"
    if results is None:
        return [f"{head}: not measured (python -m bench.run writes results.json)"]
    throughput = results.get("throughput", {})
    ours = [r["msgs_per_s"] for r in throughput.get("seawall_2", []) if r.get("msgs_per_s")]
    theirs = _runs(throughput.get("rspamd"))
    if not ours or not theirs:
        return [f"{head}: not measured (bench.run ran without Rspamd, or failed)"]
    best = max(theirs, key=lambda row: row["msgs_per_s"])
    mean = sum(ours) / len(ours)
    ratio = mean / best["msgs_per_s"]
    return [
        f"{head}{_when(results)}:",
        f"  Seawall {mean:.1f} msg/s (rounds {', '.join(f'{r:.1f}' for r in ours)}),"
        f" Rspamd {best['msgs_per_s']:.1f} msg/s (c={best['concurrency']}):"
        f" {ratio:.2f}x, target >= {SCAN_TARGET:.1f}x: {_verdict(ratio >= SCAN_TARGET)}",
    ]


def checkv2_lines(serve: Mapping[str, Any] | None) -> list[str]:
    head = "/checkv2, 2 workers each"
    if serve is None:
        return [f"{head}: not measured (python -m bench.serve writes serve.json)"]
    ours = {row["concurrency"]: row for row in serve.get("seawall_checkv2", [])}
    theirs = {row["concurrency"]: row for row in _runs(serve.get("rspamd"))}
    levels = sorted(set(ours) & set(theirs))
    if not levels:
        return [f"{head}: not measured (bench.serve ran with --skip-rspamd or --skip-checkv2)"]
    lines = [f"{head}{_when(serve)}:"]
    for level in levels:
        a, b = ours[level], theirs[level]
        ratio = a["msgs_per_s"] / b["msgs_per_s"]
        ok = ratio >= CHECKV2_TARGET and a["p99_ms"] <= b["p99_ms"]
        lines.append(
            f"  c={level:<3} Seawall {a['msgs_per_s']:7.1f} msg/s p99 {a['p99_ms']:7.2f} ms,"
            f" Rspamd {b['msgs_per_s']:7.1f} msg/s p99 {b['p99_ms']:7.2f} ms: {ratio:.2f}x"
            f" (target >= {CHECKV2_TARGET:.1f}x, p99 at or below Rspamd's): {_verdict(ok)}"
        )
        if a.get("server_cpu_ms_per_msg") and b.get("server_cpu_ms_per_msg"):
            quiet = a["quiet_estimate_msgs_per_s"] / b["quiet_estimate_msgs_per_s"]
            lines.append(
                f"        server CPU per message: Seawall {a['server_cpu_ms_per_msg']:.2f} ms,"
                f" Rspamd {b['server_cpu_ms_per_msg']:.2f} ms; with the cores to themselves"
                f" (client included) {quiet:.2f}x"
            )
    return lines


def milter_lines(serve: Mapping[str, Any] | None) -> list[str]:
    head = "the milter through Postfix"
    milter = serve.get("milter") if serve is not None else None
    if not isinstance(milter, dict) or "seawall" not in milter:
        return [f"{head}: not measured (python -m bench.serve writes serve.json)"]
    alone, ours = milter["postfix_alone"], milter["seawall"]
    added = milter.get("added_p50_ms", {})
    lines = [
        f"{head}{_when(serve or {})}:",
        f"  Postfix alone {alone['msgs_per_s']:.1f} msg/s, p50 {alone['p50_ms']:.2f} ms",
        f"  + Seawall's milter {ours['msgs_per_s']:.1f} msg/s, p50 {ours['p50_ms']:.2f} ms"
        f" (added {added.get('seawall', 0.0):+.2f} ms)",
    ]
    theirs = milter.get("rspamd")
    if not isinstance(theirs, dict):
        lines.append("  Rspamd's milter: not measured (bench.serve ran with --skip-rspamd)")
        return lines
    ratio = ours["msgs_per_s"] / theirs["msgs_per_s"]
    lines += [
        f"  + Rspamd's milter {theirs['msgs_per_s']:.1f} msg/s, p50 {theirs['p50_ms']:.2f} ms"
        f" (added {added.get('rspamd', 0.0):+.2f} ms)",
        f"  Seawall over Rspamd: {ratio:.2f}x, target >= {MILTER_TARGET:.1f}x:"
        f" {_verdict(ratio >= MILTER_TARGET)}",
    ]
    if ours.get("filter_cpu_ms_per_msg") and theirs.get("filter_cpu_ms_per_msg"):
        lines.append(
            f"  filter CPU per message: Seawall {ours['filter_cpu_ms_per_msg']:.2f} ms,"
            f" Rspamd {theirs['filter_cpu_ms_per_msg']:.2f} ms"
        )
    return lines


def summary(directory: Path) -> list[str]:
    results = _load(directory / "results.json")
    serve = _load(directory / "serve.json")
    return [
        "Speed against Rspamd 3.4 (2 workers; Rspamd without Bayes, its best here):",
        *scan_lines(results),
        *checkv2_lines(serve),
        *milter_lines(serve),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dir", type=Path, default=ROOT / ".cache" / "bench")
    args = parser.parse_args(argv)
    try:
        lines = summary(args.dir)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"bench.summary: unreadable results in {args.dir}: {exc!r}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
