"""`seawall simulate --help` describes every option with its default, and the address plan."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from seawall.cli import _parser, main
from seawall.sim import world


def simulate_parser() -> argparse.ArgumentParser:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices["simulate"]
    return parser


def test_every_option_says_what_it_does_and_its_default() -> None:
    common = {"--help", "--config", "--state", "--verbose"}
    actions = simulate_parser()._actions
    options = [a for a in actions if a.option_strings and common.isdisjoint(a.option_strings)]
    assert len(options) == 17
    for action in options:
        assert action.help, action.option_strings
        assert "(default: " in action.help, action.option_strings


def test_help_shows_the_defaults_and_the_address_plan(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        simulate_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 7)" in text  # --seed
    assert "(default: 8000)" in text  # --peak-per-hour
    assert "retried after 5, 10, 20, 40 simulated minutes (default: 12.0)" in text
    for net in (world.DIALUP, world.DSL, world.BUSINESS, world.RELAYS):
        assert str(net) in text


def test_forge_sender_writes_the_worlds_dns(tmp_path: Path) -> None:
    records = tmp_path / "dns.json"
    out = tmp_path / "out"
    argv = ["simulate", "--hours", "0.05", "--peak-per-hour", "300", "--forge-sender"]
    assert main([*argv, "--dns-records", str(records), "--out", str(out)]) == 0
    dns = json.loads(records.read_text())
    assert dns["_dmarc.riverside-uni.example.org"] == [
        "v=DMARC1; p=reject; rua=mailto:dmarc@riverside-uni.example.org"
    ]
    assert dns["sim2026._domainkey.riverside-uni.example.org"][0].startswith("v=DKIM1; k=rsa; p=")
    claims = [
        m for p in out.glob("*.eml") if b"@riverside-uni.example.org>" in (m := p.read_bytes())
    ]
    signed = [m for m in claims if m.startswith(b"DKIM-Signature:")]
    assert signed, "the brand's own newsletter is not signed"
    assert len(signed) < len(claims), "no unsigned copy forges the brand"
