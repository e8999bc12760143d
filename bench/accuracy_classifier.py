"""Accuracy and speed of the content classifier alone, on the shared corpora.

    .venv/bin/python bench/accuracy_classifier.py [--order shuffle|spam-first|ham-first]
        [--seed 1] [--split-seed 0] [--online] [--json]

Offline (the default): the SpamAssassin public corpus, all ham folders against both spam
folders, split 50/50 by ``corpus.in_train_split(path)`` (train where True).  The train half
is learned one message at a time with ``Classifier.learn`` (in a seeded shuffle, or sorted
by class to show that replay makes the order matter little); the test half is scored with
``Classifier.margin``.  Reports ROC AUC, (1-ROCA)%, spam recall at 0.1% and 1% ham FPR,
learn and score rates, and the margins at which ham and spam sit (for ``margin_scale``).

``--online``: TREC-style over every shared corpus together (SpamAssassin, CSDMC2010 without
the messages it shares with SpamAssassin, Enron ham, Nazario and Phishing Pot phishing) in a
seeded shuffle: each message is scored, then learned with its label.

Parsing is timed apart and is not part of the learn or score rates.
"""

from __future__ import annotations

import argparse
import csv
import json
import mailbox
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from seawall import corpus
from seawall.classifier import Classifier
from seawall.classifier.features import features
from seawall.config import ClassifierSettings
from seawall.evaluation import recall_at_fpr, roc_auc
from seawall.message import Message, parse_message

Labelled = tuple[str, Message, bool]  # key, message, spam


def load(name: str) -> list[Labelled]:
    if name == corpus.NAZARIO:
        box = mailbox.mbox(str(corpus.items(name)[0].path), create=False)
        return [
            (f"phishing0.mbox#{i}", parse_message(m.as_bytes()), True) for i, m in enumerate(box)
        ]
    skip: set[str] = set()
    if name == corpus.CSDMC:
        root = corpus.unpack(name)
        with (root / "overlap_with_spamassassin.csv").open(newline="") as fh:
            skip = {row["csdmc_path"] for row in csv.DictReader(fh)}
    out = []
    for item in corpus.items(name):
        rel = str(item.path.relative_to(corpus.unpack(name)))
        if rel not in skip:
            out.append(
                (str(item.path), parse_message(item.path.read_bytes()), item.label == "spam")
            )
    return out


def figures(spam: list[float], ham: list[float]) -> dict[str, float]:
    auc = roc_auc(spam, ham)
    return {
        "roc_auc": round(auc, 6),
        "one_minus_roca_pct": round(100 * (1 - auc), 4),
        "recall_at_fpr_0.1%": round(100 * recall_at_fpr(spam, ham, 0.001), 2),
        "recall_at_fpr_1%": round(100 * recall_at_fpr(spam, ham, 0.01), 2),
        "spam": len(spam),
        "ham": len(ham),
    }


def offline(args: argparse.Namespace, settings: ClassifierSettings) -> dict[str, object]:
    t0 = time.perf_counter()
    data = load(corpus.SPAMASSASSIN)
    parse_s = time.perf_counter() - t0
    train = [d for d in data if corpus.in_train_split(d[0], seed=args.split_seed)]
    test = [d for d in data if not corpus.in_train_split(d[0], seed=args.split_seed)]
    random.Random(args.seed).shuffle(train)
    if args.order != "shuffle":
        train.sort(key=lambda d: d[2] != (args.order == "spam-first"))  # stable: keeps shuffle
    with tempfile.TemporaryDirectory() as state:
        clf = Classifier.open(Path(state), settings)
        t1 = time.perf_counter()
        for _, msg, spam in train:
            clf.learn(msg, spam)
        learn_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        margins = [clf.margin(msg) for _, msg, _ in test]
        score_s = time.perf_counter() - t2
        t3 = time.perf_counter()
        for _, msg, _ in test:
            features(msg, bits=settings.hash_bits)
        features_s = time.perf_counter() - t3
        clf.close()
        db_mb = sum(p.stat().st_size for p in Path(state).iterdir()) / 2**20
        worker = scan_worker(Path(state), settings.hash_bits, [d[0] for d in test[:300]])
    spam = [m for m, d in zip(margins, test, strict=True) if d[2]]
    ham = [m for m, d in zip(margins, test, strict=True) if not d[2]]
    out: dict[str, object] = {
        "mode": f"offline, train order {args.order}",
        **figures(spam, ham),
        "learned": len(train),
        "learn_msgs_per_s": round(len(train) / learn_s, 1),
        "score_msgs_per_s": round(len(test) / score_s, 1),
        "score_ms_mean": round(1000 * score_s / len(test), 4),
        "features_ms_mean": round(1000 * features_s / len(test), 4),
        "parse_ms_mean": round(1000 * parse_s / len(data), 4),
        "sqlite_mb": round(db_mb, 1),
        "scan_worker": worker,
        "ham_margin_pct_50_99_99.9_max": [
            round(float(np.percentile(ham, q)), 2) for q in (50, 99, 99.9, 100)
        ],
        "spam_margin_pct_1_5_50": [round(float(np.percentile(spam, q)), 2) for q in (1, 5, 50)],
    }
    return out


