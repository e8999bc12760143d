"""The user store (seawall.users) and ``seawall user add|list``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from seawall.cli import main
from seawall.config import UserSettings, load_config
from seawall.errors import ConfigError
from seawall.users import Users, hash_password


def test_check_accepts_the_password_and_refuses_others() -> None:
    users = Users({"ana": UserSettings(password=hash_password("s3cret-pass"), roles=("learn",))})
    user = users.check("ana", "s3cret-pass")
    assert user is not None
    assert user.name == "ana"
    assert user.may("learn")
    assert user.may("view")
    assert not user.may("admin")
    assert users.check("ana", "wrong") is None
    assert users.check("bob", "s3cret-pass") is None
    # The cache of verified credentials never lets a wrong password in.
    assert users.check("ana", "s3cret-pass") is not None
    assert users.check("ana", "s3cret-pas") is None


def test_bearer_token_is_name_colon_password() -> None:
    users = Users({"ana": UserSettings(password=hash_password("pa:ss:word"))})
    assert users.check_token("ana:pa:ss:word") is not None
    for bad in ("", "ana", "ana:", ":pa:ss:word", "ana:pa:ss"):
        assert users.check_token(bad) is None


def test_admin_holds_every_role() -> None:
    users = Users({"root": UserSettings(password=hash_password("admin-pass"), roles=("admin",))})
    user = users.check("root", "admin-pass")
    assert user is not None
    assert all(user.may(r) for r in ("view", "learn", "admin"))


def test_config_refuses_a_plain_password(tmp_path: Path) -> None:
    path = tmp_path / "seawall.toml"
    path.write_text('[users.ana]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match="users"):
        load_config(path)


def test_user_add_writes_a_hash_the_store_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "seawall.toml"
    path.write_text("[serve]\nworkers = 1\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert (
        main(["user", "add", "ana", "--role", "learn", "--password-stdin", "--config", str(path)])
        == 0
    )
    text = path.read_text()
    assert "correct horse" not in text
    assert "$argon2id$" in text
    config = load_config(path)
    assert config.serve.workers == 1
    assert config.users["ana"].roles == ("learn",)
    assert Users(config.users).check("ana", "correct horse") is not None
    # A second add of the same name is refused and leaves the file alone.
    monkeypatch.setattr(sys, "stdin", io.StringIO("another pass\n"))
    assert main(["user", "add", "ana", "--password-stdin", "--config", str(path)]) == 1
    assert path.read_text() == text


def test_user_add_refuses_a_short_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "seawall.toml"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["user", "add", "ana", "--password-stdin", "--config", str(path)]) == 1
    assert not path.exists() or "users" not in path.read_text()
