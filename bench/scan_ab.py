"""Two source trees of Seawall side by side: the same verdicts, and the CPU each spends.

Runs ``seawall scan --json --profile`` of the same messages with each tree's ``src`` on
``PYTHONPATH`` (the trees alternated, ``--rounds`` times each), every run on a fresh copy
of ``--state``, and reports:

- whether the verdicts are the same: per message, the action, the score, the symbols with
  their points, the symbols' options and the language (each counted apart), the first base
  run against the first new one; with several rounds, also the first two base runs against
  each other (what moves from run to run of one tree: in a scan that learns as it goes,
  campaigns and reputation depend on how the workers interleave);
- the CPU of each run (user + sys of the scan and all its processes, per message), the
  median per tree and the ratio new/base; the ratio within each round (its two runs ran
  back to back) and their median; the wall time of each run; the per-stage ms/msg of
  ``--profile``;
- the load average before each run.

The rounds alternate which tree goes first (base-new, new-base, ...), so that a load that
rises or falls through the run does not favour one tree.  The scans run with their
compiled modules kept (``PYTHONDONTWRITEBYTECODE`` unset), as an installed Seawall does.

    python -m bench.scan_ab --base /work/wt-base/src --new src --state STATE \\
        --mode frozen --workers 1 --rounds 1 /tmp/sa-test
    python -m bench.scan_ab --base ... --new src --state STATE --corpora 3000 --mode frozen

``--corpora N`` scans (instead of the paths) a sample of at most N messages of each shared
corpus (every k-th message), one scan per corpus.  Exit status 1 when any verdict differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seawall import corpus
from seawall.sources import units_of_file

CORPORA = corpus.ALL
_STAGE = re.compile(r"^\s+(\w[\w ]*?)\s+(\d+\.\d+)\s+\d+\.\d+%$")
_MODES = {"frozen": ["--frozen"], "feed": ["--feed-state"], "default": []}


@dataclass
class Run:
    tree: str
    cpu_s: float
    messages: int
    records: dict[str, dict[str, Any]]
    stages: dict[str, float] = field(default_factory=dict)
    load: float = 0.0
    wall_s: float = 0.0

    @property
    def cpu_ms_per_msg(self) -> float:
        return 1000 * self.cpu_s / max(self.messages, 1)


def scan(
    src: str, paths: list[str], state: str, mode: str, workers: int, python: str, label: str
) -> Run:
    """One ``seawall scan`` with ``src`` first on the path, on a copy of ``state``."""
    with tempfile.TemporaryDirectory(prefix="seawall-ab-") as tmp:
        copy = Path(tmp) / "state"
        shutil.copytree(state, copy)
        env = dict(os.environ, PYTHONPATH=src)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        command = [python, "-m", "seawall", "scan", "--json", "--profile", "--state", str(copy)]
        command += [*_MODES[mode], "--workers", str(workers), *paths]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{label}: scan failed ({done.returncode}):\n{done.stderr[-2000:]}")
    records = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        records[record["path"]] = record
    stages: dict[str, float] = {}
    for line in done.stderr.splitlines():
        found = _STAGE.match(line)
        if found:
            stages.setdefault(found.group(1), float(found.group(2)))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(label, cpu, len(records), records, stages, load, wall)


def compare(base: Run, new: Run) -> dict[str, int]:
    """Messages whose action, score, symbols, options or language differ."""
    counts = dict.fromkeys(
        ("messages", "missing", "action", "score", "symbols", "options", "language"), 0
    )
    for path, old in base.records.items():
        counts["messages"] += 1
        now = new.records.get(path)
        if now is None:
            counts["missing"] += 1
            continue
        for key in ("action", "score", "symbols", "options", "language"):
            if old.get(key) != now.get(key):
                counts[key] += 1
                if counts[key] <= 3:
                    print(f"  {key} differs: {path}: {old.get(key)} -> {now.get(key)}")
    counts["missing"] += len(set(new.records) - set(base.records))
    return counts


def sample_tree(root: Path, limit: int) -> dict[str, list[str]]:
    """For each corpus, a folder of links to at most ``limit`` of its messages."""
    out: dict[str, list[str]] = {}
    for name in CORPORA:
        items = corpus.items(name)
        if name == corpus.NAZARIO:  # one mbox
            out[name] = [str(items[0].path)]
            continue
        files = [str(item.path) for item in items]
        step = max(1, -(-len(files) // limit))
        folder = root / name
        folder.mkdir(parents=True)
        for index, file in enumerate(files[::step]):
            assert len(units_of_file(file)) == 1
            (folder / f"{index:05d}").symlink_to(file)
        out[name] = [str(folder)]
    return out


def report(label: str, runs: list[Run], base_name: str, new_name: str) -> None:
    by_tree = {name: [r for r in runs if r.tree == name] for name in (base_name, new_name)}
    medians = {
        name: statistics.median(r.cpu_ms_per_msg for r in rs) for name, rs in by_tree.items()
    }
    messages = runs[0].messages
    print(f"{label}: {messages} messages, CPU ms/msg (user+sys, all processes):")
    for name, rs in by_tree.items():
        each = ", ".join(f"{r.cpu_ms_per_msg:.3f} (load {r.load:.2f})" for r in rs)
        print(f"  {name:5s} median {medians[name]:.3f}   runs: {each}")
        walls = ", ".join(f"{r.wall_s:.2f}" for r in rs)
        wall = statistics.median(r.wall_s for r in rs)
        print(f"  {name:5s} wall s median {wall:.2f}   runs: {walls}")
    print(f"  new/base {medians[new_name] / medians[base_name]:.3f}")
    pairs = [
        new.cpu_ms_per_msg / base.cpu_ms_per_msg
        for base, new in zip(by_tree[base_name], by_tree[new_name], strict=True)
    ]
    each = ", ".join(f"{ratio:.3f}" for ratio in pairs)
    print(f"  new/base within each round: {each}; median {statistics.median(pairs):.3f}")
    stages = sorted({s for r in runs for s in r.stages})
    if stages:
        print("  stage ms/msg (median):  " + "  ".join(f"{s:>10s}" for s in ("base", "new")))
        for stage in stages:
            values = [
                statistics.median(r.stages.get(stage, 0.0) for r in rs) for rs in by_tree.values()
            ]
            print(f"    {stage:20s}  " + "  ".join(f"{v:10.3f}" for v in values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--base", required=True, help="the base tree's src directory")
    parser.add_argument("--new", required=True, help="the new tree's src directory")
    parser.add_argument("--state", required=True, help="a learned state (copied per run)")
    parser.add_argument("--mode", choices=sorted(_MODES), default="frozen")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--corpora", type=int, default=0, help="N messages of each corpus")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seawall-ab-sample-") as tmp:
        sets = {"paths": list(args.paths)}
        if args.corpora:
            sets = sample_tree(Path(tmp), args.corpora)
        differing = 0
        for label, paths in sets.items():
            runs: list[Run] = []
            trees = [("base", args.base), ("new", args.new)]
            for turn in range(args.rounds):
                for name, src in trees if turn % 2 == 0 else trees[::-1]:
                    runs.append(
                        scan(src, paths, args.state, args.mode, args.workers, args.python, name)
                    )
            bases = [r for r in runs if r.tree == "base"]
            counts = compare(bases[0], next(r for r in runs if r.tree == "new"))
            differing += sum(v for k, v in counts.items() if k != "messages")
            print(f"{label}: verdicts compared {json.dumps(counts)}")
            if args.rounds > 1:  # what moves between two runs of one tree, for scale
                control = compare(bases[0], bases[1])
                print(f"{label}: base against base (control) {json.dumps(control)}")
            report(label, runs, "base", "new")
    print("verdicts: the same" if not differing else f"verdicts: {differing} differences")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
