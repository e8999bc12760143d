"""A verdict to feed the reputation detector's ``after_verdict`` in tests."""

from __future__ import annotations

from seawall.policy.model import Action, SymbolResult, Verdict


def verdict(score: float) -> Verdict:
    """A verdict of ``score`` points (one symbol), whatever its action."""
    return Verdict(
        score=score,
        required=15.0,
        action=Action.NO_ACTION,
        symbols={"X": SymbolResult("X", score)},
        language=None,
        elapsed_ms=0.0,
    )
