"""The classifier alone, leave one source out: its margins on a style it never learned.

    .venv/bin/python -m bench.loso_margins [--max-train 1200] [--max-test 800]
        [--only SOURCE ...] [--variants NAME ...] [--split DIR] [--json FILE]

A quick, in-process companion to ``bench/loso.py`` for comparing classifier variants: for
each fold (the sources of ``bench.loso``), every variant learns the fold's training mail
online, as ``seawall learn`` does (the same model, rate, replay of remembered messages and
the calibration kept from each message's margin before it is learned, in the same
interleaved order), and then scores the held-out source.  Reported per fold and variant:
the share of held-out mail whose classifier points alone reach greylist (the graded
margin), "add header" and reject (the calibrated reject margin), with the points as the
detector gives them under the packaged thresholds and CLASSIFIER_SPAM's packaged score.

A *view* is one model: the message's feature keys (all five regions, or the header region
without trace fields) scaled with its region weights; "full" is the shipped full model and
"content" the shipped content model (weight 0 for the header region).  The shipped
classifier's margin is the variant ``max_fc_d2`` (classifier/pair.py).  A *variant* is the
margin the detector would see: one view's, a weighted sum of views' margins, or a
combination of the full and content margins (``COMBOS``), with the views learned side by
side on the same stream, each from its own error, and calibrated on its own pre-learn
margins.

``--split DIR`` also learns DIR/train (ham/, spam/) and scores DIR/test with every variant:
ROC AUC and spam recall at 0.1% ham FPR of the margins (a SpamAssassin split, for loss
on mail of a familiar style).  Parsing is done once per message and shared by variants.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.loso import SOURCES, Source, spread, units_of
from seawall.classifier import features as feat
from seawall.classifier.calibration import Calibration, RejectMargin
from seawall.classifier.model import Model
from seawall.config import ClassifierSettings
from seawall.detectors.classifier import Grading, spam_weight
from seawall.evaluation import recall_at_fpr, roc_auc
from seawall.message import Envelope, Message, parse_message

SCORE = 16.0  # CLASSIFIER_SPAM's packaged score
GREYLIST, ADD_HEADER, REJECT = 4.0, 6.0, 15.0
# Trace and per-message fields: they tell the era and the relay path, not the sender's style.
TRACE = ("received", "message-id", "date", "delivered-to", "return-path", "x-original-to")

Vec = tuple[np.ndarray, np.ndarray]


def style_regions(msg: Message) -> tuple[str, str, str, str, str]:
    """``features.regions`` with the trace fields left out of the header region."""
    _, subject, body, hosts, shapes = ORIGINAL_REGIONS(msg)
    lines = [
        f"{name}: {value}"
        for name, value in msg.headers.raw_items()
        if not name.lower().startswith(("x-spam", "x-seawall", *TRACE))
    ]
    return "\n".join(lines), subject, body, hosts, shapes


ORIGINAL_REGIONS = feat.regions


def keys_with(msg: Message, regions: Callable[[Message], Any] | None, bits: int) -> np.ndarray:
    """The five regions' keys (the shipped full model's part), from ``regions``."""
    if regions is None:
        return feat.parts(feat.features(msg, bits=bits), bits=bits)[0]
    feat.regions = regions  # type: ignore[assignment]
    try:
        return feat.parts(feat.features(msg, bits=bits), bits=bits)[0]
    finally:
        feat.regions = ORIGINAL_REGIONS


def split_with(keys: np.ndarray, bits: int, weights: Sequence[float]) -> Vec:
    """``features.split`` of five regions' keys with these region weights."""
    saved = feat._ALL_WEIGHTS
    feat._ALL_WEIGHTS = (*weights, *weights[1:])  # type: ignore[assignment]
    try:
        return feat.split(keys, bits=bits)
    finally:
        feat._ALL_WEIGHTS = saved


@dataclass(frozen=True)
class View:
    name: str
    regions: Callable[[Message], Any] | None
    weights: tuple[float, float, float, float, float]