def scan_worker(state: Path, bits: int, paths: list[str]) -> dict[str, float]:
    """A fresh process that opens the learned classifier and scores: its load time and RSS.

    The RSS is VmHWM, the peak since exec (``ru_maxrss`` would count the parent's pages).
    """
    code = (
        "import sys, time; from pathlib import Path;"
        "from seawall.classifier import Classifier; from seawall.config import ClassifierSettings;"
        "from seawall.message import parse_message;"
        "msgs = [parse_message(Path(p).read_bytes()) for p in sys.argv[3:]];"
        "t = time.perf_counter(); settings = ClassifierSettings(hash_bits=int(sys.argv[2]));"
        "c = Classifier.open(Path(sys.argv[1]), settings);"
        "t1 = time.perf_counter(); [c.margin(m) for m in msgs]; t2 = time.perf_counter();"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(round((t1 - t) * 1000, 1), round((t2 - t1) * 1000 / len(msgs), 4),"
        " round(int(hwm) / 1024, 1))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(state), str(bits), *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    open_ms, score_ms, rss_mb = (float(v) for v in out.stdout.split())
    return {"open_ms": open_ms, "score_ms_mean": score_ms, "peak_rss_mb": rss_mb}


def online(args: argparse.Namespace, settings: ClassifierSettings) -> dict[str, object]:
    names = (corpus.SPAMASSASSIN, corpus.CSDMC, corpus.ENRON_HAM, corpus.NAZARIO)
    names += (corpus.PHISHING_POT,)
    t0 = time.perf_counter()
    data = [d for name in names for d in load(name)]
    parse_s = time.perf_counter() - t0
    random.Random(args.seed).shuffle(data)
    margins: list[float] = []
    with tempfile.TemporaryDirectory() as state:
        clf = Classifier.open(Path(state), settings)
        t1 = time.perf_counter()
        for _, msg, spam in data:
            margins.append(clf.margin(msg))
            clf.learn(msg, spam)
        both_s = time.perf_counter() - t1
        clf.close()
    spam = [m for m, d in zip(margins, data, strict=True) if d[2]]
    ham = [m for m, d in zip(margins, data, strict=True) if not d[2]]
    tail = len(data) // 2
    spam2 = [m for m, d in zip(margins[tail:], data[tail:], strict=True) if d[2]]
    ham2 = [m for m, d in zip(margins[tail:], data[tail:], strict=True) if not d[2]]
    return {
        "mode": "online (score, then learn), all shared corpora, shuffled",
        **figures(spam, ham),
        "second_half": figures(spam2, ham2),
        "score_and_learn_msgs_per_s": round(len(data) / both_s, 1),
        "parse_ms_mean": round(1000 * parse_s / len(data), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--order", choices=("shuffle", "spam-first", "ham-first"), default="shuffle"
    )
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed of the learning order")
    parser.add_argument("--split-seed", type=int, default=0, help="in_train_split seed")
    parser.add_argument("--online", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rate", type=float, help="override learning_rate")
    parser.add_argument("--replay", type=int, help="override replay")
    parser.add_argument("--bits", type=int, help="override hash_bits")
    args = parser.parse_args()
    settings = ClassifierSettings()
    overrides = {
        k: v
        for k, v in (
            ("learning_rate", args.rate),
            ("replay", args.replay),
            ("hash_bits", args.bits),
        )
        if v is not None
    }
    if overrides:
        import msgspec

        settings = msgspec.structs.replace(settings, **overrides)
    result = online(args, settings) if args.online else offline(args, settings)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value}")
    return 0 if math.isfinite(float(str(result["roc_auc"]))) else 1


if __name__ == "__main__":
    sys.exit(main())
