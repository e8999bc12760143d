"""Verdicts and scan order: the whole verdict against the classifier alone, in four orders.

    .venv/bin/python -m bench.order [--workers 1,2] [--orders folder,shuffled,spam-first,
        ham-first] [--repeat 5] [--frozen] [--state DIR] [--json] [--holds]
        [--symbols FILE]

The SpamAssassin public corpus, all ham folders against both spam folders, split 50/50 by
``corpus.in_train_split`` (train where True).  The train half is learned as ``seawall learn``
learns it; the test half is then scanned as ``seawall scan`` scans it (every default
detector; what learns from the stream learns within the run and writes nothing back), in
four orders:

- ``folder``: the corpus's own order, folder by folder (easy_ham, easy_ham_2, hard_ham,
  spam, spam_2), as ``seawall scan SA/*`` would read it;
- ``shuffled``: a seeded shuffle;
- ``spam-first``: all spam, then all ham (each in the seeded shuffle's order);
- ``ham-first``: all ham, then all spam.

Each order is scanned with each worker count.  A cell gives the spam recall at 0.1% ham
FPR of the whole verdict's score, and the spam recall and ham FPR of the default action
(add header or above).  Beside them, the classifier alone on the same learned model: the
recall at 0.1% FPR of its margin (what ``bench/accuracy_classifier.py`` measures).
Each cell also counts the spam within 3 points of reject and not rejected, those with no
evidence but the classifier's, those held back by a negative symbol, and the symbols the
rest carry (``spam_near_reject``, ...): what a spam short of reject lacks.
``--repeat N`` scans the shuffled order N times more with the last worker count, for the
spread of the default action's recall and FPR between runs of one command.

The learned state is made once in a temporary directory, or kept in ``--state DIR`` (made
there when it has no classifier yet, reused when it has).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seawall import corpus
from seawall.batch import Record, scan_units
from seawall.classifier import Classifier
from seawall.config import Config, load_config
from seawall.evaluation import Labelled, learn_all, recall_at_fpr, roc_auc
from seawall.message import Envelope, parse_message
from seawall.policy.model import Action
from seawall.sources import Unit, iter_units

ORDERS = ("folder", "shuffled", "spam-first", "ham-first")
SEED = 1
_BULKY = ("actions", "records")  # kept per message, not printed


def split() -> tuple[list[Labelled], list[Labelled]]:
    """The train and test halves, each in the corpus's folder order."""
    train: list[Labelled] = []
    test: list[Labelled] = []
    for item in corpus.items(corpus.SPAMASSASSIN):
        (unit,) = iter_units([str(item.path)])
        labelled = Labelled(unit, item.label == "spam")
        (train if corpus.in_train_split(item.path) else test).append(labelled)
    return train, test


def ordered(test: Sequence[Labelled], order: str, seed: int = SEED) -> list[Labelled]:
    if order == "folder":
        return list(test)
    shuffled = list(test)
    random.Random(seed).shuffle(shuffled)
    if order == "shuffled":
        return shuffled
    spam = [i for i in shuffled if i.spam]
    ham = [i for i in shuffled if not i.spam]
    if order == "spam-first":
        return spam + ham
    if order == "ham-first":
        return ham + spam
    raise ValueError(f"unknown order {order!r}")


def learned_config(state: Path, train: Sequence[Labelled]) -> Config:
    """The config of the state ``state``, the train half learned into it if not yet."""
    state.mkdir(parents=True, exist_ok=True)
    config = load_config(None, state_dir=str(state))
    if not (state / "learned").exists():
        t0 = time.perf_counter()
        # Interleaved by learn_all as `seawall learn --spam --ham` does.
        spam_first = [i for i in train if i.spam] + [i for i in train if not i.spam]
        learned = learn_all(spam_first, config)
        (state / "learned").touch()
        print(
            f"learned {learned.spam_total} spam and {learned.ham_total} ham "
            f"in {time.perf_counter() - t0:.0f}s",
            file=sys.stderr,
        )
    return config


def classifier_alone(config: Config, test: Sequence[Labelled]) -> dict[str, float]:
    classifier = Classifier.from_config(config)
    spam: list[float] = []
    ham: list[float] = []
    try:
        for item in test:
            margin = classifier.margin(parse_message(item.unit.read(), Envelope()))
            (spam if item.spam else ham).append(margin)
    finally:
        classifier.close()
    return {
        "roc_auc": round(roc_auc(spam, ham), 6),
        "recall_at_fpr_0.1%": round(100 * recall_at_fpr(spam, ham, 0.001), 2),
    }


