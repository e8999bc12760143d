"""DNS lists against a real rbldnsd on loopback, through the whole engine and the CLI.

The zones hold RFC 5782's test entries (127.0.0.2 and "test" listed) beside what the
tests look up: a listed client address, a listed link domain, and error codes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.rbldnsd import Rbldnsd

from seawall.config import load_config
from seawall.engine import Engine, build_engine
from seawall.message import Envelope

IP_ZONE = """\
$SOA 300 ns.zen.test. hostmaster.zen.test. 1 600 300 86400 120
:127.0.0.2:Listed, see https://zen.test/
127.0.0.2
81.2.69.160 :127.0.0.4:XBL
81.2.69.161 :127.0.0.10:PBL
81.2.69.170 :127.255.255.254:refused
"""
DOMAIN_ZONE = """\
$SOA 300 ns.dbl.test. hostmaster.dbl.test. 1 600 300 86400 120
:127.0.1.2:Listed
test
spam-shop.example
phish.example :127.0.1.4:Phish
"""

CONFIG = """\
state_dir = "{state}"
[detectors.classifier]
enabled = false
[detectors.dnsbl]
enabled = true
nameservers = ["{server}"]
budget_s = 1.0
[[detectors.dnsbl.lists]]
name = "zen"
zone = "zen.test"
kind = "ip"
direct_only = ["127.0.0.10", "127.0.0.11"]
[detectors.dnsbl.lists.codes]
"127.0.0.2" = "RBL_SPAMHAUS_SBL"
"127.0.0.4" = "RBL_SPAMHAUS_XBL"
"127.0.0.10" = "RBL_SPAMHAUS_PBL"
"127.0.0.11" = "RBL_SPAMHAUS_PBL"
[[detectors.dnsbl.lists]]
name = "dbl"
zone = "dbl.test"
kind = "domain"
[detectors.dnsbl.lists.codes]
"127.0.1.2" = "URIBL_DBL_SPAM"
"127.0.1.4" = "URIBL_DBL_PHISH"
"""


@pytest.fixture(scope="module")
def rbldnsd() -> Iterator[Rbldnsd]:
    root = Path(tempfile.mkdtemp(prefix="seawall-rbldnsd-"))
    server = Rbldnsd(root, {"zen.test": ("ip4set", IP_ZONE), "dbl.test": ("dnset", DOMAIN_ZONE)})
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def config_file(rbldnsd: Rbldnsd, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dnsbl")
    path = root / "seawall.toml"
    path.write_text(CONFIG.format(state=root / "state", server=rbldnsd.address))
    return path


@pytest.fixture(scope="module")
def engine(config_file: Path) -> Iterator[Engine]:
    eng = build_engine(load_config(config_file))
    yield eng
    eng.close()


def _scan(engine: Engine, body: str, client_ip: str | None = None) -> dict:
    raw = f"From: a@sender.example\nSubject: offer\nContent-Type: text/html\n\n{body}\n"
    return dict(engine.scan_sync(Envelope(client_ip=client_ip), raw.encode()).verdict.symbols)


def test_listed_client_address(engine: Engine) -> None:
    symbols = _scan(engine, "hello", "81.2.69.160")
    assert symbols["RBL_SPAMHAUS_XBL"].options == ("81.2.69.160=127.0.0.4",)
    assert symbols["RBL_SPAMHAUS_XBL"].score == 4.0


def test_pbl_listed_client_address(engine: Engine) -> None:
    symbols = _scan(engine, "hello", "81.2.69.161")
    assert symbols["RBL_SPAMHAUS_PBL"].options == ("81.2.69.161=127.0.0.10",)


def test_listed_link_domains(engine: Engine) -> None:
    body = (
        '<a href="http://www.spam-shop.example/buy">buy</a> '
        '<a href="https://login.phish.example/">log in</a> <a href="http://fine.example/">x</a>'
    )
    symbols = _scan(engine, body, "81.2.69.200")
    assert symbols["URIBL_DBL_SPAM"].options == ("spam-shop.example=127.0.1.2",)
    assert symbols["URIBL_DBL_PHISH"].options == ("phish.example=127.0.1.4",)
    assert not any(s.startswith("RBL_") for s in symbols)


def test_unlisted_message_gets_no_list_symbol(engine: Engine) -> None:
    symbols = _scan(engine, '<a href="http://fine.example/">x</a>', "81.2.69.201")
    assert not any(s.startswith(("RBL_", "URIBL_DBL", "DNSBL_")) for s in symbols), symbols


def test_refusal_code_is_an_error_symbol_not_a_listing(engine: Engine) -> None:
    symbols = _scan(engine, "hello", "81.2.69.170")
    assert symbols["DNSBL_BLOCKED"].options == ("zen=127.255.255.254",)
    assert symbols["DNSBL_BLOCKED"].score == 0.0
    assert not any(s.startswith("RBL_") for s in symbols)


def test_answers_are_cached(engine: Engine) -> None:
    detector = next(d for d in engine.detectors if d.name == "dnsbl")
    before = detector.stats()  # type: ignore[attr-defined]
    _scan(engine, "hello", "81.2.69.160")
    after = detector.stats()  # type: ignore[attr-defined]
    assert after["cache_hits"] == before["cache_hits"] + 1
    assert after["sent"] == before["sent"]


def test_dnsbl_test_command_says_healthy(config_file: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "dnsbl", "test", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 of 2 lists healthy" in out.stdout
    assert out.stdout.count("healthy") == 3


def test_dnsbl_test_command_finds_a_mistyped_zone(rbldnsd: Rbldnsd, tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(
        CONFIG.format(state=tmp_path / "state", server=rbldnsd.address).replace(
            'zone = "dbl.test"', 'zone = "dbl.tset"'
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "dnsbl", "test", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 of 2 lists healthy" in out.stdout
    assert "UNHEALTHY" in out.stdout