VIEWS = {
    "full": View("full", None, (1.0, 0.5, 1.0, 0.5, 0.5)),
    "content": View("content", None, (0.0, 0.5, 1.0, 0.5, 0.5)),
    "hdr05": View("hdr05", None, (0.5, 0.5, 1.0, 0.5, 0.5)),
    "hdr025": View("hdr025", None, (0.25, 0.5, 1.0, 0.5, 0.5)),
    "style": View("style", style_regions, (1.0, 0.5, 1.0, 0.5, 0.5)),
}
# A variant: the sum of (view, coefficient, the header region's sub-margin scaled by).
Part = tuple[str, float, float]
VARIANTS: dict[str, tuple[Part, ...]] = {
    "full": (("full", 1.0, 1.0),),
    "content": (("content", 1.0, 1.0),),
    "hdr05": (("hdr05", 1.0, 1.0),),
    "hdr025": (("hdr025", 1.0, 1.0),),
    "style": (("style", 1.0, 1.0),),
    "mean_full_content": (("full", 0.5, 1.0), ("content", 0.5, 1.0)),
    "mix_full75_content25": (("full", 0.75, 1.0), ("content", 0.25, 1.0)),
    "mean_style_content": (("style", 0.5, 1.0), ("content", 0.5, 1.0)),
    "full_scored_hdr05": (("full", 1.0, 0.5),),
    "full_scored_hdr0": (("full", 1.0, 0.0),),
}
# Variants of two views' whole margins (full, content), not linear in them.
COMBOS: dict[str, Callable[[float, float], float]] = {
    "max_fc": max,
    "min_fc": min,
    "agree_fc": lambda f, c: f if (f > 0) == (c > 0) else (f + c) / 2,
    "full_plus_pos_content": lambda f, c: f + max(0.0, c) / 2,
    "mean_if_content_higher": lambda f, c: (f + c) / 2 if c > f else f,
    "max_fc_d1": lambda f, c: max(f, c - 1.0),
    "max_fc_d1.5": lambda f, c: max(f, c - 1.5),
    "max_fc_d2": lambda f, c: max(f, c - 2.0),
    "max_fc_d3": lambda f, c: max(f, c - 3.0),
    "max_fc_d4": lambda f, c: max(f, c - 4.0),
    "max_fc_a05": lambda f, c: max(f, c / 2),
    "max_fc_a075": lambda f, c: max(f, 0.75 * c),
}
for _name in COMBOS:
    VARIANTS[_name] = (("full", 1.0, 1.0), ("content", 1.0, 1.0))


@dataclass
class Item:
    key: str
    spam: bool
    vecs: dict[str, Vec]
    headers: dict[str, int]  # keys of the header region (the first ones)


@dataclass
class Learner:
    """The classifier's online learning (model.py, memory.py, calibration.py) for views."""

    views: Sequence[str]
    variants: dict[str, tuple[Part, ...]]
    settings: ClassifierSettings
    models: dict[str, Model] = field(default_factory=dict)
    cals: dict[str, Calibration] = field(default_factory=dict)
    memory: dict[bool, list[Item]] = field(default_factory=lambda: {True: [], False: []})
    counts: list[int] = field(default_factory=lambda: [0, 0])
    order: deque[bool] = field(default_factory=deque)

    def __post_init__(self) -> None:
        for view in self.views:
            self.models[view] = Model.zeros(self.settings.hash_bits, self.settings.learning_rate)
        for name in self.variants:
            self.cals[name] = Calibration()

    def margins(self, item: Item) -> dict[str, float]:
        parts: dict[str, tuple[float, float]] = {}  # view: (header sub-margin, the rest)
        for view in self.views:
            slots, values = item.vecs[view]
            n = item.headers[view]
            contrib = self.models[view].weights.take(slots) * values
            parts[view] = (float(contrib[:n].sum()), float(contrib[n:].sum()))
        out = {}
        for name, spec in self.variants.items():
            if name in COMBOS:
                f, c = (sum(parts[v]) for v in ("full", "content"))
                out[name] = COMBOS[name](f, c)
            else:
                out[name] = sum(c * (h * parts[v][0] + parts[v][1]) for v, c, h in spec)
        return out

    def learn(self, item: Item) -> None:
        if min(self.counts) >= self.settings.min_learns:
            for name, margin in self.margins(item).items():
                self.cals[name].add(margin, spam=item.spam)
        for view in self.views:
            self.models[view].step(*item.vecs[view], item.spam)
        rng = random.Random(item.key)
        total = len(self.memory[True]) + len(self.memory[False])
        for k in range(self.settings.replay):
            if k % 2 == 0:
                pool = self.memory[not item.spam]
                if not pool:
                    continue
                other = pool[rng.randrange(len(pool))]
            else:
                if not total:
                    continue
                pick = rng.randrange(total)
                spam_n = len(self.memory[True])
                other = (
                    self.memory[True][pick] if pick < spam_n else self.memory[False][pick - spam_n]
                )
            for view in self.views:
                self.models[view].step(*other.vecs[view], other.spam)
        self.memory[item.spam].append(item)
        self.order.append(item.spam)
        if len(self.order) > self.settings.memory_messages:  # the oldest remembered goes
            del self.memory[self.order.popleft()][0]
        self.counts[item.spam] += 1

    def reject(self, name: str) -> RejectMargin | None:
        return self.cals[name].reject_margin(
            fpr=self.settings.reject_fpr,
            min_ham=self.settings.calibration_min_ham,
            min_spam=self.settings.calibration_min_spam,
        )


def points(margin: float, reject: RejectMargin | None, grading: Grading) -> float:
    if margin <= 0:
        return 0.0
    return SCORE * spam_weight(margin, reject, ClassifierSettings().margin_scale, grading)


