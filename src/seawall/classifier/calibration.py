"""Where the classifier alone is sure enough to reject: a calibration kept from its own stream.

Every message the classifier learns is first scored by the model as it stands, before the
step on it: its margin on mail it has not seen, the honest measure of how it will do on the
next message.  The margins go into two bounded histograms, ham and spam (``BINS`` bins of
``WIDTH`` log-odds from ``LOW``, plus one bin below and one above the range), which fade
with a half-life of ``HALF_LIFE`` messages of their class, so an early, weaker model's
margins give way to the current one's.

The **reject margin** is where the measured ham false-positive rate is at most ``fpr``
(``detectors.classifier.reject_fpr``, 0.01% by default).  With a few thousand ham learned,
0.01% is less than one message, so no count of ham above a margin can show it; the rule is
the larger of two conservative estimates:

- **the largest unseen-ham margin plus a gap**: the upper edge of the highest bin holding a
  ham margin (one scored within about a half-life) plus ``GAP`` log-odds (the odds of spam
  e**GAP times beyond any ham the classifier has scored);
- **a fitted tail**: above the margin ``u`` that the highest ``TAIL_SHARE`` of ham margins
  pass (at least ``TAIL_MIN`` of them), the ham margins' excess over ``u`` is taken as
  exponential with the mean excess measured there, and the margin where that tail falls
  to ``fpr`` of all ham is solved for.  An exponential tail is heavier than the logistic
  or Gaussian tails margins have, so the estimate errs on the side of fewer rejects.

The same rule places the **graded margin** for ``GRADE_FPR`` (0.1%): the larger of the
largest unseen-ham margin plus the gap and the fitted tail's margin for 0.1%.  There the
classifier's graded points reach the lowest action (greylist) by themselves, and from there
they climb in a straight line to the reject threshold at the reject margin
(``detectors/classifier.py``).  Beyond the tail's start a straight line in the margin is a
straight line in the logarithm of the estimated ham rate, so each factor of ham the margin
leaves behind is worth the same points.

No reject margin exists until ``min_ham`` ham and ``min_spam`` spam were scored this way (a
state learned before the calibration existed gets one from the mail it learns next), nor
while any ham margin lies beyond the histogram's range.  The spam count matters too: a
model that has learned little spam has not learned what spam looks like, and the ham
margins it gives say little of how the next, unfamiliar ham will score (in the online run
over all shared corpora, the first SpamAssassin ham after 14,000 Enron ham and 133 spam).
Unlearning does not take a margin back: the histogram is a sketch of the stream, not a
ledger, and a message learned twice is scored once.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LOW = -64.0  # the lowest margin with a bin of its own
WIDTH = 0.25  # log-odds per bin
BINS = 512  # LOW .. LOW + BINS * WIDTH = +64; one more bin each side catches the rest
HALF_LIFE = 10_000  # messages of a class after which a margin counts half
GAP = 1.0  # log-odds above the largest unseen-ham margin
TAIL_SHARE = 0.01  # the share of the highest ham margins the tail is fitted to
TAIL_MIN = 20  # ... and at least this many
BOUND_Z = 0.8416  # the tail's scale is taken at its one-sided 80% upper confidence bound
PRESENT = 0.5  # a bin whose faded count is below this holds no ham any more
GRADE_FPR = 0.001  # the ham rate for the graded margin, where the graded points reach greylist

_DECAY = 2.0 ** (-1.0 / HALF_LIFE)
_HEADER = struct.Struct("<4sIddII")  # magic, bins, low, width, ham scored, spam scored
_MAGIC = b"SWC1"

Histogram = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RejectMargin:
    """A derived reject margin and what it rests on (shown in verdicts)."""

    margin: float
    fpr: float  # the target rate it was derived for
    ham: int  # unseen ham scored
    largest_ham: float  # the upper edge of the highest bin holding a ham margin
    tail: float  # the fitted tail's margin for the target rate
    graded: float | None = None  # the same rule's margin for GRADE_FPR, in (0, margin]

    def describe(self) -> str:
        """``calibrated reject margin 12.5 (ham FPR <= 0.01% on 2075 unseen ham)``"""
        return (
            f"calibrated reject margin {self.margin:.1f} "
            f"(ham FPR <= {self.fpr * 100:g}% on {self.ham} unseen ham)"
        )


class Calibration:
    """The ham and spam histograms of unseen margins.

    >>> cal = Calibration()
    >>> for m in range(-20, 0):
    ...     cal.add(m / 2, spam=False)
    >>> cal.reject_margin(fpr=1e-4, min_ham=10).margin > 0
    True
    >>> Calibration.decode(cal.encode()).scored
    (0, 20)
    """

    __slots__ = ("ham", "ham_scored", "spam", "spam_scored")

    def __init__(
        self,
        ham: Histogram | None = None,
        spam: Histogram | None = None,
        *,
        ham_scored: int = 0,
        spam_scored: int = 0,
    ) -> None:
        self.ham: Histogram = np.zeros(BINS + 2) if ham is None else ham
        self.spam: Histogram = np.zeros(BINS + 2) if spam is None else spam
        self.ham_scored = ham_scored
        self.spam_scored = spam_scored

    @property
    def scored(self) -> tuple[int, int]:
        """(spam, ham) margins recorded, whatever has faded since."""
        return self.spam_scored, self.ham_scored

    def add(self, margin: float, *, spam: bool) -> None:
        """Record one unseen message's margin; the older margins of its class fade a step."""
        if not math.isfinite(margin):
            return
        index = bin_of(margin)
        hist = self.spam if spam else self.ham
        hist *= _DECAY
        hist[index] += 1.0
        if spam:
            self.spam_scored += 1
        else:
            self.ham_scored += 1

    def reject_margin(
        self, *, fpr: float, min_ham: int, min_spam: int = 0, grade_fpr: float = GRADE_FPR
    ) -> RejectMargin | None:
        """The margin at and beyond which the classifier alone rejects, and the graded
        margin for ``grade_fpr`` (module docstring); None before ``min_ham`` ham and
        ``min_spam`` spam were scored or with a ham margin beyond the range."""
        if self.ham_scored < max(min_ham, 1) or self.spam_scored < min_spam:
            return None
        ham = self.ham
        present = np.flatnonzero(ham >= PRESENT)
        if present.size == 0:
            return None
        top = int(present[-1])
        if top == BINS + 1:  # a ham beyond the range: nothing is certain
            return None
        largest = upper_edge(top)
        total = float(ham.sum())
        want = max(TAIL_MIN, TAIL_SHARE * total)
        above = np.cumsum(ham[::-1])[::-1]  # above[i]: ham in bin i and higher
        start = int(np.flatnonzero(above >= want)[-1]) if above[0] >= want else 0
        start = max(start, 1)  # the bin below the range has no edge to measure from
        u = upper_edge(start - 1)
        k = float(above[start])
        if k <= 0.0:
            return None
        centres = u + (np.arange(start, BINS + 1) - start) * WIDTH + WIDTH / 2
        beta = max(float((ham[start : BINS + 1] * (centres - u)).sum()) / k, WIDTH)
        beta /= max(1.0 - BOUND_Z / math.sqrt(k), 0.5)  # its upper confidence bound

        def tail_at(rate: float) -> float:
            ratio = k / (total * rate)
            return u + beta * math.log(ratio) if ratio > 1 else u

        tail = tail_at(fpr)
        margin = max(largest + GAP, tail, 0.0)
        graded = min(max(largest + GAP, tail_at(max(grade_fpr, fpr)), WIDTH), margin)
        return RejectMargin(
            round(margin, 3), fpr, self.ham_scored, largest, round(tail, 3), round(graded, 3)
        )

    def encode(self) -> bytes:
        header = _HEADER.pack(_MAGIC, BINS, LOW, WIDTH, self.ham_scored, self.spam_scored)
        return header + self.ham.astype("<f8").tobytes() + self.spam.astype("<f8").tobytes()

    @classmethod
    def decode(cls, blob: bytes) -> Calibration:
        """Read :meth:`encode`'s bytes; ValueError for anything else (another layout)."""
        if len(blob) < _HEADER.size:
            raise ValueError("calibration: too short")
        magic, bins, low, width, ham_n, spam_n = _HEADER.unpack_from(blob)
        size = (BINS + 2) * 8
        if (magic, bins, low, width) != (_MAGIC, BINS, LOW, WIDTH) or len(blob) != (
            _HEADER.size + 2 * size
        ):
            raise ValueError("calibration: another layout")
        ham = np.frombuffer(blob, "<f8", BINS + 2, _HEADER.size).astype(np.float64)
        spam = np.frombuffer(blob, "<f8", BINS + 2, _HEADER.size + size).astype(np.float64)
        if not (np.isfinite(ham).all() and np.isfinite(spam).all()):
            raise ValueError("calibration: counts are not numbers")
        return cls(ham, spam, ham_scored=ham_n, spam_scored=spam_n)


def bin_of(margin: float) -> int:
    """The histogram bin of ``margin``: 0 below LOW, BINS + 1 at or above the top."""
    return int(min(max(math.floor((margin - LOW) / WIDTH) + 1, 0), BINS + 1))


def upper_edge(index: int) -> float:
    """The margin where bin ``index`` (1..BINS) ends and the next begins."""
    return LOW + index * WIDTH
