"""The two models a message is scored by, full and content, and the margin they give.

Both are online logistic regressions (model.py) over the same message's features
(features.py): the *full* model over all five regions, the *content* model over the four a
sender writes (subject, body, URL hosts, link shapes), without the header block.  Each
learns from its own error, as if it were alone, so the content model cannot lean on the
headers and has to find the spam in what the message says and links to.

The margin the classifier gives is the full model's, unless the content model's, less
``CONTENT_OFFSET`` log-odds, is larger (:func:`combine`).  Headers carry an era and a
relay path more than a sender's intent: held out of learning, the SpamAssassin corpus's
2002 spam has the headers of the 2002 ham learned, and the full model calls it ham while
the content model does not.  On held-out ham the content model rarely disagrees upwards,
because what ham says is what ham learned says.  The offset keeps mail of a familiar style
where the full model, which sees more, puts it: without it, ham whose text reads a little
like spam (newsletters) lifted the calibrated margins, and the SpamAssassin split lost two
to three points of recall at 0.1% FPR; with 2 it lost 0.3-0.65 points by two of three
measures, with 3 none.  Measured with ``bench/loso_margins.py`` and
``bench/accuracy_classifier.py``; figures in docs/learning.md.

A message with no content features (no subject, no body, no link) has only the full
model's margin.
"""

from __future__ import annotations

import numpy as np

from seawall.classifier.features import Keys, cut_of, parts, split
from seawall.classifier.model import Model
from seawall.classifier.store import Coef, Step

CONTENT_OFFSET = 3.0  # log-odds (odds e**3, 20 times) the content model must be surer by


def margins(model: Model, keys: Keys, *, bits: int) -> tuple[float, float | None]:
    """(full margin, content margin or None without content features)."""
    cut = cut_of(keys, bits=bits)
    slots, values = split(keys, bits=bits)
    weights = model.weights.take(slots)
    first = float(np.dot(weights[:cut], values[:cut]))
    return first, float(np.dot(weights[cut:], values[cut:])) if cut < keys.size else None


def combine(full: float, content: float | None) -> float:
    """The classifier's margin: the full model's, or the content model's less
    ``CONTENT_OFFSET`` where that is larger (module docstring)."""
    return full if content is None else max(full, content - CONTENT_OFFSET)


def margin(model: Model, keys: Keys, *, bits: int) -> float:
    """The classifier's margin for a message's keys."""
    return combine(*margins(model, keys, bits=bits))


def step(model: Model, keys: Keys, *, bits: int, spam: bool) -> tuple[Coef, list[Step]]:
    """One gradient step of each model towards ``spam``: the amounts and the steps to log."""
    amounts = [0.0, 0.0]
    steps: list[Step] = []
    for i, part in enumerate(parts(keys, bits=bits)):
        if part.size:
            amounts[i] = model.step(*split(part, bits=bits), spam)
            steps.append((part, amounts[i]))
    return (amounts[0], amounts[1]), steps


def add(model: Model, keys: Keys, coef: Coef, *, bits: int) -> list[Step]:
    """Add each model's amount times its vector (unlearning: the negated coefficient);
    returns the steps to log."""
    steps: list[Step] = []
    for part, amount in zip(parts(keys, bits=bits), coef, strict=True):
        if part.size and amount:
            model.add(*split(part, bits=bits), amount)
            steps.append((part, amount))
    return steps
