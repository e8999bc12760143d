from __future__ import annotations

import pytest

from seawall.detectors.base import Hit
from seawall.policy.decide import decide
from seawall.policy.model import Action
from seawall.policy.scores import build_scores

SCORES = build_scores(
    {
        "actions": {"reject": 15, "add header": 6, "greylist": 4},
        "groups": {"headers": {"max_score": 5.0}, "ham": {"min_score": -3.0}},
        "symbols": {
            "A": {"score": 2.0, "group": "headers", "description": "a"},
            "B": {"score": 4.0, "group": "headers"},
            "C": {"score": 10.0},
            "GOOD": {"score": -2.0, "group": "ham"},
            "GOOD2": {"score": -2.0, "group": "ham"},
        },
    }
)


@pytest.mark.parametrize(
    ("hits", "score", "action"),
    [
        pytest.param([], 0.0, Action.NO_ACTION, id="nothing"),
        pytest.param([Hit("A")], 2.0, Action.NO_ACTION, id="below"),
        pytest.param([Hit("B")], 4.0, Action.GREYLIST, id="greylist-at-threshold"),
        pytest.param([Hit("C")], 10.0, Action.ADD_HEADER, id="add-header"),
        pytest.param([Hit("C"), Hit("B"), Hit("A")], 15.0, Action.REJECT, id="group-capped"),
        pytest.param([Hit("C", weight=0.5)], 5.0, Action.GREYLIST, id="weight"),
        pytest.param([Hit("GOOD"), Hit("GOOD2")], -3.0, Action.NO_ACTION, id="negative-cap"),
    ],
)
def test_thresholds_and_groups(hits: list[Hit], score: float, action: Action) -> None:
    verdict = decide(hits, SCORES)
    assert verdict.score == pytest.approx(score)
    assert verdict.action is action
    assert verdict.required == 15.0


def test_unknown_symbol_scores_zero_but_is_shown() -> None:
    verdict = decide([Hit("NEW_THING", options=("x",))], SCORES)
    assert verdict.symbols["NEW_THING"].score == 0.0
    assert verdict.symbols["NEW_THING"].options == ("x",)


def test_duplicate_symbol_keeps_largest_weight_and_all_options() -> None:
    verdict = decide([Hit("C", 0.2, ("one",)), Hit("C", 0.7, ("two",))], SCORES)
    assert verdict.symbols["C"].score == pytest.approx(7.0)
    assert verdict.symbols["C"].options == ("one", "two")


def test_forced_action_wins_over_score_and_names_its_symbol() -> None:
    verdict = decide([Hit("GOOD"), Hit("VIRUS", force=Action.REJECT)], SCORES)
    assert verdict.action is Action.REJECT
    assert verdict.forced_by == "VIRUS"
    verdict = decide([Hit("X", force=Action.GREYLIST), Hit("Y", force=Action.SOFT_REJECT)], SCORES)
    assert verdict.action is Action.SOFT_REJECT


def test_verdict_carries_language_and_explains_itself() -> None:
    verdict = decide([Hit("A", options=("evidence",))], SCORES, language="de", elapsed_ms=1.5)
    assert verdict.language == "de"
    assert verdict.elapsed_ms == 1.5
    assert verdict.symbols["A"].description == "a"
    assert verdict.campaign is None