def measure(records: dict[str, Record], labels: dict[str, bool]) -> dict[str, Any]:
    spam = [r.score for p, r in records.items() if labels[p]]
    ham = [r.score for p, r in records.items() if not labels[p]]
    flagged_spam = sum(1 for p, r in records.items() if labels[p] and Action(r.action).is_spam)
    flagged_ham = sum(1 for p, r in records.items() if not labels[p] and Action(r.action).is_spam)
    return {
        "recall_at_fpr_0.1%": round(100 * recall_at_fpr(spam, ham, 0.001), 2),
        "roc_auc": round(roc_auc(spam, ham), 6),
        "action_recall": round(100 * flagged_spam / len(spam), 2),
        "action_fpr": round(100 * flagged_ham / len(ham), 3),
        "rejected_spam": sum(1 for p, r in records.items() if labels[p] and r.action == "reject"),
        "rejected_spam_pct": round(
            100
            * sum(1 for p, r in records.items() if labels[p] and r.action == "reject")
            / len(spam),
            1,
        ),
        "ham_flagged": flagged_ham,
        "ham_greylisted": sum(
            1 for p, r in records.items() if not labels[p] and r.action == "greylist"
        ),
        "ham_rejected": sum(
            1 for p, r in records.items() if not labels[p] and r.action == "reject"
        ),
        # What put ham at greylist or above: each symbol with a positive score, by count.
        "ham_held_by": _held_by([r for p, r in records.items() if not labels[p]]),
        # The spam within NEAR points of reject and not rejected, and what else they carry.
        **_near_reject([r for p, r in records.items() if labels[p]]),
        # What the run learned, on each label at any action.
        "learned_on_ham": _learned([r for p, r in records.items() if not labels[p]]),
        "learned_on_spam": _learned([r for p, r in records.items() if labels[p]]),
    }


LEARNED = ("URIBL_LOCAL", "CAMPAIGN_SPAM", "REP_IP_SPAM", "REP_NET_SPAM", "REP_IP_HAM")


def _learned(records: Sequence[Record]) -> dict[str, int]:
    return {s: n for s in LEARNED if (n := sum(1 for r in records if s in r.symbols))}


NEAR = 3.0  # points under the reject threshold (15) that count as near it


def _near_reject(spam: Sequence[Record]) -> dict[str, Any]:
    """The spam at ``15 - NEAR`` points or more and not rejected: how many, how many with
    no evidence but the classifier's, and the other symbols with points they carry."""
    near = [r for r in spam if r.action != "reject" and r.score >= 15.0 - NEAR]
    others = [{k: v for k, v in r.symbols.items() if k != "CLASSIFIER_SPAM" and v} for r in near]
    counts: dict[str, int] = {}
    for symbols in others:
        for symbol, score in symbols.items():
            if score > 0:
                counts[symbol] = counts.get(symbol, 0) + 1
    return {
        "spam_near_reject": len(near),
        "near_reject_classifier_only": sum(1 for symbols in others if not symbols),
        "near_reject_negative": sum(1 for s in others if any(v < 0 for v in s.values())),
        "near_reject_carry": dict(sorted(counts.items(), key=lambda kv: -kv[1])[:6]),
    }


def _held_by(ham: Sequence[Record]) -> dict[str, int]:
    held = [r for r in ham if r.action != "no action"]
    counts: dict[str, int] = {}
    for record in held:
        for symbol, score in record.symbols.items():
            if score > 0:
                counts[symbol] = counts.get(symbol, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:8])


def scan(config: Config, items: Sequence[Labelled], workers: int, frozen: bool) -> dict[str, Any]:
    units: list[Unit] = [i.unit for i in items]
    labels = {i.unit.path: i.spam for i in items}
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"frozen": True} if frozen else {}
    records = {r.path: r for r in scan_units(units, config, workers=workers, **kwargs)}
    seconds = time.perf_counter() - t0
    out = measure(records, labels)
    out["msg_per_s"] = round(len(records) / seconds, 1)
    out["actions"] = {p: r.action for p, r in records.items()}
    out["records"] = records
    return out


