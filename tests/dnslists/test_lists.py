"""List definitions: query names, what return codes mean, and settings that cannot work."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from seawall.config import DnsblSettings, DnsListSettings, load_config
from seawall.dnslists.lists import (
    Kind,
    compile_lists,
    listable_ip,
    query_domain,
    reverse_ip,
    reverse_ipv6,
)
from seawall.errors import ConfigError

ZEN, DBL, SURBL = compile_lists(DnsblSettings())


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "7.113.0.203"),
        ("127.0.0.2", "2.0.0.127"),
        ("::ffff:198.51.100.1", "1.100.51.198"),  # IPv4-mapped is asked as IPv4
        (
            "2001:db8:1:2::ab",  # RFC 5782 §2.4: 32 nibbles, reversed
            "b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2",
        ),
        ("1.2.3", None),
        ("not-an-ip", None),
    ],
)
def test_reverse_ip(ip: str, key: str | None) -> None:
    assert reverse_ip(ip) == key


def test_reverse_ipv6_keeps_mapped_addresses_in_nibbles() -> None:
    assert reverse_ipv6("::FFFF:7F00:2") == "2.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20
    assert reverse_ipv6("127.0.0.2") is None


@pytest.mark.parametrize(
    ("ip", "asked"),
    [
        ("81.2.69.160", True),
        ("2a00:1450:4001:80b::200e", True),
        ("10.1.2.3", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("100.64.1.1", False),  # carrier-grade NAT: never in a public list
        ("169.254.1.1", False),
        ("198.18.0.5", False),  # benchmarking
        ("192.0.2.1", False),  # documentation
        ("224.0.0.1", False),
        ("fe80::1", False),
        ("garbage", False),
    ],
)
def test_only_public_unicast_addresses_are_asked(ip: str, asked: bool) -> None:
    assert listable_ip(ip) is asked


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("Example.COM.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("under_score.example", "under_score.example"),
        ("localhost", None),
        ("a..b", None),
        ("-bad.example", None),
        ("x" * 64 + ".example", None),
        (("a" * 60 + ".") * 5 + "example", None),  # longer than 253
        ("evil example.com", None),
    ],
)
def test_query_domain(host: str, name: str | None) -> None:
    assert query_domain(host) == name


def test_codes_map_to_symbols() -> None:
    assert ZEN.meaning("127.0.0.2").symbols == ("RBL_SPAMHAUS_SBL",)
    assert ZEN.meaning("127.0.0.6").symbols == ("RBL_SPAMHAUS_XBL",)
    assert ZEN.meaning("127.0.0.9").symbols == ("RBL_SPAMHAUS_DROP",)
    assert DBL.meaning("127.0.1.2").symbols == ("URIBL_DBL_SPAM",)
    assert DBL.meaning("127.0.1.104").symbols == ("URIBL_DBL_ABUSED_PHISH",)


def test_pbl_counts_for_the_connecting_client_only() -> None:
    assert ZEN.meaning("127.0.0.11", direct=True).symbols == ("RBL_SPAMHAUS_PBL",)
    assert ZEN.meaning("127.0.0.11", direct=False).kind is Kind.IGNORED
    assert ZEN.meaning("127.0.0.4", direct=False).symbols == ("RBL_SPAMHAUS_XBL",)


def test_bitmask_list() -> None:
    assert SURBL.meaning("127.0.0.8").symbols == ("URIBL_SURBL_PHISH",)
    both = SURBL.meaning("127.0.0.80").symbols  # 16 + 64
    assert both == ("URIBL_SURBL_MALWARE", "URIBL_SURBL_ABUSE")
    assert SURBL.meaning("127.0.0.2").kind is Kind.UNKNOWN  # no configured bit set


@pytest.mark.parametrize("code", ["127.255.255.252", "127.255.255.254", "127.255.255.255"])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_error_codes_are_never_a_listing(code: str, index: int) -> None:
    spec = (ZEN, DBL, SURBL)[index]  # SURBL too, where .255 would otherwise set every bit
    meaning = spec.meaning(code)
    assert meaning.kind is Kind.ERROR
    assert meaning.symbols == ()
    assert meaning.reason


def test_answers_outside_loopback_and_unknown_codes() -> None:
    assert ZEN.meaning("127.255.255.1").kind is Kind.ERROR
    assert ZEN.meaning("198.51.100.7").kind is Kind.ERROR  # NXDOMAIN rewritten to an ad server
    assert ZEN.meaning("127.0.0.200").kind is Kind.UNKNOWN
    assert DBL.meaning("127.0.1.255").kind is Kind.UNKNOWN


def _settings(**changes: object) -> DnsblSettings:
    item = msgspec.structs.replace(DnsblSettings().lists[0], **changes)
    return msgspec.structs.replace(DnsblSettings(), lists=(item,))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"zone": "zen..example"}, "not a DNS name"),
        ({"codes": {"127.0.0.300": "RBL_X"}}, "not an IPv4"),
        ({"codes": {"10.0.0.2": "RBL_X"}}, "not a listing code"),
        ({"codes": {"127.255.255.254": "RBL_X"}}, "not a listing code"),
        ({"codes": {"127.0.0.2": "lower_case"}}, "UPPER_SNAKE"),
        ({"codes": {}, "direct_only": ()}, "give codes or bits"),
        ({"bits": {"256": "RBL_X"}}, "1 to 255"),
        ({"direct_only": ("127.0.0.99",)}, "not in codes"),
        ({"hosts": True}, "for domain lists"),
        ({"test_entry": "not-an-address"}, "test_entry"),
        ({"checks": ("links",)}, "checks and sender_codes are for domain lists"),
        ({"sender_codes": {"127.0.0.2": "RBL_X"}}, "for domain lists"),
    ],
)
def test_settings_that_cannot_work_are_config_errors(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_lists(_settings(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"checks": ("links", "helo"), "sender_codes": {}}, "helo.*give sender_codes"),
        ({"checks": ("links",)}, "sender_codes without a sender name"),
        ({"sender_codes": {"127.0.1.2": "dbl spam"}}, "UPPER_SNAKE"),
        ({"sender_codes": {"127.255.255.254": "RBL_X"}}, "not a listing code"),
        ({"ipv6": True}, "for ip lists"),
        ({"link_ips": True}, "for ip lists"),
        ({"direct_only": ("127.0.1.2",)}, "for ip lists"),
        ({"checks": ("from",), "codes": {}}, None),  # a list for senders only needs no codes
        ({"checks": ("links",), "codes": {}, "sender_codes": {}}, "give codes or bits"),
    ],
)
def test_domain_list_settings(changes: dict, message: str | None) -> None:
    item = msgspec.structs.replace(DnsblSettings().lists[1], **changes)
    settings = msgspec.structs.replace(DnsblSettings(), lists=(item,))
    if message is None:
        assert compile_lists(settings)[0].senders == {"from"}
        return
    with pytest.raises(ConfigError, match=message):
        compile_lists(settings)


def test_an_unknown_check_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "seawall.toml"
    path.write_text(
        '[[detectors.dnsbl.lists]]\nname = "x"\nzone = "x.example"\nkind = "domain"\n'
        'checks = ["links", "body"]\ncodes = {"127.0.0.2" = "URIBL_X"}\n'
    )
    with pytest.raises(ConfigError, match="checks"):
        load_config(path)


def test_shipped_checks() -> None:
    assert (ZEN.ipv6, DBL.ipv6, SURBL.ipv6) == (True, False, False)
    assert DBL.senders == {"mail_from", "from", "reply_to", "helo", "rdns"}
    assert (DBL.links, SURBL.links, SURBL.senders) == (True, True, frozenset())  # web sites
    assert DBL.meaning("127.0.1.2", sender=True).symbols == ("RBL_DBL_SPAM",)
    assert DBL.meaning("127.0.1.103", sender=True).symbols == ("RBL_DBL_ABUSED",)
    assert DBL.meaning("127.0.1.2").symbols == ("URIBL_DBL_SPAM",)
    assert DBL.meaning("127.255.255.254", sender=True).kind is Kind.ERROR
    assert SURBL.meaning("127.0.0.8", sender=True).kind is Kind.UNKNOWN  # bits: links only


def test_duplicate_names_are_config_errors() -> None:
    one = DnsListSettings(name="x", zone="x.example", codes={"127.0.0.2": "RBL_X"})
    with pytest.raises(ConfigError, match="unique"):
        compile_lists(DnsblSettings(lists=(one, one)))


def test_shipped_lists_test_entries() -> None:
    assert (ZEN.test_entry, DBL.test_entry, SURBL.test_entry) == (
        "127.0.0.2",
        "dbltest.com",
        "test.surbl.org",
    )
    assert ZEN.query_name("2.0.0.127") == "2.0.0.127.zen.spamhaus.org"
    assert DBL.query_name("x" * 240) is None
