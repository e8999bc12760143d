"""Campaigns: near-duplicate fingerprints of messages and their streaming clusters."""

from __future__ import annotations

from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.index import UNCLUSTERED, Assignment, Clusterer, IndexStats
from seawall.campaigns.quality import ClusteringScores, clustering_scores, v_measure

__all__ = [
    "UNCLUSTERED",
    "Assignment",
    "Clusterer",
    "ClusteringScores",
    "Fingerprint",
    "IndexStats",
    "clustering_scores",
    "v_measure",
]
