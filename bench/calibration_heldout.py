"""The reject margin against held-out ham: how sure the calibrated point is, and where else.

    .venv/bin/python -m bench.calibration_heldout [--state DIR] [--boot 200] [--json PATH]

The SpamAssassin split of ``bench/order.py`` (``corpus.in_train_split``): the train half is
learned as ``seawall learn`` learns it (``--state DIR`` keeps it, reused when present).
Then, with no scan and no other detector, the classifier alone:

1. **The stream's reject margin**: what the learned state's calibration gives (every
   train message scored before it was learned, ``classifier/calibration.py``), and its
   spread: the same rule on ``--boot`` resamples of the unseen-ham histogram (multinomial,
   seeded), the 10th, 50th and 90th percentile of the margin and of the test spam beyond it.
2. **The same rule on held-out ham**: the test half's ham, scored by the learned model
   (mail it never learned, as the stream's margins are), fed to a fresh calibration: the
   reject margin that ham would have given, for the classifier's margin and for each model
   alone (``classifier/pair.py``), and the largest test-ham margins.
3. **Per-model reject points**: a message beyond the full model's own point or the content
   model's own point (each derived from the held-out ham of its own margins), at the
   target rate each (the union's rate is then up to twice the target) and at half of it
   each (a union rate of at most the target, whatever the two models share).

With ``--stream``, the train half is learned afresh (not kept in ``--state``) with each
model's margin recorded as the calibration scores it (the learn is wrapped, nothing else
changes), and the stream's reject margin is derived for the classifier's margin and for
each model alone, with and without the tail cut at whole bins.  With ``--online``, the
same recording over ``seawall eval --online``'s stream of all shared corpora (the
classifier alone, in time order, each message learned after it is scored): at every
message, the reject and graded margins of the calibration so far, and how many of the
unseen ham and spam that followed were beyond them.

What it answers: whether the stream's reject margin is near what held-out ham say, how much
of the split's rejects the margin's sampling spread moves, and whether a per-model rule
would reject more test spam at the same ham rate.  Figures in docs/benchmarks.md,
"Reject what is certain".
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.order import learned_config, split
from seawall import evaluation
from seawall.classifier import Classifier, pair
from seawall.classifier import calibration as cal
from seawall.classifier.calibration import BINS, Calibration
from seawall.classifier.features import features
from seawall.config import Config, load_config
from seawall.evaluation import Labelled
from seawall.message import Envelope, parse_message

FPR = 1e-4  # the shipped reject_fpr
Margins = list[tuple[str, float, float | None, bool]]  # path, full, content, spam
Statistic = Callable[[float, float | None], float | None]

STATISTICS: dict[str, Statistic] = {
    "classifier": pair.combine,
    "full": lambda full, content: full,
    "content": lambda full, content: content,
}


def test_margins(config: Config, test: Sequence[Labelled]) -> Margins:
    """Each test message's (full, content) margins by the learned model."""
    classifier = Classifier.from_config(config)
    out: Margins = []
    try:
        for item in test:
            msg = parse_message(item.unit.read(), Envelope())
            keys = features(msg, bits=classifier.bits)
            full, content = pair.margins(classifier.model, keys, bits=classifier.bits)
            out.append((item.unit.path, full, content, item.spam))
        return out
    finally:
        classifier.close()


def stream_calibration(config: Config) -> Calibration:
    classifier = Classifier.from_config(config)
    try:
        return classifier.calibration
    finally:
        classifier.close()


def reject_of(calibration: Calibration, fpr: float = FPR) -> float | None:
    found = calibration.reject_margin(fpr=fpr, min_ham=1)
    return found.margin if found else None


def spread(calibration: Calibration, spam: np.ndarray, boot: int) -> dict[str, Any]:
    """The rule on ``boot`` multinomial resamples of the unseen-ham histogram."""
    ham = calibration.ham[: BINS + 2]
    total = float(ham.sum())
    rng = np.random.default_rng(14)
    margins: list[float] = []
    for _ in range(boot):
        counts = rng.multinomial(round(total), ham / total).astype(np.float64)
        resampled = Calibration(counts, ham_scored=round(total), spam_scored=1)
        margin = reject_of(resampled)
        if margin is not None:
            margins.append(margin)
    qs = np.percentile(margins, [10, 50, 90])
    beyond = [int((spam >= m).sum()) for m in margins]
    return {
        "margin_p10_p50_p90": [round(float(q), 2) for q in qs],
        "margin_sd": round(float(np.std(margins)), 2),
        "test_spam_beyond_p10_p50_p90": [int(q) for q in np.percentile(beyond, [10, 50, 90])],
    }


