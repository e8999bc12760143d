"""decide() against a plain restatement of its rules, on many random sets of hits: the same
Verdict to the last bit (scores, options, groups' caps, the forced action)."""

from __future__ import annotations

import random

import pytest

from seawall.policy.decide import decide
from seawall.policy.model import Action, Hit, SymbolResult, Verdict
from seawall.policy.scores import Scores, load_scores

_SEVERITY = {action: rank for rank, action in enumerate(Action)}


def _reference(hits: list[Hit], scores: Scores) -> Verdict:
    """The rules as the docs state them, written for reading rather than speed."""
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
    groups: dict[str, list[float]] = {}
    for name, (weight, options) in merged.items():
        definition = scores.symbols.get(name)
        score = definition.score * weight if definition else 0.0
        symbols[name] = SymbolResult(
            name,
            round(score, 4),
            tuple(options),
            definition.description if definition else "",
            weight,
        )
        if definition and definition.group:
            groups.setdefault(definition.group, [0.0, 0.0])[0 if score > 0 else 1] += score
    total = 0.0
    for name, result in symbols.items():
        definition = scores.symbols.get(name)
        if not definition or not definition.group:
            total += result.score
    for group, (positive, negative) in groups.items():
        limits = scores.groups[group]
        if limits.max_score is not None:
            positive = min(positive, limits.max_score)
        if limits.min_score is not None:
            negative = max(negative, limits.min_score)
        total += positive + negative
    action, forced_by = forced if forced is not None else (Action.NO_ACTION, None)
    if forced is None:
        for candidate, threshold in scores.thresholds:
            if total >= threshold:
                action = candidate
                break
    return Verdict(
        score=round(total, 4),
        required=scores.required,
        action=action,
        symbols=symbols,
        language="en",
        elapsed_ms=1.5,
        forced_by=forced_by,
    )


@pytest.mark.parametrize("seed", range(40))
def test_decide_matches_the_rules_on_random_hits(seed: int) -> None:
    scores = load_scores()
    rng = random.Random(seed)
    known = sorted(scores.symbols)
    grouped = [n for n in known if scores.symbols[n].group]
    names = [*rng.sample(known, 12), *rng.sample(grouped, 8), "UNKNOWN_A", "UNKNOWN_B"]
    options = ["a", "b", "c", "a"]
    for _ in range(25):
        hits = [
            Hit(
                rng.choice(names),
                weight=rng.choice([1.0, 0.5, -0.7, rng.uniform(-2, 2)]),
                options=tuple(rng.sample(options, rng.randint(0, 3))),
                force=rng.choice([None] * 12 + list(Action)),
            )
            for _ in range(rng.randint(0, 30))
        ]
        got = decide(hits, scores, language="en", elapsed_ms=1.5)
        want = _reference(hits, scores)
        assert got == want
        assert list(got.symbols) == list(want.symbols)  # the order symbols are shown in
