"""The learned content classifier's verdict as a symbol whose weight follows its confidence."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from seawall.classifier import Classifier
from seawall.classifier.calibration import RejectMargin
from seawall.classifier.model import sigmoid
from seawall.config import ClassifierSettings, describe_state
from seawall.detectors.base import Context, Hit, Parts
from seawall.message.model import Message
from seawall.policy.model import Action
from seawall.policy.scores import Scores

log = logging.getLogger("seawall.classifier")

# Certain only where the sender's text agrees: where the content model (the text and links
# alone, classifier/pair.py) does not say spam, the margin counts only up to this many
# log-odds under the reject margin.  The calibration measured the reject
# margin on the ham of the learning stream; a style of ham it never learned can carry the
# headers of learned spam (an era's relays and mailers) and text that reads as ham, and the
# full model alone then reached the reject margin: held out in full, 117 of 4,150
# SpamAssassin ham, rejected on the classifier's word alone (docs/benchmarks.md, "Leave
# one source out").  Held, the points are those just under it, so other evidence must
# carry such a message the rest of the way to reject.
HOLD = 0.5
CEILING_SLOPE = 0.0025  # below the graded margin the ceiling falls 0.25% a log-odds


@dataclass(frozen=True, slots=True)
class Grading:
    """CLASSIFIER_SPAM's weights at the calibrated margins: ``low`` (the lowest action's
    threshold over the symbol's score) at the graded margin, ``high`` (the reject
    threshold's) at the reject margin; ``0 < low < high <= 1``."""

    low: float
    high: float

    @classmethod
    def of(cls, scores: Scores | None) -> Grading | None:
        """From the scores file's thresholds and CLASSIFIER_SPAM's score; None (the tanh
        weight) without a reject threshold, a lower one, or a positive score."""
        if scores is None:
            return cls(4.0 / 16.0, 15.0 / 16.0)  # the packaged scores' ratios
        symbol = scores.symbols.get("CLASSIFIER_SPAM")
        reject = scores.threshold(Action.REJECT)
        lower = [v for a, v in scores.thresholds if a is not Action.REJECT and v > 0]
        if symbol is None or symbol.score <= 0 or reject is None or not lower:
            return None
        low, high = min(lower) / symbol.score, min(reject / symbol.score, 1.0)
        return cls(low, high) if 0 < low < high else None


