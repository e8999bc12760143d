"""The learned content classifier's verdict as a symbol whose weight follows its confidence."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.classifier import Classifier
from seawall.classifier.calibration import RejectMargin
from seawall.classifier.model import sigmoid
from seawall.config import ClassifierSettings, describe_state
from seawall.detectors.base import Context, Hit, Parts
from seawall.message.model import Message

log = logging.getLogger("seawall.classifier")


class ClassifierDetector:
    """CLASSIFIER_SPAM or CLASSIFIER_HAM, weighted by the classifier's margin.

    The weight is ``tanh(margin / margin_scale)``: 0 at an even guess, 0.76 at
    one scale, and only margins far beyond any seen in evaluation come close to
    1.  It is strictly monotone and far from saturating, so the verdict score
    keeps the classifier's ranking (ties only between equal margins).

    At or beyond the calibrated reject margin (``classifier/calibration.py``: where the
    ham false-positive rate measured on mail it had not yet learned is at most
    ``reject_fpr``), CLASSIFIER_CERTAIN joins it: it scores the classifier group's cap
    (18, the reject threshold plus 3) and the learned second stage never re-weights it, so
    the classifier's points alone reach reject there; both hits name the margin in their
    options.  Below it nothing changes, so the points never fall as the margin grows.
    Before the calibration has scored ``calibration_min_ham`` unseen ham and
    ``calibration_min_spam`` unseen spam there is no reject margin, and it says so once
    at build (in the log, at info).

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
        return cls(settings, parts.classifier)

    def __init__(self, settings: ClassifierSettings, classifier: Classifier) -> None:
        self.settings = settings
        self.classifier = classifier

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if not self.classifier.ready:
            return ()
        margin = self.classifier.margin(msg)
        if margin == 0.0:  # no feature it has weights for: no opinion, not a 0-point hit
            return ()
        reject = self.classifier.reject_margin if margin > 0 else None
        return classifier_hits(margin, reject, self.settings.margin_scale)

    def close(self) -> None:
        self.classifier.close()


def classifier_hits(
    margin: float, reject: RejectMargin | None, margin_scale: float
) -> tuple[Hit, ...]:
    """The hits for a (non-zero) margin: graded by ``tanh(margin / margin_scale)``, and
    CLASSIFIER_CERTAIN as well at or beyond the calibrated ``reject`` margin."""
    weight = math.tanh(margin / margin_scale)
    evidence = f"p={sigmoid(margin):.4f}"
    if margin < 0:
        return (Hit("CLASSIFIER_HAM", weight=-weight, options=(evidence,)),)
    if reject is None or margin < reject.margin:
        return (Hit("CLASSIFIER_SPAM", weight=weight, options=(evidence,)),)
    beyond = f"margin {margin:.1f}, beyond the {reject.describe()}"
    return (
        Hit("CLASSIFIER_SPAM", weight=weight, options=(evidence, beyond)),
        Hit("CLASSIFIER_CERTAIN", options=(beyond,)),
    )
