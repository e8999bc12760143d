"""The second stage: symbol scores fitted to labelled mail, bounded and monotone.

Each learned message leaves its *symbol vector*: for every symbol the verdict had, the
weight its detector gave the hit (1.0 for most, the classifier's confidence for
``CLASSIFIER_SPAM``).  :func:`fit` finds scores ``s`` so that ``sigmoid((x . s - T) / TAU)``
predicts the label, where ``T`` is the lowest spam action's threshold: a logistic
regression in points, the way SpamAssassin's score sets were fitted to its corpora.

- **Regularised**: an L2 pull towards the shipped score (``l2``), so a symbol seen on few
  messages keeps about its shipped score, and one never seen keeps it exactly.
- **Capped**: no score beyond ``cap`` points either way, or beyond its shipped score when
  that is larger (CAMPAIGN_SPAM, CLAMAV_VIRUS).
- **Monotone**: a symbol shipped with a positive score (evidence of spam) or 0 (an
  oddity) can only learn a score >= 0, and one shipped negative (evidence of ham) a score
  between its shipped score and 0, so no sender can earn a credit by adding a trait the
  filter calls suspicious, and no credit grows past what was shipped.
- **Measured on ham, for an oddity**: a symbol shipped at 0 learns a spam weight only once
  seen on ``MIN_HAM_EVENTS`` learned ham (ten events a variable); from fewer, the fit would
  measure the training ham's software, lists and era, not the trait's rate on ham, and a
  ham style never learned would pay for it (docs/learning.md).
- **Pinned** symbols (``pinned``) keep the site's score and are not fitted; the scan
  path's own symbols (group ``engine``) are never learned, nor are the ``FIXED`` ones
  (CLASSIFIER_CERTAIN: the calibration, not the fit, decides where the classifier alone
  rejects), whose points enter the fit as given, as a pinned symbol's do.

Ham weighs ``ham_weight`` times a spam message: a false positive costs more than a miss.
The fit is projected gradient descent with Nesterov momentum (FISTA) on the bounded box,
in numpy: a few hundred milliseconds for 50,000 messages of 150 symbols.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import msgspec
import numpy as np

from seawall.config import LearnedScoresSettings
from seawall.policy.model import SymbolResult
from seawall.policy.scores import Scores, SymbolDef

TAU = 2.0  # points per unit of log-odds: 2 points past the threshold is p = 0.88
_ITERATIONS = 600
_NEVER = frozenset({"engine"})  # groups whose symbols are bookkeeping, not evidence
MIN_HAM_EVENTS = 10  # ham carrying an oddity before it may learn a weight
FIXED = frozenset({"CLASSIFIER_CERTAIN"})  # never fitted: they keep the file's score


class Table(msgspec.Struct, frozen=True):
    """A fitted table, as stored: the learned scores and what they were fitted on."""

    scores: dict[str, float]
    shipped: dict[str, float]  # the scores the fit started from (for `seawall scores`)
    seen: dict[str, int]  # messages each symbol was seen on
    spam: int
    ham: int
    fitted_at: float
    loss: float = 0.0

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, blob: bytes) -> Table:
        return msgspec.json.decode(blob, type=cls)


@dataclass(frozen=True, slots=True)
class Bounds:
    """Each learnable symbol's shipped score and its box."""

    names: tuple[str, ...]
    prior: np.ndarray
    low: np.ndarray
    high: np.ndarray
    pinned: Mapping[str, float] = field(default_factory=dict)


def bounds(base: Scores, settings: LearnedScoresSettings) -> Bounds:
    """The learnable symbols of ``base`` and their bounds (see the module docstring)."""
    names: list[str] = []
    prior: list[float] = []
    low: list[float] = []
    high: list[float] = []
    fixed = {name: base.symbols[name].score for name in FIXED if name in base.symbols}
    for name, definition in sorted(base.symbols.items()):
        if definition.group in _NEVER or name in settings.pinned or name in fixed:
            continue
        cap = max(settings.cap, abs(definition.score))
        names.append(name)
        prior.append(definition.score)
        # A ham credit may shrink but never grow past its shipped size: a style of spam
        # never learned must not be waved through by a classifier that learned to trust
        # a look-alike ham style (leave-one-source-out, docs/benchmarks.md).
        low.append(definition.score if definition.score < 0 else 0.0)
        high.append(0.0 if definition.score < 0 else cap)
    return Bounds(
        tuple(names),
        np.array(prior),
        np.array(low),
        np.array(high),
        {**fixed, **settings.pinned},
    )


def symbol_vector(symbols: Mapping[str, SymbolResult], base: Scores) -> dict[str, float]:
    """The weights behind a verdict scored with ``base``: its score over the symbol's,
    or, where the symbol scores 0, the weight its detector gave the hit (a graded oddity
    keeps its grade, so the fit sees the feature the verdict will score)."""
    out: dict[str, float] = {}
    for name, result in symbols.items():
        definition = base.symbols.get(name)
        if definition is None or definition.group in _NEVER:
            continue
        weight = result.score / definition.score if definition.score else result.weight
        out[name] = round(max(-4.0, min(4.0, weight)), 4)
    return out


