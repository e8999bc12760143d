from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from seawall.config import Config, load_config
from seawall.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "seawall.example.toml"


def test_documented_example_is_exactly_the_defaults() -> None:
    # But its relative state_dir, which is taken from the file's folder.
    defaults = msgspec.structs.replace(Config(), state_dir=str(EXAMPLE.parent / "var"))
    assert load_config(EXAMPLE) == defaults


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


def test_env_string_keys_take_unquoted_values_as_written(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    env.chdir(tmp_path)
    (tmp_path / "2024-01-01").write_text("")
    env.setenv("SEAWALL_STATE_DIR", "7381")  # a number, but the key is a string
    env.setenv("SEAWALL_SCORES_FILE", "2024-01-01")  # a TOML date, but the key is a string
    env.setenv("SEAWALL_SERVE__HTTP__LISTEN", "0.0.0.0:7380")  # not TOML at all
    env.setenv("SEAWALL_DETECTORS__CLAMAV__ADDRESS", "1\nother = 2")  # not one TOML value
    config = load_config()
    assert config.state_dir == "7381"  # from the environment: from the working directory
    assert config.scores_file == "2024-01-01"
    assert config.serve.http.listen == "0.0.0.0:7380"
    assert config.detectors.clamav.address == "1\nother = 2"
    # Taken as written, then checked: a string, but not a reply code.
    env.setenv("SEAWALL_SERVE__MILTER__LISTEN", "7381")
    with pytest.raises(ConfigError, match=r"^SEAWALL_SERVE__MILTER__LISTEN: serve.milter.listen"):
        load_config()


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
    conf.write_text('state = "etcd://x:2379"\n')
    with pytest.raises(ConfigError, match=r"state: unknown state scheme etcd://"):
        load_config(conf)
    conf.write_text('state = "/srv/elsewhere"\n')
    assert load_config(conf).state_dir == "/srv/elsewhere"


# Every value is checked as it loads, each error naming the key and where it came from.


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('[isp]\ndynamic = ["198.19.0.0/33"]', "isp.dynamic: '198.19.0.0/33' is not a network"),
        ('[isp]\nnetworks = ["10.0.0.0/8", "ten"]', "isp.networks: 'ten' is not a network"),
        ('[trusted]\nnetworks = ["::1/129"]', "trusted.networks: '::1/129' is not a network"),
        ('[isp]\nrelays = ["192.0.2.0/99"]', "isp.relays: '192.0.2.0/99' is not a network"),
        (
            '[serve.policy]\nallow_networks = ["mail.example"]',
            "serve.policy.allow_networks: 'mail.example' is not a network",
        ),
        ('[serve.milter]\nlisten = "7381"', "serve.milter.listen: expected host:port"),
        ('[serve.http]\nlisten = "localhost:7380"', "serve.http.listen: expected host:port"),
        ('[serve.spamd]\nlisten = "127.0.0.1:70000"', "serve.spamd.listen: bad port"),
        ('[serve.policy]\nlisten = "unix:run/p.sock"', "serve.policy.listen: a unix socket"),
        (
            '[detectors.campaigns]\ntracker_listen = "unix:/run/t.sock"',
            "detectors.campaigns.tracker_listen: a TCP host:port, not a unix socket",
        ),
        (
            '[detectors.campaigns]\ntracker_advertise = "tracker.example:7390"',
            "detectors.campaigns.tracker_advertise: expected host:port",
        ),
        ('[serve.milter]\nreject_code = "450 4.7.1"', "serve.milter.reject_code: expected like"),
        ('[serve.milter]\ntempfail_code = "451"', "serve.milter.tempfail_code: expected like"),
        ('scores_file = "missing.toml"', "scores_file: no such file: .*missing.toml"),
        ('scores_file = "."', "scores_file: is not a file"),
        ("[serve]\ngreylist_delay_s = 600.0\ngreylist_expire_s = 300.0", "greylist_expire_s"),
        ("[serve.policy]\nwindow_s = 0", "serve.policy.window_s: must be above 0"),
        ("[serve.policy]\nhistory_min_share = 2", "serve.policy.history_min_share"),
        # Ranges, by msgspec at the key.
        ("[limits]\nmax_parts = 0", r">= 1 - at `\$.limits.max_parts`"),
        ("[engine]\nio_timeout_s = 0", r"> 0.* - at `\$.engine.io_timeout_s`"),
        ("[detectors.campaigns]\nspam_share = 1.5", r"<= 1.* - at `\$.detectors.campaigns"),
        ("[detectors.classifier]\nhash_bits = 40", r"<= 26 - at `\$.detectors.classifier"),
        ("[serve]\ndrain_s = -1", r">= 0.* - at `\$.serve.drain_s`"),
    ],
)
def test_a_value_that_cannot_work_is_an_error_naming_file_and_key(
    toml: str, error: str, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text(toml + "\n")
    with pytest.raises(ConfigError, match=f"^{conf}: .*{error}"):
        load_config(conf)


def test_every_problem_is_named_at_once_with_its_source(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text('[isp]\ndynamic = ["198.19.0.0/33"]\n[serve.milter]\nlisten = "x"\n')
    env.setenv("SEAWALL_TRUSTED__NETWORKS", '["300.0.0.0/8"]')
    with pytest.raises(ConfigError) as caught:
        load_config(conf)
    assert str(caught.value) == "; ".join(
        [
            "SEAWALL_TRUSTED__NETWORKS: trusted.networks: '300.0.0.0/8' is not a network",
            f"{conf}: isp.dynamic: '198.19.0.0/33' is not a network",
            f"{conf}: serve.milter.listen: expected host:port with a numeric IP, or unix:/path;"
            " got 'x'",
        ]
    )


def test_good_values_pass(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    from seawall.config import validate

    (tmp_path / "scores.toml").write_text("")
    conf = tmp_path / "seawall.toml"
    conf.write_text(
        'scores_file = "scores.toml"\n'
        '[isp]\nnetworks = ["198.18.0.0/15", "2001:db8::/32"]\ndynamic = ["198.19.0.0/16"]\n'
        '[trusted]\nnetworks = ["10.0.0.1/8"]\n'  # host bits set: the network is meant
        '[serve.milter]\nlisten = "unix:/run/seawall/milter.sock"\n'
        '[serve.http]\nlisten = "[::1]:7380"\n[serve.spamd]\nlisten = ""\n'
        '[detectors.campaigns]\ntracker_listen = "0.0.0.0:0"\n'
        'tracker_advertise = "192.0.2.7:7390"\n'
    )
    config = load_config(conf)
    validate(config)
    validate(Config())
    assert config.serve.spamd.listen == ""  # turned off, not an error


def test_validate_checks_a_config_built_in_code() -> None:
    from seawall.config import IspSettings, validate

    bad = msgspec.structs.replace(Config(), isp=IspSettings(dynamic=("198.19.0.0/33",)))
    with pytest.raises(ConfigError, match="^isp.dynamic: '198.19.0.0/33' is not a network$"):
        validate(bad)


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_bytes(b"[serve]\nworkers = 2 # \xff\n")
    with pytest.raises(ConfigError, match=f"^{conf}: .*utf-8"):
        load_config(conf)
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.toml")


# Relative paths in a file are taken from the file's folder, wherever the command runs.


def test_relative_paths_are_taken_from_the_files_folder(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc" / "seawall"
    etc.mkdir(parents=True)
    (etc / "scores.toml").write_text("")
    conf = etc / "seawall.toml"
    conf.write_text('scores_file = "scores.toml"\nstate_dir = "../../var/seawall"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env.chdir(elsewhere)
    config = load_config(conf)
    assert config.scores_file == str(etc / "scores.toml")
    assert Path(config.state_dir).resolve() == tmp_path / "var" / "seawall"
    # The same from a relative --config path.
    env.chdir(tmp_path)
    assert load_config(Path("etc/seawall/seawall.toml")).scores_file == str(etc / "scores.toml")
    # A folder in "state" too; absolute paths and URLs stay as they are.
    conf.write_text('state = "state"\n')
    assert load_config(conf).state_dir == str(etc / "state")
    conf.write_text('state = "redis://127.0.0.1:6379/0"\nstate_dir = "/srv/seawall"\n')
    config = load_config(conf)
    assert (config.state, config.state_dir) == ("redis://127.0.0.1:6379/0", "/srv/seawall")
    # From the environment or --state, a relative path is from the working directory.
    env.setenv("SEAWALL_STATE_DIR", "var")
    assert load_config(conf).state_dir == "var"
    assert load_config(conf, state_dir="here").state_dir == "here"


def test_a_state_left_in_the_working_directory_is_pointed_at(
    tmp_path: Path, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "run" / "var").mkdir(parents=True)
    (tmp_path / "run" / "var" / "state.sqlite").write_text("")
    (tmp_path / "etc").mkdir()
    conf = tmp_path / "etc" / "seawall.toml"
    conf.write_text('state_dir = "var"\n')
    env.chdir(tmp_path / "run")
    assert load_config(conf).state_dir == str(tmp_path / "etc" / "var")
    assert f"a state from the working directory is in {tmp_path / 'run' / 'var'}" in caplog.text
