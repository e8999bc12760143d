from __future__ import annotations

from pathlib import Path

import pytest

from seawall.errors import ConfigError
from seawall.policy.model import Action
from seawall.policy.scores import build_scores, load_scores


def test_packaged_scores_load_with_rspamd_thresholds() -> None:
    scores = load_scores()
    assert scores.threshold(Action.REJECT) == 15.0
    assert scores.threshold(Action.ADD_HEADER) == 6.0
    assert scores.required == 15.0
    # every symbol's group is defined, and thresholds run from high to low
    assert [t for _, t in scores.thresholds] == sorted(
        (t for _, t in scores.thresholds), reverse=True
    )


def test_site_file_merges_over_packaged(tmp_path: Path) -> None:
    site = tmp_path / "scores.toml"
    site.write_text("[actions]\nreject = 20.0\n[symbols.DEFECT_EMPTY]\nscore = 3.5\n")
    scores = load_scores(site)
    assert scores.threshold(Action.REJECT) == 20.0
    assert scores.threshold(Action.ADD_HEADER) == 6.0
    assert scores.symbols["DEFECT_EMPTY"].score == 3.5
    assert scores.symbols["DEFECT_EMPTY"].group == "defects"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"bogus": {}}, "unknown keys", id="unknown-top"),
        pytest.param({"actions": {"explode": 3}}, "unknown action", id="unknown-action"),
        pytest.param({"actions": {"reject": "high"}}, "expected a number", id="bad-number"),
        pytest.param({"symbols": {"X": {"score": 1, "grp": "a"}}}, "unknown keys", id="sym-key"),
        pytest.param({"symbols": {"X": {"score": 1, "group": "nope"}}}, "not defined", id="group"),
    ],
)
def test_bad_scores_are_config_errors(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_scores(doc)


def test_unreadable_site_file_is_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[actions\n")
    with pytest.raises(ConfigError):
        load_scores(bad)


def test_every_parse_defect_has_a_described_symbol() -> None:
    from seawall.message.defects import DESCRIPTIONS

    scores = load_scores()
    for defect in DESCRIPTIONS:
        symbol = scores.symbols.get(f"DEFECT_{defect.upper()}")
        assert symbol is not None, defect
        assert symbol.description
        assert symbol.group == "defects"
