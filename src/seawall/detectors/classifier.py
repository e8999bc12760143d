"""The learned content classifier's verdict as a symbol whose weight follows its confidence."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.classifier import Classifier
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
        weight = math.tanh(margin / self.settings.margin_scale)
        evidence = (f"p={sigmoid(margin):.4f}",)
        if margin > 0:
            return (Hit("CLASSIFIER_SPAM", weight=weight, options=evidence),)
        return (Hit("CLASSIFIER_HAM", weight=-weight, options=evidence),)

    def close(self) -> None:
        self.classifier.close()
