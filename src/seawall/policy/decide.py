"""Hits to a Verdict: forced action, then group caps, then thresholds.  Pure."""

from __future__ import annotations

from collections.abc import Iterable

from seawall.policy.model import Action, Hit, SymbolResult, Verdict
from seawall.policy.scores import Scores

_SEVERITY = {action: rank for rank, action in enumerate(Action)}  # lower rank: more severe


def decide(
    hits: Iterable[Hit],
    scores: Scores,
    *,
    language: str | None = None,
    elapsed_ms: float = 0.0,
    campaign: str | None = None,
    message_id: str | None = None,
) -> Verdict:
    """Score the hits and pick the action.

    A symbol found twice keeps its largest weight and all its options.  A
    symbol missing from the scores file scores 0 ("observe").
    """
    merged: dict[str, tuple[float, list[str]]] = {}
    forced: tuple[Action, str] | None = None
    for hit in hits:
        if hit.symbol in merged:
            weight, options = merged[hit.symbol]
            if abs(hit.weight) > abs(weight):
                weight = hit.weight
            options.extend(o for o in hit.options if o not in options)
            merged[hit.symbol] = (weight, options)
        else:
            merged[hit.symbol] = (hit.weight, list(hit.options))
        if hit.force is not None and (
            forced is None or _SEVERITY[hit.force] < _SEVERITY[forced[0]]
        ):
            forced = (hit.force, hit.symbol)

    symbols: dict[str, SymbolResult] = {}
    group_totals: dict[str, list[float]] = {}  # group -> [positive, negative]
    for name, (weight, options) in merged.items():
        definition = scores.symbols.get(name)
        score = definition.score * weight if definition else 0.0
        symbols[name] = SymbolResult(
            name=name,
            score=round(score, 4),
            options=tuple(options),
            description=definition.description if definition else "",
        )
        if definition and definition.group:
            totals = group_totals.setdefault(definition.group, [0.0, 0.0])
            totals[0 if score > 0 else 1] += score

    total = 0.0
    for name, result in symbols.items():
        definition = scores.symbols.get(name)
        if not definition or not definition.group:
            total += result.score
    for group, (positive, negative) in group_totals.items():
        limits = scores.groups[group]
        if limits.max_score is not None:
            positive = min(positive, limits.max_score)
        if limits.min_score is not None:
            negative = max(negative, limits.min_score)
        total += positive + negative

    if forced is not None:
        action, forced_by = forced
    else:
        action, forced_by = Action.NO_ACTION, None
        for candidate, threshold in scores.thresholds:
            if total >= threshold:
                action = candidate
                break
    return Verdict(
        score=round(total, 4),
        required=scores.required,
        action=action,
        symbols=symbols,
        language=language,
        elapsed_ms=elapsed_ms,
        campaign=campaign,
        forced_by=forced_by,
        message_id=message_id,
    )
