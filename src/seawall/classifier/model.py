"""Online logistic regression over hashed binary features: the arithmetic, without I/O.

A message is a sparse vector: its feature slots ``s`` with values ``v`` (unit
length, see :func:`seawall.classifier.features.split`), so its margin is
``sum(w[s] * v)``.  Learning takes one stochastic gradient step on the logistic
loss (Goodman and Yih 2006, "Online discriminative spam filter training")::

    a = rate * (y - sigmoid(margin))          y = 1 for spam
    w[s] += a * v

Every change to ``w`` is some message's vector times a scalar, so ``w`` is the
sum over learned messages of (the sum of that message's ``a``) x (its vector).
Keeping each message's sum (its *coefficient*) makes unlearning exact:
subtract it again.  A large rate is the sharp end of the logistic loss; on the
SpamAssassin corpus it ranks better than a small one (see bench/accuracy_classifier.py).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Slots = NDArray[np.uint32]
Scales = NDArray[np.float32]
Vector = NDArray[np.float32]

_EDGE = 35.0  # sigmoid(35) is 1 - 6e-16: beyond it the step is zero anyway


def sigmoid(margin: float) -> float:
    """The logistic function, safe for any margin."""
    return 1.0 / (1.0 + math.exp(-max(-_EDGE, min(_EDGE, margin))))


class Model:
    """The weight vector and the update rule.

    >>> model = Model.zeros(bits=10, rate=16.0)
    >>> slots = np.array([1, 5, 9], dtype=np.uint32)
    >>> values = np.full(3, 3**-0.5, dtype=np.float32)
    >>> step = model.step(slots, values, spam=True)
    >>> model.margin(slots, values) > 0
    True
    >>> model.add(slots, values, -step); model.margin(slots, values)
    0.0
    """

    __slots__ = ("rate", "weights")

    def __init__(self, weights: Vector, rate: float) -> None:
        self.weights = weights
        self.rate = rate

    @classmethod
    def zeros(cls, bits: int, rate: float, models: int = 1) -> Model:
        """All-zero weights for ``models`` vectors of ``2**bits`` side by side."""
        return cls(np.zeros(models << bits, dtype=np.float32), rate)

    def margin(self, slots: Slots, values: Scales) -> float:
        """Log-odds of spam for this message vector (0.0 for an empty one)."""
        return float(np.dot(self.weights.take(slots), values))

    def step(self, slots: Slots, values: Scales, spam: bool) -> float:
        """One gradient step towards ``spam``; returns the scalar ``a`` of the step."""
        error = (1.0 if spam else 0.0) - sigmoid(self.margin(slots, values))
        amount = float(np.float32(self.rate * error))
        self.add(slots, values, amount)
        return amount

    def add(self, slots: Slots, values: Scales, amount: float) -> None:
        """Add ``amount`` times the vector: learning, unlearning, replaying another's log.

        Always the same float32 products added in the same order (``np.add.at``
        also adds a slot that two regions share twice), so every process that
        replays a log ends with bit-identical weights.
        """
        np.add.at(self.weights, slots, np.float32(amount) * values)