class ClassifierDetector:
    """CLASSIFIER_SPAM or CLASSIFIER_HAM, weighted by the classifier's margin.

    Calibrated (``classifier/calibration.py``), CLASSIFIER_SPAM's weight is the shape
    ``tanh(margin / margin_scale)`` held within what the ham false-positive rates measured
    on mail the classifier had not yet learned allow.  Below the graded margin (where that
    rate is about 0.1%, beyond every unseen ham) its points stay under the lowest action's
    threshold (greylist, 4): the classifier alone greylists nothing there.  From the graded
    margin on they are at least a straight line from that threshold there to the reject
    threshold (15) at the reject margin, where the rate is ``reject_fpr``; beyond, at least
    15, creeping on towards the symbol's score (16).  At or beyond the reject margin
    CLASSIFIER_CERTAIN joins it: it scores the classifier group's cap (18, the reject
    threshold plus 3) and the learned second stage never re-weights it, so the
    classifier's points alone reach reject there; both hits name the margin in their
    options.  The thresholds enter as weights over CLASSIFIER_SPAM's score in the scores
    file, so the points mean the same with a site's own thresholds.  The weight never falls
    as the margin grows and rises everywhere but for a jump up at the graded margin, so
    the verdict score keeps the classifier's ranking.  Certain needs the sender's text to
    agree: where the content model does not say spam, the margin counts only up to
    :data:`HOLD` under the reject margin (the headers alone cannot make it certain), and a
    margin held so says it in its options.  For either answer of the text, the points never
    fall as the margin grows.

    Without a calibration (before it has scored ``calibration_min_ham`` unseen ham and
    ``calibration_min_spam`` unseen spam, said once at build in the log, at info) the
    weight is ``tanh(margin / margin_scale)``: 0.76 at one scale, never reject alone.
    CLASSIFIER_HAM's weight is always ``tanh(-margin / margin_scale)``.

    Silent until ``min_learns`` messages of each class were learned: an
    untrained model's opinion is noise, and a symbol scored 0 would read as "the classifier
    found nothing".  Built on a state that has learned too little, it says so once, as a
    warning naming the state and the counts; it is silent too on a margin of exactly 0,
    where it knows nothing of the message.
    """

    name: ClassVar[str] = "classifier"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "CLASSIFIER_SPAM": "The learned content classifier says spam (weight: its confidence)",
        "CLASSIFIER_HAM": "The learned content classifier says ham (weight: its confidence)",
        "CLASSIFIER_CERTAIN": "The classifier's margin is beyond its calibrated reject margin "
        "(ham FPR <= 0.01% on mail it had not learned)",
    }

    @classmethod
    def build(cls, parts: Parts) -> ClassifierDetector | None:
        if parts.classifier is None:  # the caller could not open one: nothing to score with
            return None
        settings = parts.config.detectors.classifier
        if not parts.classifier.ready:
            spam, ham = parts.classifier.counts
            log.warning(
                "the classifier in %s has learned %d spam and %d ham (needs %d of each): "
                "its symbol is left out until then",
                describe_state(parts.config),
                spam,
                ham,
                settings.min_learns,
            )
        elif parts.classifier.reject_margin is None:
            spam, ham = parts.classifier.calibration.scored
            log.info(
                "the classifier in %s has no calibrated reject margin yet (%d of %d unseen "
                "ham and %d of %d unseen spam scored): it does not reject alone until it "
                "has learned more mail",
                describe_state(parts.config),
                ham,
                settings.calibration_min_ham,
                spam,
                settings.calibration_min_spam,
            )
        return cls(settings, parts.classifier, Grading.of(parts.scores))

    def __init__(
        self,
        settings: ClassifierSettings,
        classifier: Classifier,
        grading: Grading | None = Grading(4.0 / 16.0, 15.0 / 16.0),
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.grading = grading

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if not self.classifier.ready:
            return ()
        margin, content = self.classifier.margins(msg)
        if margin == 0.0:  # no feature it has weights for: no opinion, not a 0-point hit
            return ()
        reject = self.classifier.reject_margin if margin > 0 else None
        text_disagrees = content is not None and content <= 0
        if reject is not None and text_disagrees and margin > held_margin(reject):
            held = held_margin(reject)
            weight = spam_weight(held, reject, self.settings.margin_scale, self.grading)
            note = (
                f"margin {margin:.1f}, held under the {reject.describe()}: "
                f"the text alone says {content:.1f}"
            )
            return (
                Hit("CLASSIFIER_SPAM", weight=weight, options=(f"p={sigmoid(margin):.4f}", note)),
            )
        return classifier_hits(margin, reject, self.settings.margin_scale, self.grading)

    def close(self) -> None:
        self.classifier.close()


def held_margin(reject: RejectMargin) -> float:
    """Where a margin whose text does not say spam stops counting: :data:`HOLD` under the
    reject margin, and never under half of it."""
    return max(reject.margin - HOLD, reject.margin / 2)


def classifier_hits(
    margin: float,
    reject: RejectMargin | None,
    margin_scale: float,
    grading: Grading | None = None,
) -> tuple[Hit, ...]:
    """The hits for a (non-zero) margin: CLASSIFIER_SPAM weighted by :func:`spam_weight`
    (or CLASSIFIER_HAM by ``tanh(-margin / margin_scale)``), and CLASSIFIER_CERTAIN as well
    at or beyond the calibrated ``reject`` margin."""
    evidence = f"p={sigmoid(margin):.4f}"
    if margin < 0:
        return (
            Hit("CLASSIFIER_HAM", weight=math.tanh(-margin / margin_scale), options=(evidence,)),
        )
    weight = spam_weight(margin, reject, margin_scale, grading)
    if reject is None or margin < reject.margin:
        return (Hit("CLASSIFIER_SPAM", weight=weight, options=(evidence,)),)
    beyond = f"margin {margin:.1f}, beyond the {reject.describe()}"
    return (
        Hit("CLASSIFIER_SPAM", weight=weight, options=(evidence, beyond)),
        Hit("CLASSIFIER_CERTAIN", options=(beyond,)),
    )


def spam_weight(
    margin: float, reject: RejectMargin | None, margin_scale: float, grading: Grading | None
) -> float:
    """CLASSIFIER_SPAM's weight at a positive margin (the class docstring):
    ``tanh(margin / margin_scale)`` bounded by the calibration when there is one, under
    ``grading.low`` below the graded margin and at least the straight line from it there to
    ``grading.high`` at the reject margin."""
    shape = math.tanh(margin / margin_scale)
    graded = reject.graded if reject is not None else None
    if reject is None or graded is None or grading is None or not 0 < graded <= reject.margin:
        return shape
    low, high, top = grading.low, grading.high, reject.margin
    if margin < graded:  # a ceiling just under the lowest action, still rising
        return min(shape, low * (1.0 - CEILING_SLOPE * (graded - margin)))
    if margin >= top:
        return max(shape, high + (1.0 - high) * math.tanh((margin - top) / margin_scale))
    return max(shape, low + (high - low) * (margin - graded) / (top - graded))
