"""The verdict's sum as the symbol-score fit sees it: group caps included.

``policy.decide`` adds each symbol's points (score x weight); a symbol in a group adds to
the group's positive total or its negative one, and each total is capped by the group's
``max_score`` / ``min_score`` before it joins the message's score.  The markup symbols'
1-point cap, the headers' 5 points: a fit that ignored the caps would learn weights for a
score the verdict never computes (two layout traits worth 3 points each, where the
verdict gives the pair 1).

The fit's scores are monotone (each learnable symbol's sign is fixed by its box, see
``scores.bounds``), so which side of its group a term falls on is fixed by the sign of its
weight alone: each capped side is a linear sum of its terms, clipped at the cap.  The
margin is piecewise linear in the scores; where a message's group total is past its cap,
the group's symbols get no gradient from that message, as raising them would not move
its verdict.

>>> design = Design.build(x, names, groups, base, signs, fixed)   # doctest: +SKIP
>>> margin = design.margins(scores)                               # doctest: +SKIP
>>> grad = design.gradient(scores, dloss_dmargin)                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from seawall.policy.scores import Scores


@dataclass(frozen=True, slots=True)
class Terms:
    """Non-zero terms, ``(row, column, weight)``: a symbol vector has a handful of symbols
    of the hundred and fifty, so sums go by ``np.bincount``, not dense products."""

    rows: np.ndarray
    columns: np.ndarray
    weights: np.ndarray

    def pick(self, mask: np.ndarray) -> Terms:
        return Terms(self.rows[mask], self.columns[mask], self.weights[mask])


@dataclass(frozen=True, slots=True)
class Sides:
    """The capped sides of the groups, of one direction (``upper``: the positive totals
    capped by ``max_score``; else the negative ones by ``min_score``)."""

    terms: Terms
    side: np.ndarray  # each term's side (its group's index in ``limits``)
    fixed: np.ndarray  # rows x sides: points on the side from pinned or fixed symbols
    limits: np.ndarray  # sides
    upper: bool

    def totals(self, scores: np.ndarray) -> np.ndarray:
        n, k = self.fixed.shape
        t = self.terms
        flat = np.bincount(
            t.rows * k + self.side, weights=t.weights * scores[t.columns], minlength=n * k
        )
        out: np.ndarray = flat.reshape(n, k) + self.fixed
        return out

    def clipped(self, totals: np.ndarray) -> np.ndarray:
        if self.upper:
            return np.minimum(totals, self.limits).sum(axis=1)  # type: ignore[no-any-return]
        return np.maximum(totals, self.limits).sum(axis=1)  # type: ignore[no-any-return]

    def gradient(self, totals: np.ndarray, outer: np.ndarray, width: int) -> np.ndarray:
        """Each column's share of ``sum_r outer[r] d clipped_r / d score``: nothing from
        the rows where its side's total is past the cap."""
        open_ = totals < self.limits if self.upper else totals > self.limits
        t = self.terms
        passed = open_[t.rows, self.side]
        out: np.ndarray = np.bincount(
            t.columns, weights=np.where(passed, t.weights * outer[t.rows], 0.0), minlength=width
        )
        return out


@dataclass(frozen=True, slots=True)
class Design:
    """The margin ``free terms + offset + capped sides``, as ``policy.decide`` adds it."""

    shape: tuple[int, int]  # rows, learnable columns
    free: Terms  # terms that add as they are (no cap on their side)
    offset: np.ndarray  # rows: fixed points outside any cap
    sides: tuple[Sides, ...]

    @classmethod
    def build(
        cls,
        x: np.ndarray,
        names: Sequence[str],
        signs: np.ndarray,
        base: Scores,
        fixed: Sequence[Mapping[str, float]],
    ) -> Design:
        """``x``: rows x learnable symbols (``names``), ``signs``: +1 where a symbol's score
        is >= 0, -1 where <= 0; ``fixed``: each row's points from symbols not fitted."""
        rows, width = x.shape
        offset = np.zeros(rows)
        r_idx, c_idx = np.nonzero(x)
        terms = Terms(r_idx, c_idx, x[r_idx, c_idx])
        oriented = terms.weights * signs[terms.columns]  # > 0: adds points, < 0: takes
        taken = np.zeros(len(r_idx), dtype=bool)
        group_of = [
            definition.group if (definition := base.symbols.get(name)) is not None else None
            for name in names
        ]
        sides: list[Sides] = []
        for upper in (True, False):
            capped = sorted(
                name
                for name, limits in base.groups.items()
                if (limits.max_score if upper else limits.min_score) is not None
            )
            slot = {name: k for k, name in enumerate(capped)}
            column_side = np.array([slot.get(g or "", -1) for g in group_of], dtype=np.intp)
            side_of = column_side[terms.columns] if len(terms.columns) else column_side[:0]
            mask = (oriented > 0 if upper else oriented < 0) & (side_of >= 0)
            taken |= mask
            points = np.zeros((rows, len(capped)))
            for r, given in enumerate(fixed):
                for name, value in given.items():
                    if value == 0 or (value > 0) != upper:
                        continue
                    definition = base.symbols.get(name)
                    k = slot.get(definition.group or "") if definition is not None else None
                    if k is None:
                        offset[r] += value
                    else:
                        points[r, k] += value
            limits = np.array(
                [
                    base.groups[name].max_score if upper else base.groups[name].min_score
                    for name in capped
                ],
                dtype=float,
            )
            sides.append(Sides(terms.pick(mask), side_of[mask], points, limits, upper))
        return cls((rows, width), terms.pick(~taken), offset, tuple(sides))

    def margins(self, scores: np.ndarray) -> np.ndarray:
        """Each row's score in points."""
        f = self.free
        out = self.offset.copy()
        out += np.bincount(f.rows, weights=f.weights * scores[f.columns], minlength=self.shape[0])
        for side in self.sides:
            out += side.clipped(side.totals(scores))
        return out

    def gradient(self, scores: np.ndarray, outer: np.ndarray) -> np.ndarray:
        """``sum_r outer[r] * d margin_r / d scores``."""
        f = self.free
        width = self.shape[1]
        grad = np.zeros(width)
        grad += np.bincount(f.columns, weights=f.weights * outer[f.rows], minlength=width)
        for side in self.sides:
            grad += side.gradient(side.totals(scores), outer, width)
        return grad

    def norm(self, row_scale: np.ndarray) -> float:
        """A bound on the spectral norm of the margin's Jacobian, each row scaled by
        ``row_scale`` (for the step size: the caps only ever zero some of its entries).
        Its square is the largest eigenvalue of the Gram matrix, columns x columns."""
        scaled = np.zeros(self.shape)
        for t in (self.free, *(side.terms for side in self.sides)):
            scaled[t.rows, t.columns] = t.weights * row_scale[t.rows]
        if not scaled.size:
            return 0.0
        return float(np.sqrt(max(np.linalg.eigvalsh(scaled.T @ scaled)[-1], 0.0)))
