"""Clustering quality against a known truth: homogeneity, completeness and V-measure.

Rosenberg and Hirschberg (2007): homogeneity is 1 when every cluster holds messages of one
true class only (no campaign glued to another or to ham), completeness is 1 when every
class sits in one cluster (no campaign split), and the V-measure is their harmonic mean.

>>> v_measure(["a", "a", "b", "b"], ["x", "x", "y", "y"])
1.0
>>> scores = clustering_scores(["a", "a", "b", "b"], ["x", "x", "x", "x"])
>>> scores.homogeneity, scores.completeness
(0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class ClusteringScores:
    homogeneity: float
    completeness: float
    v_measure: float


def _entropy(counts: NDArray[np.float64]) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def clustering_scores(truth: Sequence[Hashable], found: Sequence[Hashable]) -> ClusteringScores:
    """Scores of the clustering ``found`` against the classes ``truth`` (one label per item)."""
    if len(truth) != len(found):
        raise ValueError("truth and found label different numbers of items")
    if not truth:
        return ClusteringScores(1.0, 1.0, 1.0)
    _, classes = np.unique(np.array([str(t) for t in truth]), return_inverse=True)
    _, clusters = np.unique(np.array([str(f) for f in found]), return_inverse=True)
    table = np.zeros((classes.max() + 1, clusters.max() + 1))
    np.add.at(table, (classes, clusters), 1.0)
    n = float(len(truth))
    h_class = _entropy(table.sum(axis=1))
    h_cluster = _entropy(table.sum(axis=0))
    cells = table[table > 0]
    rows, cols = np.nonzero(table)
    # H(class | cluster) and H(cluster | class) from the contingency table.
    h_class_given = float(-(cells / n * np.log(cells / table.sum(axis=0)[cols])).sum())
    h_cluster_given = float(-(cells / n * np.log(cells / table.sum(axis=1)[rows])).sum())
    homogeneity = 1.0 if h_class == 0 else 1.0 - h_class_given / h_class
    completeness = 1.0 if h_cluster == 0 else 1.0 - h_cluster_given / h_cluster
    total = homogeneity + completeness
    v = 0.0 if total == 0 else 2 * homogeneity * completeness / total
    return ClusteringScores(round(homogeneity, 12), round(completeness, 12), round(v, 12))


def v_measure(truth: Sequence[Hashable], found: Sequence[Hashable]) -> float:
    """The harmonic mean of homogeneity and completeness."""
    return clustering_scores(truth, found).v_measure