def held_out(margins: Margins, name: str, fpr: float = FPR) -> dict[str, Any]:
    """The reject margin the test ham give for statistic ``name``, and the largest ones."""
    statistic = STATISTICS[name]
    calibration = Calibration()
    ham: list[tuple[float, str]] = []
    for path, full, content, spam in margins:
        value = statistic(full, content)
        if value is not None and not spam:
            calibration.add(value, spam=False)
            ham.append((value, Path(path).parent.name + "/" + Path(path).name[:5]))
    ham.sort()
    return {
        "reject_margin": reject_of(calibration, fpr),
        "ham": len(ham),
        "largest": [(round(v, 2), p) for v, p in ham[-3:]],
    }


def beyond(margins: Margins, rule: Callable[[float, float | None], bool]) -> dict[str, int]:
    return {
        "spam": sum(1 for _, f, c, spam in margins if spam and rule(f, c)),
        "ham": sum(1 for _, f, c, spam in margins if not spam and rule(f, c)),
    }


def measure(config: Config, test: Sequence[Labelled], boot: int) -> dict[str, Any]:
    margins = test_margins(config, test)
    stream = stream_calibration(config)
    found = stream.reject_margin(fpr=FPR, min_ham=1)
    stream_margin = found.margin if found else float("inf")
    spam = np.array([pair.combine(f, c) for _, f, c, s in margins if s])
    doc: dict[str, Any] = {
        "stream": {
            "scored_ham": stream.ham_scored,
            "scored_spam": stream.spam_scored,
            "reject_margin": found.margin if found else None,
            "graded": found.graded if found else None,
            "test_beyond": beyond(margins, lambda f, c: pair.combine(f, c) >= stream_margin),
            **spread(stream, spam, boot),
        },
        "held_out": {name: held_out(margins, name) for name in STATISTICS},
    }
    per_model: dict[str, Any] = {}
    for label, rate in (("each at the target", FPR), ("each at half the target", FPR / 2)):
        full_at = held_out(margins, "full", rate)["reject_margin"] or float("inf")
        content_at = held_out(margins, "content", rate)["reject_margin"] or float("inf")
        per_model[label] = {
            "full": full_at,
            "content": content_at,
            "test_beyond": beyond(
                margins,
                lambda f, c, a=full_at, b=content_at: f >= a or (c is not None and c >= b),
            ),
        }
    combined_at = doc["held_out"]["classifier"]["reject_margin"] or float("inf")
    per_model["classifier margin at its held-out point"] = {
        "margin": combined_at,
        "test_beyond": beyond(margins, lambda f, c: pair.combine(f, c) >= combined_at),
    }
    doc["per_model"] = per_model
    return doc


Recorded = list[tuple[float, float | None, bool]]  # full, content, spam: as scored unseen


def recording(into: Recorded) -> Callable[[], None]:
    """Record each model's margin of every message the calibration scores while learning
    (``Classifier._learn_one`` wrapped); returns the function that unwraps it."""
    original = Classifier._learn_one

    def learn_one(self: Classifier, msg: Any, spam: bool, journal: Any) -> int:
        keys = features(msg, bits=self.bits)
        full, content = pair.margins(self.model, keys, bits=self.bits)
        before = sum(self._calibration.scored)  # as it stands, no reload mid-learn
        changed = original(self, msg, spam, journal)
        if sum(self._calibration.scored) > before:
            into.append((full, content, spam))
        return changed

    Classifier._learn_one = learn_one  # type: ignore[method-assign]
    return lambda: setattr(Classifier, "_learn_one", original)


