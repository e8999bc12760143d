"""Reject what is certain: the calibrated reject margin on the SpamAssassin split and online.

    .venv/bin/python -m bench.calibration [--workers 2] [--orders folder,shuffled]
                                          [--skip-online] [--json PATH]

1. SpamAssassin split (50/50 by SHA-1 of the basename, as ``seawall eval``): ``seawall
   learn``'s path learns the train half into a fresh state; the classifier's calibration is
   printed (unseen margins scored, the reject margin and what it rests on, the graded
   margin where the classifier's points reach greylist).  The test half is then scanned
   with ``--workers`` processes as ``seawall eval`` does (feeding the state: campaigns and
   reputation learn from the scan), on a fresh copy of the learned state for each order:
   ``folder`` (spam then ham, each sorted by name), ``shuffled`` (a seeded shuffle),
   ``spam-first`` and ``ham-first`` (each class shuffled within).  For each: the share of
   test spam rejected, of it by CLASSIFIER_CERTAIN, and the ham rejected, greylisted or
   flagged, and the share of spam at "add header" or worse.
2. Online (``seawall eval --online`` over all shared corpora, as bench/run.py's
   accuracy_online): each message scored, then learned, in time order; the reject
   action's ham false-positive rate, and which ham were rejected and why.

Targets (issue 14): >= 75% of test spam rejected, no ham rejected or greylisted, in every
order; online reject FPR <= 0.01%.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from seawall import corpus, evaluation
from seawall.batch import Record, scan_units
from seawall.classifier import Classifier
from seawall.config import Config, load_config
from seawall.sources import units_of_file

ORDERS = ("folder", "shuffled", "spam-first", "ham-first")


def sa_split() -> tuple[list[evaluation.Labelled], list[evaluation.Labelled]]:
    """The SpamAssassin corpus split as ``seawall eval`` splits it (seed 0, half)."""
    items = [
        evaluation.Labelled(unit, item.label == "spam")
        for item in corpus.items(corpus.SPAMASSASSIN)
        for unit in units_of_file(str(item.path))
    ]
    return evaluation.split(items, 0.5, 0)


def ordered(test: list[evaluation.Labelled], order: str) -> list[evaluation.Labelled]:
    folder = sorted(test, key=lambda i: (not i.spam, i.unit.path))
    if order == "folder":
        return folder
    shuffled = folder[:]
    random.Random(14).shuffle(shuffled)
    if order == "shuffled":
        return shuffled
    spam = [i for i in shuffled if i.spam]
    ham = [i for i in shuffled if not i.spam]
    return spam + ham if order == "spam-first" else ham + spam


def calibration_of(config: Config) -> dict[str, Any]:
    classifier = Classifier.from_config(config)
    try:
        spam, ham = classifier.calibration.scored
        reject = classifier.reject_margin
        return {
            "scored_spam": spam,
            "scored_ham": ham,
            "reject_margin": reject.margin if reject else None,
            "largest_ham": reject.largest_ham if reject else None,
            "tail": reject.tail if reject else None,
            "graded": reject.graded if reject else None,
        }
    finally:
        classifier.close()


def tally(pairs: list[tuple[Record, bool]]) -> dict[str, Any]:
    spam = [r for r, is_spam in pairs if is_spam]
    ham = [r for r, is_spam in pairs if not is_spam]
    rejected = [r for r in spam if r.action == "reject"]
    spam_flagged = [r for r in spam if r.action in ("reject", "add header", "rewrite subject")]
    certain = [r for r in spam if "CLASSIFIER_CERTAIN" in r.symbols]
    ham_rejected = [r for r in ham if r.action == "reject"]
    ham_grey = [r for r in ham if r.action == "greylist"]
    ham_flagged = [r for r in ham if r.action in ("reject", "add header", "rewrite subject")]
    return {
        "spam": len(spam),
        "ham": len(ham),
        "spam_rejected": len(rejected),
        "spam_rejected_share": round(len(rejected) / max(len(spam), 1), 4),
        "spam_flagged_share": round(len(spam_flagged) / max(len(spam), 1), 4),
        "spam_certain": len(certain),
        "spam_certain_not_rejected": sum(1 for r in certain if r.action != "reject"),
        "ham_rejected": len(ham_rejected),
        "ham_greylisted": len(ham_grey),
        "ham_flagged": len(ham_flagged),
        "ham_reject_fpr": round(len(ham_rejected) / max(len(ham), 1), 6),
        "certain_not_rejected_why": [_why(r) for r in certain if r.action != "reject"][:10],
        "ham_rejected_why": [_why(r) for r in ham_rejected[:20]],
        "ham_greylisted_why": [_why(r) for r in ham_grey[:20]],
    }


def _why(record: Record) -> str:
    top = sorted(record.symbols.items(), key=lambda kv: -abs(kv[1]))[:5]
    return f"{Path(record.path).name} {record.score:.1f} " + ", ".join(
        f"{name}({score:g})" for name, score in top
    )


def sa(workers: int, orders: list[str], tmp: Path) -> dict[str, Any]:
    train, test = sa_split()
    state = tmp / "sa-state"
    config = load_config(None, state_dir=str(state))
    t0 = time.perf_counter()
    learned = evaluation.learn_all(train, config)
    out: dict[str, Any] = {
        "learned": {"spam": learned.spam_total, "ham": learned.ham_total},
        "learn_s": round(time.perf_counter() - t0, 1),
        "calibration": calibration_of(config),
        "orders": {},
    }
    for order in orders:
        run = tmp / f"sa-{order}"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(state, run)
        run_config = load_config(None, state_dir=str(run))
        labels = {i.unit.path: i.spam for i in test}
        units = [i.unit for i in ordered(test, order)]
        t1 = time.perf_counter()
        pairs = [
            (record, labels[record.path])
            for record in scan_units(units, run_config, workers=workers, feed=True)
        ]
        result = tally(pairs)
        result["scan_s"] = round(time.perf_counter() - t1, 1)
        out["orders"][order] = result
    return out


def online(tmp: Path) -> dict[str, Any]:
    from bench.run import _all_corpora

    items = _all_corpora()
    config = load_config(None, state_dir=str(tmp / "online-state"))
    t0 = time.perf_counter()
    outcome = evaluation.run_online(items, config, seed=0)
    result = tally(outcome.records)
    result["messages"] = len(items)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["calibration"] = calibration_of(config)
    return result


def report(doc: dict[str, Any]) -> None:
    sa_doc = doc.get("sa")
    if sa_doc:
        cal = sa_doc["calibration"]
        print(
            f"SpamAssassin split: learned {sa_doc['learned']['spam']} spam, "
            f"{sa_doc['learned']['ham']} ham in {sa_doc['learn_s']}s; calibration: "
            f"{cal['scored_ham']} unseen ham and {cal['scored_spam']} unseen spam scored, "
            f"reject margin {cal['reject_margin']} (largest ham {cal['largest_ham']}, "
            f"fitted tail {cal['tail']}), graded margin {cal['graded']}"
        )
        for order, r in sa_doc["orders"].items():
            print(
                f"  {order:<11} spam rejected {r['spam_rejected']}/{r['spam']} "
                f"({r['spam_rejected_share'] * 100:.1f}%; CLASSIFIER_CERTAIN on "
                f"{r['spam_certain']}, {r['spam_certain_not_rejected']} of them not rejected; "
                f"{r['spam_flagged_share'] * 100:.1f}% add header or worse)"
                f"  ham rejected {r['ham_rejected']}, greylisted {r['ham_greylisted']}, "
                f"flagged {r['ham_flagged']} of {r['ham']}  [{r['scan_s']}s]"
            )
            for why in r["ham_rejected_why"] + r["ham_greylisted_why"]:
                print(f"      ham: {why}")
            for why in r["certain_not_rejected_why"]:
                print(f"      certain spam not rejected: {why}")
    on = doc.get("online")
    if on:
        cal = on["calibration"]
        print(
            f"Online, all shared corpora ({on['messages']} messages, {on['seconds']}s): "
            f"ham rejected {on['ham_rejected']} of {on['ham']} "
            f"(reject FPR {on['ham_reject_fpr'] * 100:.4f}%), spam rejected "
            f"{on['spam_rejected']} of {on['spam']} ({on['spam_rejected_share'] * 100:.1f}%; "
            f"{on['spam_flagged_share'] * 100:.1f}% add header or worse); ham greylisted "
            f"{on['ham_greylisted']}, flagged {on['ham_flagged']}; final reject margin "
            f"{cal['reject_margin']} (graded {cal['graded']}) on {cal['scored_ham']} unseen ham"
        )
        for why in on["ham_rejected_why"]:
            print(f"      ham rejected: {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--orders", default="folder,shuffled")
    parser.add_argument("--skip-sa", action="store_true")
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    orders = [o for o in args.orders.split(",") if o]
    unknown = set(orders) - set(ORDERS)
    if unknown:
        parser.error(f"unknown order(s) {sorted(unknown)}; known: {', '.join(ORDERS)}")
    doc: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="seawall-calibration-") as tmp:
        if not args.skip_sa:
            doc["sa"] = sa(args.workers, orders, Path(tmp))
        if not args.skip_online:
            doc["online"] = online(Path(tmp))
    report(doc)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
