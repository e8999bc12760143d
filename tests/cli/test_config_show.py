"""``seawall config show``: the effective configuration (or the defaults) as TOML, every key."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from msgspec import inspect as mi

from seawall.cli import main
from seawall.config import Config, load_config


@pytest.fixture(autouse=True)
def _no_seawall_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SEAWALL_"):
            monkeypatch.delenv(name)


def schema_keys(node: mi.StructType, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key of the settings tree, tables' keys below them, an array of tables' keys
    below its name."""
    for field in node.fields:
        key = (*prefix, field.encode_name)
        yield key
        kind = field.type
        if isinstance(kind, mi.VarTupleType | mi.ListType) and isinstance(
            kind.item_type, mi.StructType
        ):
            kind = kind.item_type
        if isinstance(kind, mi.StructType):
            yield from schema_keys(kind, key)


def lookup(document: dict[str, object], key: tuple[str, ...]) -> bool:
    node: object = document
    for name in key:
        if isinstance(node, list):
            if not node:  # an empty array of tables ("nas = []") shows no keys below it
                return True
            node = node[0]
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


def show(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["config", "show", *argv]) == 0
    return capsys.readouterr().out


def test_every_key_of_config_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    text = show(capsys, "--defaults")
    document = tomllib.loads(text)
    keys = list(schema_keys(mi.type_info(Config)))  # type: ignore[arg-type]
    assert len(keys) > 150
    missing = [".".join(k) for k in keys if not lookup(document, k)]
    assert missing == ["scores_file"]  # no value: shown as a comment
    assert "\n# scores_file =   (not set)\n" in text
    assert text.startswith("# seawall config show: the defaults\n")


def test_the_defaults_load_back_as_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = tmp_path / "defaults.toml"
    shown.write_text(show(capsys, "--defaults"))
    # "var" is relative: from the file's folder.
    expected = msgspec.structs.replace(Config(), state_dir=str(tmp_path / "var"))
    assert load_config(shown) == expected


def test_the_effective_configuration_loads_back_as_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scores.toml").write_text("[actions]\nreject = 12.0\n")
    conf = tmp_path / "seawall.toml"
    conf.write_text(
        'scores_file = "scores.toml"\n'
        '[isp]\ndynamic = ["198.19.0.0/16"]\n'
        '[detectors.language]\nscores = { de = 3.0, "zh-tw" = 1.5 }\n'
        '[detectors.headers]\nproviders = [["example.net", "example-mail.net"]]\n'
        '[[detectors.dnsbl.lists]]\nname = "local"\nzone = "bl.example.net"\n'
        'codes = { "127.0.0.2" = "RBL_LOCAL" }\n'
        '[serve.milter]\nreject_code = "554 5.7.1"\n'
        '[detectors.clamav]\naddress = "/run/a \\"b\\" \\\\ c"\n'
    )
    monkeypatch.setenv("SEAWALL_SERVE__WORKERS", "3")
    monkeypatch.chdir(tmp_path)
    text = show(capsys, "--config", "seawall.toml", "--state", "here")
    assert text.startswith("# seawall config show: the effective configuration (seawall.toml")
    shown = tmp_path / "shown" / "seawall.toml"
    shown.parent.mkdir()
    shown.write_text(text)
    monkeypatch.delenv("SEAWALL_SERVE__WORKERS")
    again = load_config(shown)
    config = load_config(conf, state_dir=str(tmp_path / "here"))
    assert again == msgspec.structs.replace(config, serve=again.serve)
    assert again.serve.workers == 3  # the environment's value is part of what is shown
    assert again.scores_file == str(tmp_path / "scores.toml")
    assert again.detectors.dnsbl.lists[0].codes == {"127.0.0.2": "RBL_LOCAL"}
    assert again.serve.milter.reject_code == "554 5.7.1"
    assert again.detectors.clamav.address == '/run/a "b" \\ c'


def test_the_state_password_is_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    text = show(capsys, "--state", "redis://:s3cret@127.0.0.1:6379/0")
    assert 'state = "redis://***@127.0.0.1:6379/0"' in text
    assert "s3cret" not in text


def test_a_bad_file_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text('[isp]\ndynamic = ["198.19.0.0/33"]\n')
    assert main(["config", "show", "--config", str(conf)]) == 2
    err = capsys.readouterr().err
    assert f"{conf}: isp.dynamic: '198.19.0.0/33' is not a network" in err
