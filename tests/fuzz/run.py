"""Run the fuzz targets and print executions, exec/s and crashes for each (``make fuzz``).

    python -m tests.fuzz.run [--runs N] [--work DIR] [--jobs J] [TARGET ...]

Each target runs in its own process (:mod:`tests.fuzz.harness`) seeded from
``tests/fuzz/corpus/<target>/``; what libFuzzer adds to the corpus and every crash it finds
go under ``--work`` (``.cache/fuzz`` by default), never into the checked-in seeds.  An
exception is recorded and fuzzing goes on; a hang (``--timeout`` seconds on one input) or a
memory blow-up (``--rss-limit-mb``) ends the process, is counted, and the target is started
again for the executions left (at most ``--restarts`` times).  Exit status 1 when anything
crashed: each crash file is an input for tests/fuzz/test_regressions.py.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.harness import TARGETS

ROOT = Path(__file__).resolve().parents[2]
SEEDS = Path(__file__).resolve().parent / "corpus"
_EXECUTED = re.compile(rb"stat::number_of_executed_units:\s+(\d+)")
_PROGRESS = re.compile(rb"^#(\d+)\s", re.MULTILINE)
_SLOWEST = re.compile(rb"stat::slowest_unit_time_sec:\s+(\d+)")
_RSS = re.compile(rb"stat::peak_rss_mb:\s+(\d+)")
_CRASH_PREFIXES = ("bug-", "crash-", "timeout-", "oom-", "leak-")


@dataclass
class Outcome:
    target: str
    executions: int = 0
    seconds: float = 0.0
    crashes: list[Path] = field(default_factory=list)
    restarts: int = 0
    slowest_s: int = 0  # the slowest input, in whole seconds (libFuzzer's resolution)
    peak_rss_mb: int = 0

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def _crash_files(folder: Path) -> set[Path]:
    return {
        path
        for path in folder.iterdir()
        if path.name.startswith(_CRASH_PREFIXES) and path.suffix != ".txt"
    }


def fuzz(target: str, args: argparse.Namespace) -> Outcome:
    """Run ``target`` for ``args.runs`` executions; what it executed and what crashed."""
    work = Path(args.work) / target
    corpus, artifacts = work / "corpus", work / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    before = _crash_files(artifacts)
    outcome = Outcome(target)
    started = time.monotonic()
    while outcome.executions < args.runs:
        command = [
            sys.executable,
            "-m",
            "tests.fuzz.harness",
            target,
            "--keep-going",
            f"-runs={args.runs - outcome.executions}",
            f"-max_len={TARGETS[target]}",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_limit_mb}",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
            str(corpus),
            str(SEEDS / target),
        ]
        log = work / f"log-{outcome.restarts}.txt"
        with log.open("wb") as out:
            run = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        status = run.returncode
        text = log.read_bytes()
        done = _EXECUTED.findall(text) or _PROGRESS.findall(text)
        outcome.executions += int(done[-1]) if done else 0
        outcome.slowest_s = max([outcome.slowest_s, *map(int, _SLOWEST.findall(text))])
        outcome.peak_rss_mb = max([outcome.peak_rss_mb, *map(int, _RSS.findall(text))])
        if status == 0:
            break
        outcome.restarts += 1  # a hang, a blow-up, or a harness that cannot start
        if outcome.restarts > args.restarts or not done:
            print(f"{target}: fuzzing process failed ({status}); see {log}", file=sys.stderr)
            if not _crash_files(artifacts) - before:
                outcome.crashes.append(log)
            break
    outcome.seconds = time.monotonic() - started
    outcome.crashes += sorted(_crash_files(artifacts) - before)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGETS))
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions per target")
    parser.add_argument("--work", default=str(ROOT / ".cache" / "fuzz"), help="corpus, crashes")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=1024, help="memory of a target")
    parser.add_argument("--restarts", type=int, default=5, help="after hangs or blow-ups")
    args = parser.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda target: fuzz(target, args), targets))
    print(
        f"{'target':<10} {'executions':>12} {'seconds':>9} {'exec/s':>9} {'crashes':>8}"
        f" {'slowest_s':>10} {'peak_rss_mb':>12}"
    )
    for o in outcomes:
        figures = f"{o.executions:>12,} {o.seconds:>9.0f} {o.rate:>9.0f} {len(o.crashes):>8}"
        print(f"{o.target:<10} {figures} {o.slowest_s:>10} {o.peak_rss_mb:>12}")
        for path in o.crashes:
            print(f"  crash: {path}")
    return 1 if any(o.crashes for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