class Corpus:
    """Parsed messages and their vectors per view, computed once."""

    def __init__(self, views: Sequence[str], bits: int) -> None:
        self.views = views
        self.bits = bits
        self.cache: dict[str, Item] = {}

    def item(self, path: str, raw_of: Callable[[], bytes], spam: bool) -> Item | None:
        found = self.cache.get(path)
        if found is not None:
            return found
        msg = parse_message(raw_of(), Envelope())
        vecs: dict[str, Vec] = {}
        headers: dict[str, int] = {}
        by_regions: dict[int, np.ndarray] = {}
        for name in self.views:
            view = VIEWS[name]
            rid = id(view.regions)
            if rid not in by_regions:
                by_regions[rid] = keys_with(msg, view.regions, self.bits)
            keys = by_regions[rid]
            vecs[name] = split_with(keys, self.bits, view.weights)
            headers[name] = int(np.searchsorted(keys, np.uint32(1 << self.bits)))
        key = hashlib.sha1(os.path.basename(path).encode()).hexdigest() + path
        item = self.cache[path] = Item(key, spam, vecs, headers)
        return item


def run_fold(
    learner: Learner, train: list[Item], test: list[Item], label: str
) -> dict[str, dict[str, float]]:
    for item in sorted(train, key=lambda i: i.key):
        learner.learn(item)
    grading = Grading.of(None)
    assert grading is not None
    out: dict[str, dict[str, float]] = {}
    margins = [learner.margins(item) for item in test]
    for name in learner.variants:
        reject = learner.reject(name)
        pts = [points(m[name], reject, grading) for m in margins]
        n = len(pts) or 1
        out[name] = {
            "greylist": sum(p >= GREYLIST for p in pts) / n,
            "add_header": sum(p >= ADD_HEADER for p in pts) / n,
            "reject": sum(p >= REJECT for p in pts) / n,
            "median_margin": float(np.median([m[name] for m in margins])),
            "mean_points": float(np.mean(pts)) if pts else 0.0,
            "points2": sum(p >= 2.0 for p in pts) / n,
            "graded": reject.graded or 0.0 if reject else float("nan"),
            "reject_margin": reject.margin if reject else float("nan"),
        }
    return out


def tree_items(corpus: Corpus, root: Path) -> list[Item]:
    out = []
    for label in ("spam", "ham"):
        for path in sorted((root / label).iterdir()):
            item = corpus.item(str(path), path.read_bytes, label == "spam")
            if item is not None:
                out.append(item)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-train", type=int, default=1200)
    parser.add_argument("--max-test", type=int, default=800)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--split", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = ClassifierSettings()
    variants = {name: VARIANTS[name] for name in args.variants}
    views = sorted({part[0] for spec in variants.values() for part in spec})
    corpus = Corpus(views, settings.hash_bits)
    results: dict[str, Any] = {"loadavg": os.getloadavg(), "folds": {}}
    folds = [s for s in SOURCES if args.only is None or s.name in args.only]
    cache: dict[str, list[Item]] = {}

    def items_of(source: Source, limit: int) -> list[Item]:
        tag = f"{source.name}/{limit}"
        if tag not in cache:
            units = spread(units_of(source), limit)
            got = [corpus.item(u.path, u.read, source.label == "spam") for u in units]
            cache[tag] = [i for i in got if i is not None]
        return cache[tag]

    for held in folds:
        started = time.monotonic()
        train = [
            item for s in SOURCES if s.name != held.name for item in items_of(s, args.max_train)
        ]
        test = items_of(held, args.max_test)
        row = run_fold(Learner(views, variants, settings), train, test, held.label)
        results["folds"][held.name] = row
        print(
            f"{held.name} ({held.label}, {len(train)} learned, {len(test)} scanned, "
            f"{time.monotonic() - started:.0f}s)"
        )
        for name, fig in row.items():
            print(
                f"  {name:20s} greylist {fig['greylist']:6.1%}  add header "
                f"{fig['add_header']:6.1%}  reject {fig['reject']:6.1%}  median "
                f"{fig['median_margin']:6.1f}  graded {fig['graded']:5.1f}  reject at "
                f"{fig['reject_margin']:5.1f}  points>=2 {fig['points2']:6.1%}  mean points "
                f"{fig['mean_points']:4.1f}"
            )
        sys.stdout.flush()
    if args.split is not None:
        learner = Learner(views, variants, settings)
        train = tree_items(corpus, args.split / "train")
        test = tree_items(corpus, args.split / "test")
        for item in sorted(train, key=lambda i: i.key):
            learner.learn(item)
        margins = [(item.spam, learner.margins(item)) for item in test]
        results["split"] = {}
        print(f"split {args.split} ({len(train)} learned, {len(test)} scored)")
        for name in variants:
            spam = [m[name] for s, m in margins if s]
            ham = [m[name] for s, m in margins if not s]
            fig = {
                "auc": roc_auc(spam, ham),
                "recall_0.1": recall_at_fpr(spam, ham, 0.001),
                "recall_1": recall_at_fpr(spam, ham, 0.01),
            }
            results["split"][name] = fig
            print(
                f"  {name:20s} AUC {fig['auc']:.5f}  recall@0.1% {fig['recall_0.1']:6.1%}  "
                f"recall@1% {fig['recall_1']:6.1%}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
