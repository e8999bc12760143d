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


def test_every_section_is_frozen_keyword_only_and_strict() -> None:
    import msgspec

    from seawall.config import Limits, Section, ServeSettings

    sections = Section.__subclasses__()
    assert Config in sections
    assert len(sections) > 20
    for cls in sections:
        assert cls.__struct_config__.frozen, cls
        assert cls.__struct_config__.forbid_unknown_fields, cls
        with pytest.raises(msgspec.ValidationError, match="unknown field `bogus`"):
            msgspec.convert({"bogus": 1}, cls)
        with pytest.raises(TypeError):
            cls(1)
    limits = Limits(max_parts=5)
    with pytest.raises(AttributeError):
        limits.max_parts = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limits(5)  # type: ignore[call-arg]
    assert hash(Limits(max_parts=5)) == hash(Limits(max_parts=5))
    assert {ServeSettings(), ServeSettings()} == {ServeSettings()}


# Environment overrides: SEAWALL_SECTION__KEY=value


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SEAWALL_ variables from the test runner's environment."""
    import os

    for name in list(os.environ):
        if name.startswith("SEAWALL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_env_overrides_read_toml_values(env: pytest.MonkeyPatch) -> None:
    env.setenv("SEAWALL_SERVE__WORKERS", "4")
    env.setenv("SEAWALL_SERVE__BUDGET_S", "2.5")
    env.setenv("SEAWALL_ENGINE__IO_TIMEOUT_S", "3")  # an int where a float is wanted
    env.setenv("SEAWALL_DETECTORS__DNSBL__ENABLED", "true")
    env.setenv("SEAWALL_DETECTORS__CLASSIFIER__ENABLED", "false")
    env.setenv("SEAWALL_ISP__NETWORKS", '["10.0.0.0/8", "192.0.2.0/24"]')
    env.setenv("SEAWALL_DETECTORS__LANGUAGE__SCORES", "{ de = 3.0 }")
    env.setenv("SEAWALL_SERVE__FAIL_POLICY", "accept")  # a bare string
    env.setenv("SEAWALL_SERVE__MILTER__REJECT_CODE", '"554 5.7.1"')  # a quoted one
    env.setenv("SEAWALL_STATE_DIR", "/srv/seawall")  # a top-level key
    config = load_config()
    assert config.serve.workers == 4
    assert config.serve.budget_s == 2.5
    assert config.engine.io_timeout_s == 3.0
    assert config.detectors.dnsbl.enabled is True
    assert config.detectors.classifier.enabled is False
    assert config.isp.networks == ("10.0.0.0/8", "192.0.2.0/24")
    assert config.detectors.language.scores == {"de": 3.0}
    assert config.serve.fail_policy == "accept"
    assert config.serve.milter.reject_code == "554 5.7.1"
    assert config.state_dir == "/srv/seawall"
    # Everything else keeps its default.
    assert config.serve.max_scans == Config().serve.max_scans
    assert config.detectors.dnsbl.lists == Config().detectors.dnsbl.lists


def test_env_string_keys_take_unquoted_values_as_written(env: pytest.MonkeyPatch) -> None:
    env.setenv("SEAWALL_SERVE__MILTER__LISTEN", "7381")  # a number, but the key is a string
    env.setenv("SEAWALL_SCORES_FILE", "2024-01-01")  # a TOML date, but the key is a string
    env.setenv("SEAWALL_SERVE__HTTP__LISTEN", "0.0.0.0:7380")  # not TOML at all
    env.setenv("SEAWALL_DETECTORS__CLAMAV__ADDRESS", "1\nother = 2")  # not one TOML value
    config = load_config()
    assert config.serve.milter.listen == "7381"
    assert config.scores_file == "2024-01-01"
    assert config.serve.http.listen == "0.0.0.0:7380"
    assert config.detectors.clamav.address == "1\nother = 2"


def test_env_overrides_come_after_the_file(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "s.toml"
    conf.write_text("[serve]\nworkers = 2\nmax_scans = 7\n[serve.http]\nallow_learn = false\n")
    env.setenv("SEAWALL_SERVE__WORKERS", "8")
    env.setenv("SEAWALL_SERVE__HTTP__KEEPALIVE_S", "5")
    config = load_config(conf)
    assert config.serve.workers == 8  # the environment wins
    assert config.serve.max_scans == 7  # the file's other keys stay
    assert config.serve.http.allow_learn is False
    assert config.serve.http.keepalive_s == 5.0


def test_env_typo_is_an_error_naming_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SEAWALL_SERVE__WORKRES", "4")
    with pytest.raises(ConfigError, match="SEAWALL_SERVE__WORKRES.*SEAWALL_SERVE__WORKERS"):
        load_config()
    env.delenv("SEAWALL_SERVE__WORKRES")
    env.setenv("SEAWALL_DETECTORS__LANGUAGE__SCORES__DE", "3")  # below a key: no key either
    with pytest.raises(ConfigError, match="SEAWALL_DETECTORS__LANGUAGE__SCORES__DE"):
        load_config()
    env.delenv("SEAWALL_DETECTORS__LANGUAGE__SCORES__DE")
    env.setenv("SEAWALL_SERVE__MILTER", "x")  # a table, not a key
    with pytest.raises(ConfigError, match=r"SEAWALL_SERVE__MILTER: \[serve.milter\] is a table"):
        load_config()


def test_env_bad_value_is_an_error_naming_the_variable(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    for variable, value in [
        ("SEAWALL_SERVE__WORKERS", "four"),
        ("SEAWALL_SERVE__WORKERS", "-1"),
        ("SEAWALL_SERVE__FAIL_POLICY", "later"),
        ("SEAWALL_DETECTORS__DNSBL__ENABLED", "True"),  # TOML booleans are lower-case
        ("SEAWALL_DETECTORS__LANGUAGE__SCORES", '{ de = "x" }'),
        ("SEAWALL_DETECTORS__DNSBL__LISTS", '[{ name = "x", zone = "y", kind = "z" }]'),
    ]:
        env.setenv(variable, value)
        with pytest.raises(ConfigError, match=f"^{variable}: "):
            load_config()
        env.delenv(variable)
    # With a file, the error still names whichever of the two holds the bad value.
    conf = tmp_path / "s.toml"
    conf.write_text("[serve]\nmax_scans = 0\n")
    env.setenv("SEAWALL_SERVE__WORKERS", "4")
    with pytest.raises(ConfigError, match=f"^{conf}: .*max_scans"):
        load_config(conf)
    conf.write_text("[serve]\nmax_scans = 3\n")
    env.setenv("SEAWALL_SERVE__WORKERS", "many")
    with pytest.raises(ConfigError, match="^SEAWALL_SERVE__WORKERS: .*workers"):
        load_config(conf)


def test_other_seawall_variables_are_not_overrides(env: pytest.MonkeyPatch) -> None:
    from seawall.config import Config
    from seawall.environment import ENV_NOT_KEYS, env_overrides

    env.setenv("SEAWALL_STATE", "/from/state")
    env.setenv("SEAWALL_CORPORA", "/corpora")
    env.setenv("SEAWALL_CORPUS_CACHE", "/cache")
    env.setenv("SEAWALL_SOMETHING_ELSE", "1")  # no "__": not meant as a key
    assert env_overrides(Config) == []
    assert load_config().state_dir == "/from/state"
    # SEAWALL_STATE still beats the state_dir key, from the file or the environment.
    env.setenv("SEAWALL_STATE_DIR", "/from/key")
    assert [o.variable for o in env_overrides(Config)] == ["SEAWALL_STATE_DIR"]
    assert load_config().state_dir == "/from/state"
    assert load_config(state_dir="/from/flag").state_dir == "/from/flag"
    env.delenv("SEAWALL_STATE")
    assert load_config().state_dir == "/from/key"
    # None of the reserved names could ever name a key.
    assert not any(env_overrides(Config, dict.fromkeys(ENV_NOT_KEYS, "x")))


def test_env_values_are_not_logged(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("SEAWALL_DETECTORS__DNSBL__LISTS", '[{ name = "zen", zone = "SECRETKEY.zen" }]')
    caplog.set_level("DEBUG")
    config = load_config()
    assert config.detectors.dnsbl.lists[0].zone == "SECRETKEY.zen"
    assert "SEAWALL_DETECTORS__DNSBL__LISTS" in caplog.text
    assert "SECRETKEY" not in caplog.text


@pytest.mark.parametrize(
    ("given", "state", "state_dir"),
    [
        ("/srv/seawall", "", "/srv/seawall"),
        ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2", "var"),
        ("rediss://redis.example:6380/0", "rediss://redis.example:6380/0", "var"),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
            "var",
        ),
    ],
)
def test_state_is_a_folder_or_a_redis_url(
    given: str, state: str, state_dir: str, env: pytest.MonkeyPatch
) -> None:
    from seawall.config import state_url

    for config in (load_config(state_dir=given), _with_env(env, "SEAWALL_STATE", given)):
        assert (config.state, config.state_dir) == (state, state_dir)
        assert state_url(config) == (state or None)


def _with_env(env: pytest.MonkeyPatch, name: str, value: str) -> Config:
    env.setenv(name, value)
    try:
        return load_config()
    finally:
        env.delenv(name)


def test_an_unknown_state_scheme_is_an_error(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"--state: unknown state scheme memcached://"):
        load_config(state_dir="memcached://127.0.0.1:11211")
    env.setenv("SEAWALL_STATE", "http://x")
    with pytest.raises(ConfigError, match=r"SEAWALL_STATE: unknown state scheme http://"):
        load_config()
    env.delenv("SEAWALL_STATE")
    conf = tmp_path / "seawall.toml"
    conf.write_text('state = "redis+sentinel://x:26379"\n')
    with pytest.raises(ConfigError, match=r"state: unknown state scheme redis\+sentinel://"):
        load_config(conf)
    conf.write_text('state = "/srv/elsewhere"\n')
    assert load_config(conf).state_dir == "/srv/elsewhere"
