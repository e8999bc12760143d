"""The learned scores model the score the verdict computes: group caps and graded weights."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from seawall.classifier.capped import Design
from seawall.classifier.scores import TAU, apply, bounds, fit, symbol_vector, threshold
from seawall.config import LearnedScoresSettings
from seawall.policy.decide import decide
from seawall.policy.model import Hit
from seawall.policy.scores import Scores, build_scores, load_scores

BASE = load_scores()


def toy() -> Scores:
    """Two traits in a group capped at 1 point, one ungrouped, a ham credit capped at -1."""
    return build_scores(
        {
            "actions": {"reject": 15, "add header": 6, "greylist": 4},
            "groups": {"layout": {"max_score": 1.0}, "good": {"min_score": -1.0}},
            "symbols": {
                "TRAIT_A": {"score": 1.0, "group": "layout"},
                "TRAIT_B": {"score": 1.0, "group": "layout"},
                "LINK": {"score": 2.0},
                "KNOWN_A": {"score": -1.0, "group": "good"},
                "KNOWN_B": {"score": -1.0, "group": "good"},
            },
        }
    )


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


def test_a_capped_group_earns_nothing_past_its_cap() -> None:
    """Spam carries both layout traits, capped at 1 point together: raising them cannot
    move a verdict, so they keep their shipped score; the ungrouped link learns instead."""
    base = toy()
    rng = random.Random(3)
    rows: list[tuple[bool, dict[str, float]]] = []
    for i in range(600):
        spam = i % 2 == 0
        vector: dict[str, float] = {}
        if spam:
            vector = {"TRAIT_A": 1.0, "TRAIT_B": 1.0}
            if rng.random() < 0.7:
                vector["LINK"] = 1.0
        elif rng.random() < 0.05:
            vector["LINK"] = 1.0
        rows.append((spam, vector))
    table = fit(rows, base, LearnedScoresSettings())
    assert table.scores["TRAIT_A"] == pytest.approx(1.0, abs=0.01)
    assert table.scores["TRAIT_B"] == pytest.approx(1.0, abs=0.01)
    assert table.scores["LINK"] > 3.0


def test_a_capped_credit_earns_nothing_past_its_cap() -> None:
    """Ham carries both known-sender credits, capped at -1 together: they need not grow
    (and may not: a credit never grows past its shipped size)."""
    base = toy()
    rows: list[tuple[bool, dict[str, float]]] = []
    for i in range(400):
        spam = i % 2 == 0
        rows.append((spam, {"LINK": 1.0} if spam else {"KNOWN_A": 1.0, "KNOWN_B": 1.0}))
    table = fit(rows, base, LearnedScoresSettings())
    for name in ("KNOWN_A", "KNOWN_B"):
        assert -1.0 <= table.scores[name] <= 0.0


def test_the_fit_loss_is_the_loss_of_the_verdicts_it_makes() -> None:
    """On real groups (markup capped at 1, headers at 5, URLs at 5, a pinned symbol in a
    capped group) the loss the fit reports is the loss of the scores the verdict adds."""
    rng = random.Random(7)
    names = [
        "MIME_HTML_ONLY",
        "HTML_FONT_LARGE",
        "HTML_FONT_COLORS",
        "HTML_BGCOLOR",
        "HDR_MID_FORGED_OUTLOOK",
        "HDR_XMAILER_FORGED_OUTLOOK",
        "HDR_DATE_FUTURE",
        "URL_IP",
        "URL_PORT",
        "URL_TEXT_MISMATCH",
        "CLASSIFIER_SPAM",
        "CLASSIFIER_HAM",
    ]
    rows: list[tuple[bool, dict[str, float]]] = []
    for i in range(1200):
        spam = i % 3 != 0
        p = 0.7 if spam else 0.1
        vector = {n: 1.0 for n in names[:10] if rng.random() < p}
        if "URL_IP" in vector:
            vector["URL_IP"] = round(rng.uniform(0.3, 1.5), 3)  # graded
        if spam:
            vector["CLASSIFIER_SPAM"] = round(rng.uniform(0.2, 1.0), 4)
        else:
            vector["CLASSIFIER_HAM"] = round(rng.uniform(0.1, 1.0), 4)
        rows.append((spam, vector))
    settings = LearnedScoresSettings(min_messages=1, pinned={"HDR_DATE_FUTURE": 4.0})
    table = fit(rows, BASE, settings)
    applied = apply(BASE, table, settings)
    # The caps bind on many messages: their verdict is not the plain sum of the points.
    capped = sum(
        abs(sum(applied.symbols[n].score * w for n, w in v.items()) - verdict_score(v, applied))
        > 0.01
        for _, v in rows
    )
    assert capped > 100
    assert verdict_loss(rows, applied, BASE, settings.ham_weight) == pytest.approx(
        table.loss, rel=2e-3
    )


@pytest.mark.parametrize("seed", range(5))
def test_the_design_adds_up_as_decide_does(seed: int) -> None:
    """Random vectors and random scores within the box: the fit's margin is the verdict's
    score, caps on both sides, pinned points and negative weights included."""
    rng = random.Random(seed)
    settings = LearnedScoresSettings(pinned={"HTML_CENTER": 0.7, "REP_IP_HAM": -1.5})
    box = bounds(BASE, settings)
    pool = [*box.names[:: max(1, len(box.names) // 40)], "HTML_CENTER", "REP_IP_HAM"]
    rows = []
    for _ in range(60):
        picked = rng.sample(pool, rng.randint(0, 12))
        rows.append({n: round(rng.uniform(-0.5, 2.0), 3) for n in picked})
    scores = np.array([rng.uniform(lo, hi) for lo, hi in zip(box.low, box.high, strict=True)])
    index = {n: i for i, n in enumerate(box.names)}
    x = np.zeros((len(rows), len(box.names)))
    fixed = []
    for r, vector in enumerate(rows):
        fixed.append({n: box.pinned[n] * w for n, w in vector.items() if n in box.pinned})
        for n, w in vector.items():
            if n in index:
                x[r, index[n]] = w
    signs = np.where(box.prior < 0, -1.0, 1.0)
    over = build_scores(
        {
            "actions": {"reject": 15},
            "groups": {
                name: {
                    k: v
                    for k, v in (("max_score", g.max_score), ("min_score", g.min_score))
                    if v is not None
                }
                for name, g in BASE.groups.items()
            },
            "symbols": {
                name: {"score": float(s), "group": BASE.symbols[name].group}
                for name, s in [*zip(box.names, scores, strict=True), *box.pinned.items()]
                if BASE.symbols[name].group is not None
            }
            | {
                name: {"score": float(s)}
                for name, s in [*zip(box.names, scores, strict=True), *box.pinned.items()]
                if BASE.symbols[name].group is None
            },
        }
    )
    design = Design.build(x, box.names, signs, over, fixed)
    margins = design.margins(scores)
    for r, vector in enumerate(rows):
        assert margins[r] == pytest.approx(verdict_score(vector, over), abs=1e-3)


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
