"""Scores as data and the pure decision from hits to a Verdict."""

from __future__ import annotations

from seawall.policy.model import Action, Hit, SymbolResult, Verdict
from seawall.policy.scores import GroupDef, Scores, SymbolDef, load_scores

__all__ = [
    "Action",
    "GroupDef",
    "Hit",
    "Scores",
    "SymbolDef",
    "SymbolResult",
    "Verdict",
    "load_scores",
]
