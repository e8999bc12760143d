"""``make bench``: Seawall's figures for docs/benchmarks.md, measured in one run.

    .venv/bin/python -m bench.run [--skip-rspamd] [--skip-online] [--skip-memory]

1. Accuracy: ``seawall eval`` on the SpamAssassin corpus (50/50 by SHA-1 of the basename),
   and the online (TREC-style) protocol on all shared corpora together.
2. Throughput: ``seawall scan --workers 2`` and ``--workers 1`` on the test half after
   learning the train half, interleaved with Rspamd 3.4 (2 workers, /checkv2) on the same
   messages, so the ratio comes from one run; plus the per-stage profile.
3. Memory: peak RSS of each worker over a 20,000-message scan.

Prints a report and writes the JSON to .cache/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.load import time_command
from seawall import corpus, evaluation
from seawall.config import load_config
from seawall.sources import units_of_file

ROOT = Path(__file__).resolve().parents[1]
SEAWALL = [sys.executable, "-m", "seawall"]


def _link_tree(items: list[corpus.Item], dest: Path, *, numbered: bool = False) -> Path:
    """Symlinks under dest/spam and dest/ham: by original basename (the split is by SHA-1
    of it), or numbered where basenames repeat (Enron's are 1, 2, 3... in every folder)."""
    for label in ("spam", "ham"):
        (dest / label).mkdir(parents=True, exist_ok=True)
    for n, item in enumerate(items):
        name = f"{n:06d}" if numbered else item.path.name
        (dest / item.label / name).symlink_to(item.path)
    return dest


def accuracy_sa(tmp: Path) -> dict[str, Any]:
    items = corpus.items(corpus.SPAMASSASSIN)
    tree = _link_tree(items, tmp / "sa-all")
    out = subprocess.run(
        [
            *SEAWALL,
            "eval",
            "--json",
            "--workers",
            "2",
            "--spam",
            str(tree / "spam"),
            "--ham",
            str(tree / "ham"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _all_corpora() -> list[evaluation.Labelled]:
    overlap: set[str] = set()
    csdmc_root = corpus.unpack(corpus.CSDMC)
    with (csdmc_root / "overlap_with_spamassassin.csv").open() as fh:
        next(fh)
        for line in fh:
            overlap.add(line.split(",", 1)[0].strip())
    out: list[evaluation.Labelled] = []
    for name in corpus.ALL:
        root = corpus.unpack(name)
        for item in corpus.items(name):
            if name == corpus.CSDMC and str(item.path.relative_to(root)) in overlap:
                continue
            for unit in units_of_file(str(item.path)):
                out.append(evaluation.Labelled(unit, item.label == "spam"))
    return out


def accuracy_online(tmp: Path) -> dict[str, Any]:
    items = _all_corpora()
    config = load_config(None, state_dir=str(tmp / "online-state"))
    outcome = evaluation.run_online(items, config, seed=0)
    return {"messages": len(items), **outcome.metrics.as_dict()}


# Each scan runs on a fresh copy of the state and feeds it as `seawall serve` does (campaigns
# saved, reputation written to the store): the work measured is the serving path's, as in
# every run before `seawall scan` stopped writing into its state by default.
FEED = "--feed-state"


def _fresh(state: Path) -> Path:
    """A copy of the learned ``state`` for one scan: what campaigns and reputation learned in
    an earlier scan of the same messages would change the next (every message a repeat)."""
    run = state.with_name(state.name + "-run")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(state, run)
    return run


def _seawall_scan(tree: Path, state: Path, workers: int, count: int) -> dict[str, Any]:
    run = _fresh(state)
    timing = time_command(
        [
            *SEAWALL,
            "scan",
            "--json",
            FEED,
            "--workers",
            str(workers),
            "--state",
            str(run),
            str(tree),
        ]
    )
    if timing.returncode != 0:
        raise RuntimeError(f"seawall scan failed: {timing.argv}")
    return timing.summary(count)


def throughput(tmp: Path, skip_rspamd: bool) -> dict[str, Any]:
    items = corpus.items(corpus.SPAMASSASSIN)
    train = [i for i in items if corpus.in_train_split(i.path)]
    test = [i for i in items if not corpus.in_train_split(i.path)]
    train_tree = _link_tree(train, tmp / "train")
    test_tree = _link_tree(test, tmp / "test")
    state = tmp / "scan-state"
    subprocess.run(
        [
            *SEAWALL,
            "learn",
            "--state",
            str(state),
            "--spam",
            str(train_tree / "spam"),
            "--ham",
            str(train_tree / "ham"),
        ],
        check=True,
        capture_output=True,
    )
    # warm the page cache so the first measured run does not pay for disk reads
    _seawall_scan(test_tree, state, 2, len(test))
    result: dict[str, Any] = {"messages": len(test), "seawall_2": [], "seawall_1": []}
    rounds = 1 if skip_rspamd else 2
    for round_ in range(rounds):
        result["seawall_2"].append(_seawall_scan(test_tree, state, 2, len(test)))
        result["seawall_1"].append(_seawall_scan(test_tree, state, 1, len(test)))
        if not skip_rspamd and round_ == 0:
            from bench.rspamd_baseline import baseline

            result["rspamd"] = baseline(concurrency=(4, 16, 64), workers=2, bayes=True)
    profile = subprocess.run(
        [
            *SEAWALL,
            "scan",
            "--json",
            FEED,
            "--workers",
            "1",
            "--profile",
            "--state",
            str(_fresh(state)),
            str(test_tree),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result["profile"] = profile.stderr
    return result


def memory(tmp: Path, state: Path) -> dict[str, Any]:
    """Peak RSS of every worker over a 20,000-message scan (Enron ham + SpamAssassin)."""
    items = corpus.items(corpus.ENRON_HAM)[:14_000] + corpus.items(corpus.SPAMASSASSIN)
    tree = _link_tree(items, tmp / "mem", numbered=True)
    proc = subprocess.Popen(
        [
            *SEAWALL,
            "scan",
            "--json",
            FEED,
            "--workers",
            "2",
            "--state",
            str(_fresh(state)),
            str(tree),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peaks: dict[int, int] = {}
    main_peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal main_peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                main_peak = max(main_peak, parent.memory_info().rss)
                for child in parent.children(recursive=True):
                    rss = child.memory_info().rss
                    peaks[child.pid] = max(peaks.get(child.pid, 0), rss)
            except psutil.Error:
                pass
            time.sleep(0.1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    started = time.perf_counter()
    proc.wait()
    done.set()
    thread.join()
    return {
        "messages": len(items),
        "seconds": round(time.perf_counter() - started, 1),
        "returncode": proc.returncode,
        "main_peak_mb": round(main_peak / 2**20, 1),
        "worker_peak_mb": sorted(round(v / 2**20, 1) for v in peaks.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-rspamd", action="store_true")
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"loadavg_start": os.getloadavg(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="seawall-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print("accuracy (SpamAssassin, offline 50/50)...", file=sys.stderr)
        results["accuracy_sa"] = accuracy_sa(tmp)
        print(json.dumps(results["accuracy_sa"]), file=sys.stderr)
        print("throughput (seawall scan vs rspamd)...", file=sys.stderr)
        results["throughput"] = throughput(tmp, args.skip_rspamd)
        _save(results)
        for key in ("seawall_2", "seawall_1"):
            rates = [run["msgs_per_s"] for run in results["throughput"][key]]
            print(f"{key}: {rates} msg/s", file=sys.stderr)
        if not args.skip_memory:
            print("memory (20,000 messages)...", file=sys.stderr)
            results["memory"] = memory(tmp, tmp / "scan-state")
            _save(results)
            print(json.dumps(results["memory"]), file=sys.stderr)
        if not args.skip_online:
            print("online, all corpora...", file=sys.stderr)
            results["accuracy_online"] = accuracy_online(tmp)
    results["loadavg_end"] = os.getloadavg()
    out = _save(results)
    print(json.dumps(results, indent=2))
    print(f"written to {out}", file=sys.stderr)
    return 0


def _save(results: dict[str, Any]) -> Path:
    out = ROOT / ".cache" / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
