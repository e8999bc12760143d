"""A detector's graded weight reaches the learned scores, also on a symbol scored 0."""

from __future__ import annotations

import math
import random

import pytest

from seawall.classifier.scores import TAU, apply, fit, symbol_vector, threshold
from seawall.config import LearnedScoresSettings
from seawall.policy.decide import decide
from seawall.policy.model import Hit
from seawall.policy.scores import Scores, build_scores


def verdict_score(vector: dict[str, float], scores: Scores) -> float:
    return decide([Hit(name, weight) for name, weight in vector.items()], scores).score


def verdict_loss(
    rows: list[tuple[bool, dict[str, float]]], scores: Scores, base: Scores, ham_weight: float
) -> float:
    """The fit's weighted log-loss, computed from the verdicts' own scores."""
    spam_n = sum(spam for spam, _ in rows)
    ham_n = len(rows) - spam_n
    t = threshold(base)
    total = 0.0
    for spam, vector in rows:
        m = (verdict_score(vector, scores) - t) / TAU
        c = 1.0 / spam_n if spam else ham_weight / ham_n
        total += c * math.log1p(math.exp(-m if spam else m))
    return total


def test_a_graded_weight_on_a_symbol_scored_zero_is_recorded() -> None:
    """URL_MANY is shipped at 0 and a site may zero URL_IP (graded by its link count):
    the vector keeps the detector's weight, not 1.0, so the fit sees what the verdict
    will score once the symbol learns a score."""
    site = build_scores(
        {
            "actions": {"reject": 15},
            "groups": {"urls": {"max_score": 5.0}},
            "symbols": {
                "URL_IP": {"score": 0.0, "group": "urls"},
                "URL_MANY": {"score": 0.0, "group": "urls"},
                "URL_PORT": {"score": 0.3, "group": "urls"},
            },
        }
    )
    hits = [Hit("URL_IP", 0.4), Hit("URL_MANY", 0.25), Hit("URL_PORT", 2.0)]
    verdict = decide(hits, site)
    assert symbol_vector(verdict.symbols, site) == {
        "URL_IP": 0.4,
        "URL_MANY": 0.25,
        "URL_PORT": 2.0,
    }


def test_a_learned_graded_oddity_scores_as_it_was_fitted() -> None:
    """An oddity seen graded on enough ham and spam learns a weight for the graded
    feature: the verdict's points for it are that weight times the grade."""
    base = build_scores(
        {
            "actions": {"reject": 15, "add header": 6},
            "groups": {},
            "symbols": {"ODD": {"score": 0.0}, "LINK": {"score": 2.0}},
        }
    )
    rng = random.Random(5)
    rows: list[tuple[bool, dict[str, float]]] = []
    for i in range(800):
        spam = i % 2 == 0
        grade = rng.uniform(0.6, 1.0) if spam else rng.uniform(0.0, 0.3)
        hits = [Hit("ODD", round(grade, 3))]
        if spam and rng.random() < 0.5:
            hits.append(Hit("LINK"))
        rows.append((spam, symbol_vector(decide(hits, base).symbols, base)))
    assert {round(v["ODD"], 3) for _, v in rows} != {1.0}
    settings = LearnedScoresSettings(min_messages=1)
    table = fit(rows, base, settings)
    applied = apply(base, table, settings)
    assert table.scores["ODD"] > 0
    assert verdict_loss(rows, applied, base, settings.ham_weight) == pytest.approx(
        table.loss, rel=2e-3
    )
