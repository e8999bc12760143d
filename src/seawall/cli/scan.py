"""``seawall scan``, ``learn`` and ``eval``: score, teach and measure on files and mailboxes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from seawall.batch import NOT_MAIL, Record, scan_units
from seawall.cli.common import config_from, ensure_state
from seawall.config import describe_state, load_config
from seawall.engine import WAIT_STAGES, StageTimes
from seawall.errors import SeawallError
from seawall.sources import Unit, iter_units

if TYPE_CHECKING:  # learn and eval import it when they run: a scan does not need it
    from seawall.evaluation import Labelled, Metrics


def _units(paths: Sequence[str]) -> list[Unit]:
    try:
        return list(iter_units(paths))
    except FileNotFoundError as exc:  # a path given, or a dangling link in a tree
        raise SeawallError(f"no such file or directory: {exc.filename or exc.args[0]}") from None
    except OSError as exc:  # unreadable: a file without permission, a directory's entry
        why = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        raise SeawallError(f"cannot read {why}") from None


class _Progress:
    """A tqdm bar on stderr when stderr is a terminal; silent otherwise."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="msg", file=sys.stderr, leave=False)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _top_symbols(record: Record, n: int = 4) -> str:
    if NOT_MAIL in record.symbols:  # scored 0, but the first thing to know about the row
        kind = ", ".join(record.options.get(NOT_MAIL, ()))
        return f"{NOT_MAIL}({kind})"
    ranked = sorted(record.symbols.items(), key=lambda kv: -abs(kv[1]))[:n]
    return " ".join(f"{name}({score:+.1f})" for name, score in ranked if score)


def _not_mail(counts: Counter[str]) -> str:
    """``"; 2 not mail, 1 empty"`` for the summary line; "" when all was mail."""
    parts = [f"{counts[key]} {key}" for key in ("not mail", "empty") if counts[key]]
    return "; " + ", ".join(parts) if parts else ""


def _print_table_row(record: Record, width: int) -> None:
    path = record.path if len(record.path) <= width else "…" + record.path[-(width - 1) :]
    lang = record.language or "-"
    print(
        f"{path:<{width}} {record.action:<12} {record.score:7.2f} {lang:<3} {_top_symbols(record)}"
    )


def _print_profile(times: StageTimes, out: Any) -> None:
    if not times.messages:
        return
    work = {k: v for k, v in times.seconds.items() if k not in WAIT_STAGES}
    total = sum(work.values())
    print(f"per-stage profile over {times.messages} messages (ms/msg):", file=out)
    for stage, seconds in sorted(work.items(), key=lambda kv: -kv[1]):
        ms = seconds * 1000 / times.messages
        print(f"  {stage:<12} {ms:8.3f}  {seconds / total * 100:5.1f}%", file=out)
    print(f"  {'total':<12} {total * 1000 / times.messages:8.3f}", file=out)
    waits = {k: v for k, v in times.seconds.items() if k in WAIT_STAGES}
    if waits:
        print("waits, other messages' work runs meanwhile (ms/msg):", file=out)
        for stage, seconds in sorted(waits.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<12} {seconds * 1000 / times.messages:8.3f}", file=out)


def cmd_scan(args: argparse.Namespace) -> int:
    if args.frozen and args.feed_state:
        raise SeawallError("--frozen learns nothing: it cannot --feed-state")
    config = config_from(args)
    units = _units(args.paths)
    workers = args.workers or os.cpu_count() or 1
    times = StageTimes()
    progress = _Progress(len(units), "scan")
    counts: Counter[str] = Counter()
    inputs: Counter[str] = Counter()  # what was not mail
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    width = 60
    if not args.json:
        print(f"{'path':<{width}} {'action':<12} {'score':>7} {'lng':<3} symbols")
    t0 = time.perf_counter()
    n = 0
    scanned = scan_units(
        units, config, workers=workers, times=times, feed=args.feed_state, frozen=args.frozen
    )
    for record in scanned:
        n += 1
        counts[record.action] += 1
        if NOT_MAIL in record.symbols:
            inputs["not mail"] += 1
        elif "DEFECT_EMPTY" in record.symbols:
            inputs["empty"] += 1
        if args.json:
            out.write(encoder.encode(record) + b"\n")
        else:
            _print_table_row(record, width)
        progress(1)
    seconds = time.perf_counter() - t0
    progress.close()
    out.flush()
    summary_to = sys.stderr if args.json else sys.stdout
    rate = n / seconds if seconds > 0 else 0.0
    actions = ", ".join(f"{action}: {count}" for action, count in counts.most_common())
    print(
        f"scanned {n} messages in {seconds:.2f}s ({rate:.1f} msg/s, {workers} workers)"
        f"{'; ' + actions if actions else ''}{_not_mail(inputs)}",
        file=summary_to,
    )
    if args.profile:
        _print_profile(times, sys.stderr)
    return 0


