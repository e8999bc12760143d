from __future__ import annotations

from pathlib import Path

import pytest

from seawall.config import Config, load_config
from seawall.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "seawall.example.toml"


def test_documented_example_is_exactly_the_defaults() -> None:
    assert load_config(EXAMPLE) == Config()


def test_unknown_key_and_wrong_type_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "a.toml"
    bad.write_text("[detectors.urls]\nmany_urls = 'lots'\n")
    with pytest.raises(ConfigError, match="many_urls"):
        load_config(bad)
    bad.write_text("[detectors.language]\nscorez = {}\n")
    with pytest.raises(ConfigError, match="scorez"):
        load_config(bad)


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "s.toml"
    conf.write_text('state_dir = "/from/file"\n')
    monkeypatch.delenv("SEAWALL_STATE", raising=False)
    assert load_config(conf).state_dir == "/from/file"
    monkeypatch.setenv("SEAWALL_STATE", "/from/env")
    assert load_config(conf).state_dir == "/from/env"
    assert load_config(conf, state_dir="/from/flag").state_dir == "/from/flag"
    assert load_config().state_dir == "/from/env"


def test_language_scores_map(tmp_path: Path) -> None:
    conf = tmp_path / "l.toml"
    conf.write_text("[detectors.language]\nscores = { de = 3.0, ru = 4 }\n")
    assert load_config(conf).detectors.language.scores == {"de": 3.0, "ru": 4.0}


def test_parse_limits_defaults_match_the_config_defaults() -> None:
    from seawall.message import ParseLimits

    assert ParseLimits.from_config(Config()) == ParseLimits()
