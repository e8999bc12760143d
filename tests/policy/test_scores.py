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


@pytest.mark.parametrize(
    ("actions", "named"),
    [
        pytest.param({"quarantine": 20}, ["quarantine (20) is above reject (15)"], id="issue-19"),
        pytest.param({"greylist": 7}, ["greylist (7) is above add header (6)"], id="greylist"),
        pytest.param(
            {"soft_reject": 5, "rewrite_subject": 8},
            ["rewrite subject (8) is above soft reject (5)", "add header (6) is above soft"],
            id="two",
        ),
        pytest.param({"reject": 5}, ["add header (6) is above reject (5)"], id="reject-low"),
    ],
)
def test_thresholds_out_of_order_are_config_errors(
    tmp_path: Path, actions: dict[str, float], named: list[str]
) -> None:
    """decide() takes the highest threshold reached, so a milder action above a more severe
    one would answer more spam more mildly; the site file is refused, naming both."""
    site = tmp_path / "scores.toml"
    site.write_text("[actions]\n" + "".join(f"{k} = {v}\n" for k, v in actions.items()))
    with pytest.raises(ConfigError) as caught:
        load_scores(site)
    message = str(caught.value)
    assert message.startswith(f"{site}: actions: ")
    for text in named:
        assert text in message
    assert "reject >= quarantine >= soft reject >= rewrite subject >= add header" in message


@pytest.mark.parametrize(
    "actions",
    [
        {"quarantine": 12, "soft_reject": 10, "rewrite_subject": 8},
        {"quarantine": 15},  # a tie: the more severe action wins it
        {"add_header": False, "greylist": 7},  # an action switched off is not in the order
    ],
)
def test_thresholds_in_order_load(tmp_path: Path, actions: dict[str, object]) -> None:
    site = tmp_path / "scores.toml"
    site.write_text(
        "[actions]\n" + "".join(f"{k} = {str(v).lower()}\n" for k, v in actions.items())
    )
    scores = load_scores(site)
    assert scores.thresholds[0] == (Action.REJECT, 15.0)
    values = [t for _, t in scores.thresholds]
    assert values == sorted(values, reverse=True)


def test_site_file_spelling_replaces_the_packaged_action(tmp_path: Path) -> None:
    site = tmp_path / "scores.toml"
    site.write_text("[actions]\nadd_header = 5\n")
    scores = load_scores(site)
    assert [a for a, _ in scores.thresholds].count(Action.ADD_HEADER) == 1
    assert scores.threshold(Action.ADD_HEADER) == 5.0
    with pytest.raises(ConfigError, match="'add header' and 'add_header' are one action"):
        build_scores({"actions": {"add header": 6, "add_header": 5}})


def test_a_tie_goes_to_the_more_severe_action() -> None:
    from seawall.policy.decide import decide
    from seawall.policy.model import Hit

    scores = build_scores(
        {
            "actions": {"add header": 6, "quarantine": 15, "reject": 15},
            "symbols": {"X": {"score": 15.0}},
        }
    )
    assert [a for a, _ in scores.thresholds] == [
        Action.REJECT,
        Action.QUARANTINE,
        Action.ADD_HEADER,
    ]
    assert decide([Hit("X")], scores).action is Action.REJECT


def test_config_check_refuses_thresholds_out_of_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from seawall.cli import main

    site = tmp_path / "scores.toml"
    site.write_text("[actions]\nreject = 15\nquarantine = 20\n")
    config = tmp_path / "seawall.toml"
    config.write_text(f'scores_file = "{site}"\n')
    assert main(["config", "check", str(config), "--state", str(tmp_path / "var")]) == 2
    err = capsys.readouterr().err
    assert "quarantine (20) is above reject (15)" in err


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