def _labelled(spam: Sequence[str], ham: Sequence[str]) -> list[Labelled]:
    from seawall.evaluation import Labelled

    out = [Labelled(u, True) for u in _units(spam)]
    out += [Labelled(u, False) for u in _units(ham)]
    return out


def cmd_learn(args: argparse.Namespace) -> int:
    if not args.spam and not args.ham:
        raise SeawallError("give --spam PATH... and/or --ham PATH...")
    from seawall.evaluation import learn_all

    config = config_from(args)
    items = _labelled(args.spam, args.ham)
    progress = _Progress(len(items), "learn")
    t0 = time.perf_counter()
    try:
        learned = learn_all(items, config, progress)
    finally:
        progress.close()
    seconds = time.perf_counter() - t0
    skipped = learned.skipped_total
    known = len(items) - learned.changed - skipped
    print(
        f"learned {learned.changed} of {len(items)} messages in {seconds:.1f}s "
        f"({known} already known with that label{f', {skipped} skipped' if skipped else ''}); "
        f"the classifier now knows {learned.spam_total} spam and {learned.ham_total} ham "
        f"({describe_state(config)})"
    )
    if skipped:
        print(
            f"seawall: skipped {learned.describe_skipped()}"
            f"{'' if args.verbose else ' (-v names each file)'}",
            file=sys.stderr,
        )
        if skipped == len(items):
            return 1  # nothing given was mail: a script must not take this for a learn
    return 0


def _print_metrics(metrics: Metrics, title: str) -> None:
    print(title)
    print(f"  messages            {metrics.spam} spam, {metrics.ham} ham")
    print(f"  ROC AUC             {metrics.roc_auc:.6f}   (1-ROCA)% {metrics.one_minus_roca_pct}")
    print(f"  recall @ 0.1% FPR   {metrics.recall_at_fpr_01 * 100:.2f}%")
    print(f"  recall @ 1% FPR     {metrics.recall_at_fpr_1 * 100:.2f}%")
    print(
        f"  default action      recall {metrics.recall_at_action * 100:.2f}%, "
        f"FPR {metrics.fpr_at_action * 100:.3f}%"
    )
    print(f"  speed               {metrics.msgs_per_s} msg/s")


def cmd_eval(args: argparse.Namespace) -> int:
    from seawall import evaluation

    items = _labelled(args.spam, args.ham)
    if not any(i.spam for i in items) or all(i.spam for i in items):
        raise SeawallError("eval needs both --spam and --ham messages")
    # Without --state the evaluation learns into a throw-away state dir.
    with evaluation.state_or_temporary(args.state, "seawall-eval-") as state:
        config = load_config(Path(args.config) if args.config else None, state_dir=state)
        ensure_state(config)
        progress = _Progress(len(items), "eval")
        try:
            if args.online:
                outcome = evaluation.run_online(items, config, seed=args.seed, progress=progress)
            else:
                train, test = evaluation.split(items, args.train_fraction, args.seed)
                workers = args.workers or os.cpu_count() or 1
                outcome = evaluation.run_offline(
                    train, test, config, workers=workers, progress=progress
                )
        finally:
            progress.close()
    if args.json:
        doc = {
            "mode": "online" if args.online else "offline",
            "train_fraction": None if args.online else args.train_fraction,
            "seed": args.seed,
            **outcome.metrics.as_dict(),
            "learn_s": round(outcome.learn_s, 2),
        }
        sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
    else:
        mode = (
            "online (each message scored, then learned)"
            if args.online
            else (
                f"offline (learned {outcome.learned[0]} spam + {outcome.learned[1]} ham "
                f"in {outcome.learn_s:.1f}s, scored the rest)"
            )
        )
        _print_metrics(outcome.metrics, f"evaluation, {mode}")
    if args.profile:
        _print_profile(outcome.times, sys.stderr)
    return 0
