"""A/B against another revision: same machine, same messages, rounds interleaved.

    .venv/bin/python -m bench.ab --base REV [--rounds 6] [--workers 2]

Checks out ``REV`` into a git worktree under .cache/ab/, then for each side (``REV`` and
this tree, each run with its own ``src/`` first on ``PYTHONPATH``):

1. learns the SpamAssassin train half into its own state dir (its own code learns it);
2. scans the test half twice with one worker and compares the verdicts message by message:
   how many actions and scores differ between the sides, beside the same counts between a
   side's own two scans (the noise floor: reputation's cache and flush timing moves
   ``REP_*`` symbols from run to run);
3. times ``seawall scan --workers N`` on the test half in interleaved rounds (A B B A A B
   ...), each from a fresh copy of its learned state, and reports each side's msg/s and the
   median of the per-round ratios (this machine is noisy: compare ratios taken in one run).

Prints a report and writes the JSON to .cache/bench/ab.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.load import time_command
from bench.run import _fresh, _link_tree
from seawall import corpus

ROOT = Path(__file__).resolve().parents[1]


def worktree(rev: str) -> Path:
    """A detached checkout of ``rev`` under .cache/ab/ (made once per commit)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    path = ROOT / ".cache" / "ab" / sha[:12]
    if not (path / "src" / "seawall").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "--force", "--detach", str(path), sha],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return path


def side_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree / "src")
    return env


def seawall(*args: str) -> list[str]:
    return [sys.executable, "-m", "seawall", *args]


@functools.cache
def feed(tree: Path) -> tuple[str, ...]:
    """``--feed-state`` when the side's seawall has it: a scan then writes what it learns into
    its state as every revision before the flag did by default, so both sides do the same
    work."""
    out = subprocess.run(
        seawall("scan", "--help"), env=side_env(tree), capture_output=True, text=True
    )
    return ("--feed-state",) if "--feed-state" in out.stdout else ()


def verdicts(tree: Path, test: Path, state: Path) -> dict[str, tuple[str, float]]:
    out = subprocess.run(
        seawall(
            "scan",
            "--json",
            *feed(tree),
            "--workers",
            "1",
            "--state",
            str(_fresh(state)),
            str(test),
        ),
        env=side_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, tuple[str, float]] = {}
    for line in out.stdout.splitlines():
        doc = json.loads(line)
        found[doc["path"]] = (doc["action"], float(doc["score"]))
    return found


def differences(
    a: dict[str, tuple[str, float]], b: dict[str, tuple[str, float]]
) -> dict[str, float]:
    both = a.keys() & b.keys()
    return {
        "compared": len(both),
        "missing": len(a.keys() ^ b.keys()),
        "actions_differ": sum(a[p][0] != b[p][0] for p in both),
        "scores_differ": sum(abs(a[p][1] - b[p][1]) > 1e-6 for p in both),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    sides = {"base": worktree(args.base), "head": ROOT}
    items = corpus.items(corpus.SPAMASSASSIN)
    train = [i for i in items if corpus.in_train_split(i.path)]
    test = [i for i in items if not corpus.in_train_split(i.path)]
    report: dict[str, Any] = {"base": args.base, "messages": len(test), "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="seawall-ab-") as tmp_name:
        tmp = Path(tmp_name)
        train_tree = _link_tree(train, tmp / "train")
        test_tree = _link_tree(test, tmp / "test")
        states: dict[str, Path] = {}
        for name, tree in sides.items():
            states[name] = tmp / f"state-{name}"
            subprocess.run(
                seawall(
                    "learn",
                    "--state",
                    str(states[name]),
                    "--spam",
                    str(train_tree / "spam"),
                    "--ham",
                    str(train_tree / "ham"),
                ),
                env=side_env(tree),
                check=True,
                capture_output=True,
            )
        seen = {
            (name, run): verdicts(tree, test_tree, states[name])
            for name, tree in sides.items()
            for run in (0, 1)
        }
        report["verdicts"] = {
            "base vs head": differences(seen["base", 0], seen["head", 0]),
            "base vs base": differences(seen["base", 0], seen["base", 1]),
            "head vs head": differences(seen["head", 0], seen["head", 1]),
        }
        rates: dict[str, list[float]] = {"base": [], "head": []}
        ratios: list[float] = []
        for round_ in range(args.rounds):
            order = ("base", "head") if round_ % 2 == 0 else ("head", "base")
            this: dict[str, float] = {}
            for name in order:
                tree = sides[name]
                argv = seawall(
                    "scan",
                    "--json",
                    *feed(tree),
                    "--workers",
                    str(args.workers),
                    "--state",
                    str(_fresh(states[name])),
                    str(test_tree),
                )
                timing = time_command(argv, env=side_env(tree))
                if timing.returncode != 0:
                    raise RuntimeError(f"{name}: seawall scan failed")
                this[name] = len(test) / timing.wall_s
                rates[name].append(round(this[name], 1))
            ratios.append(this["head"] / this["base"])
        report["msg_per_s"] = rates
        report["ratio_per_round"] = [round(r, 4) for r in ratios]
        report["median_ratio"] = round(statistics.median(ratios), 4)
    out = ROOT / ".cache" / "bench" / "ab.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