def threshold(base: Scores) -> float:
    """The lowest score with a spam action: where the fit puts its decision boundary."""
    spam = [value for action, value in base.thresholds if action.is_spam]
    return min(spam) if spam else base.required


def fit(
    vectors: Iterable[tuple[bool, Mapping[str, float]]],
    base: Scores,
    settings: LearnedScoresSettings,
) -> Table:
    """Fit the scores of ``base``'s symbols to labelled symbol vectors."""
    box = bounds(base, settings)
    index = {name: i for i, name in enumerate(box.names)}
    rows: list[tuple[bool, Mapping[str, float]]] = list(vectors)
    x = np.zeros((len(rows), len(box.names)))
    offset = np.zeros(len(rows))  # points from pinned symbols, not fitted
    y = np.zeros(len(rows))
    for r, (spam, vector) in enumerate(rows):
        y[r] = 1.0 if spam else 0.0
        for name, weight in vector.items():
            column = index.get(name)
            if column is not None:
                x[r, column] = weight
            elif name in box.pinned:
                offset[r] += box.pinned[name] * weight
    spam_n = int(y.sum())
    ham_n = len(rows) - spam_n
    seen = {name: int(np.count_nonzero(x[:, i])) for i, name in enumerate(box.names)}
    # An oddity (shipped 0) learns spam weight only from ham it was seen on: on fewer than
    # MIN_HAM_EVENTS its rate in ham is not measured, only the training ham's style.
    ham_events = np.count_nonzero(x[y == 0], axis=0)
    thin = (box.prior == 0) & (ham_events < MIN_HAM_EVENTS)
    box = replace(box, high=np.where(thin, 0.0, box.high))
    # Each class sums to its share: spam 1, ham ham_weight, whatever the counts.
    c = np.where(y > 0, 1.0 / max(spam_n, 1), settings.ham_weight / max(ham_n, 1))
    scores, loss = _solve(x, y, c, offset - threshold(base), box, settings.l2)
    learned = {name: round(float(v), 3) for name, v in zip(box.names, scores, strict=True)}
    shipped = {name: float(v) for name, v in zip(box.names, box.prior, strict=True)}
    return Table(learned, shipped, seen, spam_n, ham_n, time.time(), round(loss, 6))


def _solve(
    x: np.ndarray, y: np.ndarray, c: np.ndarray, offset: np.ndarray, box: Bounds, l2: float
) -> tuple[np.ndarray, float]:
    """Minimise weighted log-loss of sigmoid((x s + offset) / TAU) + l2 |s - prior|^2 over
    the box, by FISTA; the step is 1 / (a bound on the gradient's Lipschitz constant)."""
    w = box.prior.clip(box.low, box.high)
    if not len(x):
        return w, 0.0
    # The log-loss Hessian is at most X^T diag(c) X / (4 TAU^2); its largest eigenvalue is
    # at most its trace-free bound by the Frobenius norm.
    scaled = x * np.sqrt(c)[:, None]
    lipschitz = float(np.linalg.norm(scaled, 2)) ** 2 / (4 * TAU**2) + 2 * l2
    step = 1.0 / max(lipschitz, 1e-9)
    momentum, previous, t = w.copy(), w.copy(), 1.0
    for _ in range(_ITERATIONS):
        margin = (x @ momentum + offset) / TAU
        p = 1.0 / (1.0 + np.exp(-np.clip(margin, -35, 35)))
        grad = x.T @ (c * (p - y)) / TAU + 2 * l2 * (momentum - box.prior)
        current = (momentum - step * grad).clip(box.low, box.high)
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        momentum = current + ((t - 1) / t_next) * (current - previous)
        previous, t = current, t_next
    margin = (x @ previous + offset) / TAU
    p = 1.0 / (1.0 + np.exp(-np.clip(margin, -35, 35)))
    eps = 1e-12
    loss = float(-(c * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum())
    return previous, loss


def apply(base: Scores, table: Table | None, settings: LearnedScoresSettings) -> Scores:
    """``base`` with the learned scores over it, once enough mail of each class was
    learned; pinned symbols keep their pinned score.  A learned score's description says
    so, so every verdict explains it."""
    pinned = settings.pinned
    active = (
        settings.enabled
        and table is not None
        and min(table.spam, table.ham) >= settings.min_messages
    )
    if not active and not pinned:
        return base
    symbols = dict(base.symbols)
    if active and table is not None:
        for name, score in table.scores.items():
            definition = symbols.get(name)
            if definition is None or name in pinned:
                continue
            note = f" [learned {score:+.2f}, shipped {definition.score:+g}]"
            symbols[name] = SymbolDef(score, definition.group, definition.description + note)
    for name, score in pinned.items():
        definition = symbols.get(name, SymbolDef(0.0))
        symbols[name] = SymbolDef(score, definition.group, definition.description + " [pinned]")
    return replace(base, symbols=symbols)
