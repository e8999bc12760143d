"""IPv6 entries, the sender's names and the /stat figures against a real rbldnsd.

rbldnsd serves the IP zone from two datasets, ``ip4set`` for IPv4 and ``ip6trie`` for
IPv6 (with RFC 5782's ::FFFF:7F00:2 test entry), and the domain zone as a ``dnset``.
The last test runs a real ``seawall serve`` against it and reads ``/stat``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.dnslists.dnsserver import Behaviour, DnsServer
from tests.integration.rbldnsd import Rbldnsd
from tests.integration.seawall_proc import Seawall

from seawall.config import load_config
from seawall.engine import Engine, build_engine
from seawall.frontends.http import build_app
from seawall.message import Envelope
from seawall.serve.service import Service
from seawall.store.memory import MemoryStore

SOA = "$SOA 300 ns.{0}. hostmaster.{0}. 1 600 300 86400 120\n"
IP4_ZONE = SOA.format("zen.test") + ":127.0.0.2:Listed\n127.0.0.2\n81.2.69.160 :127.0.0.4:XBL\n"
IP6_ZONE = """\
:127.0.0.2:Listed
::ffff:7f00:2
2a00:1450:4001:80b::200e :127.0.0.4:XBL
2a02:2e0:3fe:1001::/64 :127.0.0.9:DROP
"""
DOMAIN_ZONE = SOA.format("dbl.test") + (
    ":127.0.1.2:Listed\ntest\nspam-host.net\nspam-brand.com :127.0.1.4:Phish\n"
)
V6 = "2a00:1450:4001:80b::200e"

LISTS = """\
[detectors.dnsbl]
enabled = true
nameservers = ["{server}"]
[[detectors.dnsbl.lists]]
name = "zen"
zone = "{zone}"
ipv6 = true
[detectors.dnsbl.lists.codes]
"127.0.0.2" = "RBL_SPAMHAUS_SBL"
"127.0.0.4" = "RBL_SPAMHAUS_XBL"
"127.0.0.9" = "RBL_SPAMHAUS_DROP"
[[detectors.dnsbl.lists]]
name = "dbl"
zone = "dbl.test"
kind = "domain"
checks = ["links", "mail_from", "from", "reply_to", "helo", "rdns"]
[detectors.dnsbl.lists.codes]
"127.0.1.2" = "URIBL_DBL_SPAM"
"127.0.1.4" = "URIBL_DBL_PHISH"
[detectors.dnsbl.lists.sender_codes]
"127.0.1.2" = "RBL_DBL_SPAM"
"127.0.1.4" = "RBL_DBL_PHISH"
"""
QUIET = "[detectors.classifier]\nenabled = false\n[detectors.campaigns]\nenabled = false\n"


@pytest.fixture(scope="module")
def rbldnsd() -> Iterator[Rbldnsd]:
    root = Path(tempfile.mkdtemp(prefix="seawall-rbldnsd6-"))
    server = Rbldnsd(
        root,
        {
            "zen.test": [("ip4set", IP4_ZONE), ("ip6trie", IP6_ZONE)],
            "dbl.test": ("dnset", DOMAIN_ZONE),
        },
    )
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def write_config(path: Path, rbldnsd: Rbldnsd, zone: str = "zen.test") -> Path:
    text = f'state_dir = "{path.parent / "state"}"\n' + QUIET
    path.write_text(text + LISTS.format(server=rbldnsd.address, zone=zone))
    return path


@pytest.fixture(scope="module")
def engine(rbldnsd: Rbldnsd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = write_config(tmp_path_factory.mktemp("dnsbl6") / "seawall.toml", rbldnsd)
    eng = build_engine(load_config(path))
    yield eng
    eng.close()


def scan(engine: Engine, envelope: Envelope, body: str = "hello") -> dict:
    raw = f"From: a@fine-sender.com\nSubject: offer\nContent-Type: text/html\n\n{body}\n"
    return dict(engine.scan_sync(envelope, raw.encode()).verdict.symbols)


def test_a_listed_ipv6_client(engine: Engine) -> None:
    symbols = scan(engine, Envelope(client_ip=V6))
    assert symbols["RBL_SPAMHAUS_XBL"].options == (f"{V6}=127.0.0.4",)
    assert symbols["RBL_SPAMHAUS_XBL"].score == 4.0
    symbols = scan(engine, Envelope(client_ip="2a02:2e0:3fe:1001:7777::25"))  # in a /64
    assert symbols["RBL_SPAMHAUS_DROP"].options == ("2a02:2e0:3fe:1001:7777::25=127.0.0.9",)


def test_an_unlisted_ipv6_client_and_ipv4_beside_it(engine: Engine) -> None:
    symbols = scan(engine, Envelope(client_ip="2a00:1450:4001:80b::1"))
    assert not any(s.startswith(("RBL_", "DNSBL_")) for s in symbols), symbols
    symbols = scan(engine, Envelope(client_ip="81.2.69.160"))  # the ip4set of the same zone
    assert symbols["RBL_SPAMHAUS_XBL"].options == ("81.2.69.160=127.0.0.4",)


def test_the_senders_names_on_the_domain_list(engine: Engine) -> None:
    envelope = Envelope(
        client_ip="81.2.69.200", helo="mx1.spam-host.net", mail_from="bounce@spam-brand.com"
    )
    symbols = scan(engine, envelope, '<a href="http://www.spam-brand.com/">buy</a>')
    assert symbols["RBL_DBL_SPAM"].options == ("helo:spam-host.net=127.0.1.2",)
    assert symbols["RBL_DBL_PHISH"].options == ("mail_from:spam-brand.com=127.0.1.4",)
    assert symbols["URIBL_DBL_PHISH"].options == ("spam-brand.com=127.0.1.4",)
    assert symbols["RBL_DBL_SPAM"].score == 6.5
    assert not any(s.startswith("DNSBL_") for s in symbols), symbols


def dnsbl_test(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seawall", "dnsbl", "test", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dnsbl_test_checks_both_families(rbldnsd: Rbldnsd, tmp_path: Path) -> None:
    out = dnsbl_test(write_config(tmp_path / "seawall.toml", rbldnsd))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "zen.test  IPv4 healthy  (127.0.0.2 -> 127.0.0.2, 127.0.0.1 -> not listed)" in out.stdout
    assert "IPv6 healthy  (::ffff:7f00:2 -> 127.0.0.2, ::ffff:7f00:1 -> not listed)" in out.stdout
    assert "2 of 2 lists healthy" in out.stdout


def test_dnsbl_test_finds_a_list_without_ipv6_entries(tmp_path: Path) -> None:
    # rbldnsd answers ::FFFF:7F00:2 from its IPv4 data, so a server that knows IPv4 names
    # only plays the list that has no IPv6 entries.
    with DnsServer(Behaviour(listed={"2.0.0.127.zen.test": ["127.0.0.2"]})) as server:
        path = tmp_path / "seawall.toml"
        path.write_text(
            f'[detectors.dnsbl]\nenabled = true\nnameservers = ["{server.address}"]\n'
            '[[detectors.dnsbl.lists]]\nname = "zen"\nzone = "zen.test"\nipv6 = true\n'
            'codes = {"127.0.0.2" = "RBL_SPAMHAUS_SBL"}\n'
        )
        out = dnsbl_test(path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "zen.test  IPv4 healthy" in out.stdout
    assert "IPv6 UNHEALTHY: its test entry ::ffff:7f00:2 is not listed" in out.stdout
    assert "ipv6 = false" in out.stdout
    assert "0 of 1 lists healthy" in out.stdout


def test_stat_has_no_dns_figures_without_the_detector(tmp_path: Path) -> None:
    config = load_config(state_dir=str(tmp_path))
    engine = build_engine(config)
    try:
        service = Service(engine, config, store=MemoryStore())
        with TestClient(build_app(service, allow_learn=True)) as http:
            assert "dnsbl" not in http.get("/stat").json()
    finally:
        engine.close()


def test_serve_reports_the_dns_figures_in_stat(rbldnsd: Rbldnsd, tmp_path: Path) -> None:
    sw = Seawall(root=tmp_path / "sw", state=tmp_path / "state", workers=1)
    sw.extra = QUIET + LISTS.format(server=rbldnsd.address, zone="zen.test")
    sw.start()
    try:
        headers = {"IP": V6, "Helo": "mx1.spam-host.net"}
        for _ in range(2):  # three lookups each: the client, From and HELO domains
            req = urllib.request.Request(
                sw.url("/checkv2"), data=b"From: a@fine-sender.com\r\n\r\nhi\r\n", headers=headers
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                symbols = json.loads(resp.read())["symbols"]
            assert {"RBL_SPAMHAUS_XBL", "RBL_DBL_SPAM"} <= set(symbols)
        with urllib.request.urlopen(sw.url("/stat"), timeout=30) as resp:
            stat = json.loads(resp.read())
    finally:
        assert sw.stop() == 0
    figures = stat["dnsbl"]
    assert stat["scanned"] == 2
    assert (figures["cache_misses"], figures["cache_hits"]) == (3, 3)
    assert figures["cache_hit_rate"] == 0.5
    assert figures["cache_entries"] == 3
    assert figures["queries"] == 3  # the second message was answered from the cache
    assert figures["sent"] >= 3
    assert (figures["listed"], figures["not_listed"]) == (2, 1)
    assert (figures["timeouts"], figures["servfails"], figures["errors"]) == (0, 0, 0)
