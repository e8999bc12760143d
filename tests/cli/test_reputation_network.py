"""`seawall reputation NET`: a /24 (IPv6 /64) shows the network's record."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from seawall.cli import main
from seawall.config import load_config
from seawall.reputation import Reputation, network_key
from seawall.store import open_store


def feed(state: Path, ip: str, spam: int) -> float:
    config = load_config(state_dir=str(state))
    now = time.time() - 1

    async def run() -> None:
        store = open_store(config)
        try:
            rep = Reputation(store, config.detectors.reputation)
            for _ in range(spam):
                await rep.record(ip, spam=True, ham=False, now=now)
            await rep.flush()
        finally:
            await store.close()

    asyncio.run(run())
    return now


def test_network_key() -> None:
    assert network_key("198.18.165.0/24") == "rep:net:198.18.165.0/24"
    assert network_key("198.18.165.99/24") == "rep:net:198.18.165.0/24"  # host bits dropped
    assert network_key("2001:db8:1:2::/64") == "rep:net:2001:db8:1:2::/64"
    assert network_key("198.18.0.0/16") is None
    assert network_key("not/a/net") is None


def test_a_network_shows_its_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    when = feed(state, "198.18.165.7", spam=3)
    feed(state, "198.18.165.9", spam=2)
    assert main(["reputation", "198.18.165.0/24", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("198.18.165.0/24  (counts decayed to now; half-life 6 h)\n")
    (line,) = [x for x in out.splitlines() if x.startswith("  network")]
    assert "198.18.165.0/24" in line
    assert "volume      5.0" in line
    assert time.strftime("%Y-%m-%dT%H:%M", time.gmtime(when)) in line
    assert main(["reputation", "198.18.165.99/24", "--json", "--state", str(state)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["network"]["key"] == "198.18.165.0/24"
    assert found["network"]["spam"] == pytest.approx(5.0, abs=0.01)
    assert main(["reputation", "198.18.166.0/24", "--json", "--state", str(state)]) == 0
    assert json.loads(capsys.readouterr().out)["network"] is None


def test_other_prefixes_are_refused_and_a_host_route_is_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    feed(state, "198.18.165.7", spam=1)
    assert main(["reputation", "198.18.0.0/16", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert "records are kept per address and per /24 (IPv6 /64), not for 198.18.0.0/16" in err
    assert "ask for 198.18.0.0/24" in err
    assert main(["reputation", "198.18.165.7/32", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "  ip       198.18.165.7 " in out
    assert main(["reputation", "not-an-address", "--state", str(state)]) == 1
    assert "not an IP address, a /24 (IPv6 /64) network or a domain" in capsys.readouterr().err
