"""[remediation] and [sharing] values that cannot work are refused when the config loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.config import load_config
from seawall.errors import ConfigError


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "seawall.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[sharing]\ncontacts = {"198.51.100.0/33" = "a@b.example"}\n'
            'report_from = "x@y.example"\n',
            "sharing.contacts: '198.51.100.0/33' is not a network",
        ),
        (
            '[sharing]\ncontacts = {"198.51.100.0/24" = "a@b.example"}\n',
            "sharing.report_from: needed",
        ),
        ('[remediation]\nnotice_to = "{account}@x.example"\n', "remediation.notice_from: needed"),
        (
            '[[remediation.nas]]\naddress = "192.0.2.1:3799"\nsecret = "s"\nnetworks = ["pool"]\n',
            "remediation.nas[0].networks: 'pool' is not a network",
        ),
        (
            '[[remediation.nas]]\naddress = "192.0.2.1:notaport"\nsecret = "s"\n',
            "remediation.nas[0].address",
        ),
        ('[remediation]\nmode = "yes"\n', "mode"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert problem in str(info.value)


def test_defaults_are_dry_run_and_a_nas_without_port_takes_3799(tmp_path: Path) -> None:
    config = load(tmp_path, '[[remediation.nas]]\naddress = "192.0.2.1"\nsecret = "s"\n')
    assert config.remediation.mode == "dry-run"
    from seawall.zombies.remedies.coa import Nas

    nas = Nas(config.remediation.nas[0])
    assert (nas.host, nas.port) == ("192.0.2.1", 3799)


def test_the_notice_address_from_the_account() -> None:
    from seawall.config import RemediationSettings
    from seawall.zombies.remedies.notice import notice_address

    def to(template: str, account: str | None) -> str | None:
        return notice_address(RemediationSettings(notice_to=template), account)

    assert to("{account}@customers.example", "alice") == "alice@customers.example"
    assert to("{account}", "user0001@example.net") == "user0001@example.net"
    assert to("{user}@mail.{realm}", "bob@dsl.example") == "bob@mail.dsl.example"
    assert to("{account}", "alice") is None  # not an address
    assert to("{account}@x.example", "a b\r\nBcc: c") is None  # no header injection
    assert to("{account}@x.example", None) is None  # an address case
    assert to("", "alice") is None