def write_symbols(path: Path, cells: Sequence[dict[str, Any]], labels: dict[str, bool]) -> None:
    """Each cell's messages (label, action, score, symbols), one JSON object a line: what
    put a message over a threshold in one cell and not in another."""
    with path.open("w", encoding="utf-8") as out:
        for cell in cells:
            for p, r in cell["records"].items():
                line = {"order": cell["order"], "workers": cell["workers"], "path": p}
                line |= {"spam": labels[p], "action": r.action, "score": r.score}
                out.write(json.dumps(line | {"symbols": r.symbols}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.order", description=__doc__)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--orders", default=",".join(ORDERS))
    parser.add_argument("--repeat", type=int, default=0, help="repeated shuffled runs")
    parser.add_argument("--frozen", action="store_true", help="scan with --frozen")
    parser.add_argument("--state", help="keep the learned state here (reused if present)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--symbols", metavar="FILE", help="write each cell's messages here")
    parser.add_argument(
        "--holds",
        action="store_true",
        help="print the campaign tracker's holds (count, waits) after each scan",
    )
    args = parser.parse_args(argv)
    if args.holds:
        # The tracker logs its holds at debug when a scan ends (its process inherits this).
        hold_log = logging.getLogger("seawall.campaigns.hold")
        hold_log.setLevel(logging.DEBUG)
        hold_log.addHandler(logging.StreamHandler(sys.stderr))
    workers = [int(w) for w in args.workers.split(",")]
    orders = args.orders.split(",")
    train, test = split()
    with tempfile.TemporaryDirectory(prefix="seawall-order-") as tmp:
        config = learned_config(Path(args.state or tmp), train)
        alone = classifier_alone(config, test)
        print(f"classifier alone: {alone}", file=sys.stderr)
        cells: list[dict[str, Any]] = []
        for order in orders:
            for n in workers:
                cell = scan(config, ordered(test, order), n, args.frozen)
                cells.append({"order": order, "workers": n, **cell})
                shown = {k: v for k, v in cell.items() if k not in _BULKY}
                print(f"{order:<10} {n} workers: {shown}", file=sys.stderr)
        repeats: list[dict[str, Any]] = []
        for run in range(args.repeat):
            cell = scan(config, ordered(test, "shuffled"), workers[-1], args.frozen)
            repeats.append(cell)
            shown = {k: v for k, v in cell.items() if k not in _BULKY}
            print(f"repeat {run + 1}: {shown}", file=sys.stderr)
    if args.symbols:
        write_symbols(Path(args.symbols), cells, {i.unit.path: i.spam for i in test})
    doc: dict[str, Any] = {
        "frozen": args.frozen,
        "classifier_alone": alone,
        "cells": [{k: v for k, v in c.items() if k not in _BULKY} for c in cells],
    }
    target = alone["recall_at_fpr_0.1%"] - 0.3
    doc["every_cell_within_0.3"] = all(c["recall_at_fpr_0.1%"] >= target for c in cells)
    runs = cells + repeats
    same = [c for c in runs if c["actions"] == runs[0]["actions"]] if runs else []
    doc["runs_with_identical_actions"] = f"{len(same)}/{len(runs)}"
    if repeats:
        doc["repeats"] = [{k: v for k, v in c.items() if k not in _BULKY} for c in repeats]
        for key in ("action_recall", "action_fpr", "recall_at_fpr_0.1%"):
            values = [c[key] for c in repeats]
            doc[f"spread_{key}"] = round(max(values) - min(values), 3)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(f"classifier alone: recall at 0.1% FPR {alone['recall_at_fpr_0.1%']}%")
        print(
            f"{'order':<11} {'workers':>7} {'@0.1%':>7} {'action':>7} {'FPR':>6} {'reject':>6}"
            f" {'ham grey':>8} {'ham rej':>7}"
        )
        for c in doc["cells"] + doc.get("repeats", []):
            print(
                f"{c.get('order', 'repeat'):<11} {c.get('workers', workers[-1]):>7} "
                f"{c['recall_at_fpr_0.1%']:>7} {c['action_recall']:>7} {c['action_fpr']:>6} "
                f"{c['rejected_spam']:>6} {c['ham_greylisted']:>8} {c['ham_rejected']:>7}"
            )
        for key in [k for k in doc if k.startswith("spread_")]:
            print(f"{key}: {doc[key]}")
        print(f"identical actions: {doc['runs_with_identical_actions']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
