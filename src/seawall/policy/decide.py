"""Hits to a Verdict: forced action, then group caps, then thresholds.  Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    # One pass over the hits, one over the symbols: the hot path of every verdict (a symbol
    # found once, as most are, keeps its options tuple as it is).
    merged: dict[str, tuple[float, Sequence[str]]] = {}
    forced: tuple[Action, str] | None = None
    for hit in hits:
        symbol = hit.symbol
        seen = merged.get(symbol)
        if seen is None:
            merged[symbol] = (hit.weight, hit.options)
        else:
            weight, options = seen
            if abs(hit.weight) > abs(weight):
                weight = hit.weight
            if hit.options:
                more = list(options)
                more.extend(o for o in hit.options if o not in more)
                options = more
            merged[symbol] = (weight, options)
        if hit.force is not None and (
            forced is None or _SEVERITY[hit.force] < _SEVERITY[forced[0]]
        ):
            forced = (hit.force, symbol)

    definitions = scores.symbols
    symbols: dict[str, SymbolResult] = {}
    group_totals: dict[str, list[float]] = {}  # group -> [positive, negative]
    total = 0.0  # symbols in no group, in their order, then each group's capped totals
    for name, (weight, options) in merged.items():
        definition = definitions.get(name)
        if definition is None:
            # scores 0: observe
            symbols[name] = SymbolResult(name, 0.0, tuple(options), "", weight)
            continue
        score = definition.score * weight
        rounded = round(score, 4)
        symbols[name] = SymbolResult(name, rounded, tuple(options), definition.description, weight)
        group = definition.group
        if group:
            totals = group_totals.get(group)
            if totals is None:
                totals = group_totals[group] = [0.0, 0.0]
            totals[0 if score > 0 else 1] += score
        else:
            total += rounded
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