def within_bin(calibration: Calibration, fpr: float = FPR) -> float | None:
    """The reject margin with the tail's start placed inside its bin, so that exactly the
    highest ``max(TAIL_MIN, TAIL_SHARE * ham)`` margins are fitted (the bin's margins taken
    as spread evenly), instead of cut at the bin's lower edge with all of the bin."""
    ham = calibration.ham
    present = np.flatnonzero(ham >= cal.PRESENT)
    if present.size == 0 or present[-1] == BINS + 1:
        return None
    largest = cal.upper_edge(int(present[-1]))
    total = float(ham.sum())
    want = max(cal.TAIL_MIN, cal.TAIL_SHARE * total)
    above = np.cumsum(ham[::-1])[::-1]
    if above[1] < want:
        return reject_of(calibration, fpr)
    start = int(np.flatnonzero(above >= want)[-1])
    taken = want - float(above[start + 1])
    u = cal.upper_edge(start) - cal.WIDTH * taken / float(ham[start])
    centres = cal.LOW + np.arange(start, BINS) * cal.WIDTH + cal.WIDTH / 2
    excess = taken * (cal.upper_edge(start) - u) / 2
    excess += float((ham[start + 1 : BINS + 1] * (centres - u)).sum())
    beta = max(excess / want, cal.WIDTH) / max(1.0 - cal.BOUND_Z / math.sqrt(want), 0.5)
    ratio = want / (total * fpr)
    tail = u + beta * math.log(ratio) if ratio > 1 else u
    return round(max(largest + cal.GAP, tail, 0.0), 3)


def stream(train: Sequence[Labelled]) -> dict[str, Any]:
    """Learn ``train`` afresh, recording each model's unseen margins; the reject margin
    each statistic's stream gives, cut at whole bins (shipped) and within the bin."""
    recorded: Recorded = []
    undo = recording(recorded)
    try:
        with tempfile.TemporaryDirectory(prefix="seawall-stream-") as tmp:
            learned_config(Path(tmp), train)
    finally:
        undo()
    out: dict[str, Any] = {"scored": len(recorded)}
    for name, statistic in STATISTICS.items():
        calibration = Calibration()
        for full, content, spam in recorded:
            value = statistic(full, content)
            if value is not None:
                calibration.add(value, spam=spam)
        out[name] = {"reject_margin": reject_of(calibration), "within_bin": within_bin(calibration)}
    ham = [(pair.combine(f, c), f, c) for f, c, spam in recorded if not spam]
    lifted = [h for h in ham if h[2] is not None and h[2] - pair.CONTENT_OFFSET > h[1]]
    out["ham_lifted_by_content"] = len(lifted)
    return out


def online(min_ham: int, min_spam: int) -> dict[str, Any]:
    """``seawall eval --online``'s stream, the classifier alone: at each message, the
    calibration so far (``min_ham`` / ``min_spam`` unseen before it has a margin), and the
    unseen ham and spam beyond its reject and graded margins."""
    from bench.run import _all_corpora

    items = evaluation.chronological(_all_corpora(), 0)
    recorded: Recorded = []
    undo = recording(recorded)
    try:
        with tempfile.TemporaryDirectory(prefix="seawall-online-") as tmp:
            classifier = Classifier.from_config(load_config(None, state_dir=tmp))
            try:
                for item in items:
                    classifier.learn(parse_message(item.unit.read(), Envelope()), item.spam)
            finally:
                classifier.close()
    finally:
        undo()
    calibration = Calibration()
    counts = {"ham": 0, "ham_beyond_reject": 0, "ham_beyond_graded": 0}
    counts |= {"spam": 0, "spam_beyond_reject": 0, "spam_beyond_graded": 0}
    for full, content, spam in recorded:
        value = pair.combine(full, content)
        found = calibration.reject_margin(fpr=FPR, min_ham=min_ham, min_spam=min_spam)
        if found is not None:
            kind = "spam" if spam else "ham"
            counts[kind] += 1
            counts[f"{kind}_beyond_reject"] += value >= found.margin
            counts[f"{kind}_beyond_graded"] += value >= (found.graded or found.margin)
        calibration.add(value, spam=spam)
    final = calibration.reject_margin(fpr=FPR, min_ham=min_ham, min_spam=min_spam)
    return {
        "messages": len(items),
        "scored": len(recorded),
        "final_reject": final.margin if final else None,
        "final_graded": final.graded if final else None,
        **counts,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calibration_heldout")
    parser.add_argument("--state", help="keep the learned state here (reused if present)")
    parser.add_argument("--boot", type=int, default=200, help="resamples for the spread")
    parser.add_argument("--stream", action="store_true", help="learn afresh, per model")
    parser.add_argument("--online", action="store_true", help="the online stream too")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    train, test = split()
    with tempfile.TemporaryDirectory(prefix="seawall-heldout-") as tmp:
        config = learned_config(Path(args.state or tmp), train)
        doc = measure(config, test, args.boot)
    if args.stream:
        doc["stream_per_model"] = stream(train)
    if args.online:
        settings = config.detectors.classifier
        doc["online"] = online(settings.calibration_min_ham, settings.calibration_min_spam)
    print(json.dumps(doc, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
